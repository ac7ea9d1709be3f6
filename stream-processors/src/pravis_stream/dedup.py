"""Retries counted once (pure, no I/O): the event ids one partition counted within the live horizon, kept in
event-time slices so that memory is bounded, with the checkpoint writes that make them survive a restart.

Why per partition: the gateway keys `events` by user, so a redelivered event (same user) lands on the
partition that counted the first copy, and the set moves with the partition on a rebalance.

Why 64-bit digests, not the ids: an id is a 36-character string (~85 bytes as a Python str); a digest is one
int in a set plus 8 bytes in its slice's `array('Q')` (the figure per million ids is measured by
`python -m bench.stream --dedup`, see docs/scaling.md). The digest is keyed by project (blake2b of project and
event_id), so one project's ids can never hide another's. Two different events share a digest with
probability n / 2**64 for n ids held: at the cap of a million ids, about 5e-14 per event, i.e. no effect on
counts that any test or dashboard could see.

Bounds: a slice is dropped once it lies more than a horizon before the wall clock (an older copy is not
counted live anyway), and when a partition holds more than `max_ids` the oldest slices go early (`enforce_cap`
reports how many ids: a retry of one of those events would be counted again).

Checkpoint keys: `<partition>/d/<slice>/<position>`, the ids first seen in that slice since the previous
persist, as raw little-endian uint64, written before the windows and the cursor of the same persist. On
restore, chunks written after the cursor (a persist cut short by a kill) are dropped and tombstoned: the
events they name are replayed and either skipped as already counted (their window was persisted: the id is
remembered again) or counted again (it was not: the id is new again).
"""

from __future__ import annotations

import hashlib
import sys
from array import array

SLICES_PER_HORIZON = 12
"""Event-time slices per horizon: a slice is the unit of expiry, so memory overshoots the horizon by 1/12."""
DEFAULT_MAX_IDS = 2_000_000
"""Ids one partition holds at most before its oldest slices go early (see docs/scaling.md for the RSS)."""


def event_digest(project: str, event_id: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(f"{project}\x00{event_id}".encode(), digest_size=8).digest(), "little"
    )


def chunk_key(partition: int, slice_index: int, position: int) -> str:
    return f"{partition}/d/{slice_index}/{position}"


def _to_bytes(ids: array) -> bytes:
    if sys.byteorder == "big":
        ids = array("Q", ids)
        ids.byteswap()
    return ids.tobytes()


def _from_bytes(data: bytes) -> array:
    ids = array("Q")
    ids.frombytes(data)
    if sys.byteorder == "big":
        ids.byteswap()
    return ids


class EventIds:
    """The digests one partition counted, by event-time slice. The hot path uses `seen` and `slices`
    directly (one set lookup per event); `remember` is the same two steps for the rarer callers."""

    def __init__(self, horizon_s: float, max_ids: int = DEFAULT_MAX_IDS) -> None:
        self.horizon_s = horizon_s
        self.slice_s = horizon_s / SLICES_PER_HORIZON
        self.max_ids = max_ids
        self.seen: set[int] = set()
        self.slices: dict[int, array] = {}
        """slice index (event time // slice_s) -> digests first seen in it, in arrival order"""
        self._saved: dict[int, int] = {}
        """slice index -> how many of its digests are persisted"""
        self._chunks: dict[int, list[str]] = {}
        """slice index -> its persisted chunk keys (tombstoned with the slice)"""
        self._stale: list[str] = []
        """chunk keys to tombstone at the next persist"""

    def remember(self, digest: int, at: float) -> None:
        if digest not in self.seen:
            self.seen.add(digest)
            self.slice_for(at).append(digest)

    def slice_for(self, at: float) -> array:
        index = int(at // self.slice_s)
        ids = self.slices.get(index)
        if ids is None:
            ids = self.slices[index] = array("Q")
        return ids

    def enforce_cap(self) -> int:
        """Drop the oldest slices while more than `max_ids` digests are held (never the newest one); return
        how many digests were forgotten early."""
        evicted = 0
        while len(self.seen) > self.max_ids and len(self.slices) > 1:
            oldest = min(self.slices)
            evicted += len(self.slices[oldest])
            self._drop(oldest)
        return evicted

    def _drop(self, index: int) -> None:
        self.seen.difference_update(self.slices.pop(index))
        self._saved.pop(index, None)
        self._stale += self._chunks.pop(index, [])

    def drain_writes(self, partition: int, position: int, now: float) -> list[tuple[str, bytes | None]]:
        """Tombstones of expired and stale chunks, then one chunk per slice with digests not yet persisted."""
        for index in [i for i in self.slices if (i + 1) * self.slice_s < now - self.horizon_s - self.slice_s]:
            self._drop(index)
        writes: list[tuple[str, bytes | None]] = [(key, None) for key in self._stale]
        self._stale = []
        for index, ids in self.slices.items():
            saved = self._saved.get(index, 0)
            if len(ids) > saved:
                key = chunk_key(partition, index, position)
                writes.append((key, _to_bytes(ids[saved:])))
                self._chunks.setdefault(index, []).append(key)
                self._saved[index] = len(ids)
        return writes

    def restore(self, key: str, value: bytes, cursor: int) -> None:
        """Take one persisted chunk (`key` split as `<partition>/d/<slice>/<position>`); a chunk written
        after the cursor belongs to a persist that a kill cut short and is tombstoned instead."""
        _, _, index_text, position_text = key.split("/")
        if int(position_text) > cursor:
            self._stale.append(key)
            return
        index = int(index_text)
        ids = _from_bytes(value)
        self.seen.update(ids)
        self.slices.setdefault(index, array("Q")).extend(ids)
        self._saved[index] = len(self.slices[index])
        self._chunks.setdefault(index, []).append(key)
