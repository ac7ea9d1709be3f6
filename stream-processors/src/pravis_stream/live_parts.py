"""Mergeable parts of a live answer (pure, no I/O): what one worker knows of a project for its partitions, in
a form that adds up across workers, and its JSON between workers.

Why parts and not whole answers: with N workers each owns some partitions; exact counts add, HLL sketches
(distinct users) union and KLL sketches (latencies) merge, but finished numbers (a rate, a p95, a distinct
count) do not. So the worker that answers asks the others for their parts (`GET /live/{project}/parts`, see
`app`), merges them with its own and builds the body once (`views`). A summary needs only the requested
window merged and three user sketches (5 minutes, hour, UTC day), not every minute of the day; a timeseries
needs its minutes.

The JSON here travels only between stream workers of one deployment (the public bodies are
`pravis_schemas.live_api`); windows use the checkpoint's `Window` JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pravis_stream.counters import Window, minute_start
from pravis_stream.sketches import hll_from_text, hll_to_text, new_hll, union_hll


@dataclass
class SummaryParts:
    """A project's window since `window_start` (counts and latency sketches) and its distinct users since
    each of `user_starts`, over `partitions`."""

    partitions: set[int] = field(default_factory=set)
    window: Window = field(default_factory=lambda: Window(with_users=False))
    users: dict[str, Any] = field(default_factory=dict)
    """minute key -> HLL sketch of the users since that minute"""

    def merge(self, other: SummaryParts) -> None:
        self.partitions |= other.partitions
        self.window.merge(other.window)
        for start, sketch in other.users.items():
            mine = self.users.get(start)
            self.users[start] = sketch if mine is None else union_hll([mine, sketch])

    def to_json(self) -> dict[str, Any]:
        return {
            "partitions": sorted(self.partitions),
            "window": self.window.to_json(),
            "users": {start: hll_to_text(sketch) for start, sketch in self.users.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SummaryParts:
        return cls(
            partitions=set(data["partitions"]),
            window=Window.from_json(data["window"]),
            users={start: hll_from_text(text) for start, text in data["users"].items()},
        )


@dataclass
class MinuteParts:
    """A project's windows per minute since some minute (with their users), over `partitions`."""

    partitions: set[int] = field(default_factory=set)
    minutes: dict[str, Window] = field(default_factory=dict)

    def merge(self, other: MinuteParts) -> None:
        self.partitions |= other.partitions
        for minute, window in other.minutes.items():
            mine = self.minutes.get(minute)
            self.minutes[minute] = window if mine is None else combined([mine, window])

    def to_json(self) -> dict[str, Any]:
        return {
            "partitions": sorted(self.partitions),
            "minutes": {minute: window.to_json() for minute, window in self.minutes.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MinuteParts:
        return cls(
            partitions=set(data["partitions"]),
            minutes={minute: Window.from_json(window) for minute, window in data["minutes"].items()},
        )


def combined(windows: list[Window]) -> Window:
    """The windows added up, distinct users included."""
    total = Window(with_users=False)
    for window in windows:
        total.merge(window)
    sketches = [window.users for window in windows if window.users is not None]
    total.users = union_hll(sketches) if sketches else new_hll()
    return total


def plan_requests(owners: dict[str, set[int]], own_url: str, wanted: set[int]) -> dict[str, set[int]]:
    """Which member to ask for which of the `wanted` partitions: each partition from the one member the
    group's assignment names for it (never twice, so nothing is counted twice while an assignment is stale),
    never from this worker itself."""
    plan: dict[str, set[int]] = {}
    left = set(wanted)
    for url in sorted(owners):
        ask = owners[url] & left
        if url.rstrip("/") == own_url.rstrip("/") or not ask:
            continue
        plan[url] = ask
        left -= ask
    return plan


def parse_partitions(text: str, total: int) -> set[int]:
    """`partitions=0,3,5` of a parts request; ValueError naming what is wrong."""
    try:
        found = {int(part) for part in text.split(",") if part}
    except ValueError:
        raise ValueError(f"partitions must be comma-separated integers; got {text!r}") from None
    if not found or not all(0 <= p < total for p in found):
        raise ValueError(f"partitions must be within 0..{total - 1}; got {text!r}")
    return found


def parse_minute(text: str | None, name: str) -> str:
    """A minute key parameter (`YYYY-MM-DDTHH:MM`); ValueError naming the parameter."""
    try:
        if text is None or len(text) != 16:
            raise ValueError
        minute_start(text)
    except ValueError:
        raise ValueError(f"{name} must be a minute as YYYY-MM-DDTHH:MM; got {text!r}") from None
    return text
