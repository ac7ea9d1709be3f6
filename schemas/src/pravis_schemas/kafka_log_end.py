"""Positions past a partition's log end: what a broker that lost its log leaves a consumer with.

A position can only pass the log end when the log under it was lost: an in-memory broker (Tansu's
`memory://`, the embedded default) that restarted empty, while the consumer kept its position or the group
kept a commit from before. Kafka answers a fetch there with OFFSET_OUT_OF_RANGE and the client resets; Tansu
0.6 answers with empty fetches for good, so the consumer would wait until the new log grew past its old
position and then skip everything before it. Every long-running consumer therefore compares its positions
with the log ends every `kafka_log_end_check_seconds` (one ListOffsets request) and acts on what this finds:
the loader, the privacy worker and the gateway's consent feed read the partition again from its first record;
the stream worker, whose changelogs and internal topics went with the log, exits for its supervisor to start
it afresh.
"""

from collections.abc import Mapping
from typing import TypeVar

Partition = TypeVar("Partition")


def past_log_end(
    positions: Mapping[Partition, int], log_ends: Mapping[Partition, int]
) -> dict[Partition, tuple[int, int]]:
    """The partitions whose position lies past their log end, with (position, log end). A partition without
    a known log end is left out."""
    return {
        partition: (position, log_ends[partition])
        for partition, position in positions.items()
        if partition in log_ends and position > log_ends[partition]
    }
