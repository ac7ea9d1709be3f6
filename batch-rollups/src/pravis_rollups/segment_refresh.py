"""Refreshing `segment_members`: every segment's newest definition evaluated in one query (SQL from
`pravis_rollups.segments`), written as a new partition, recorded in `segment_refreshes`, older partitions
dropped. The scheduler runs it every `segment_refresh_s`; `pravis survey refresh-segments` runs it once.

Readers take the members of the newest recorded refresh (`pravis_schemas.surveys.SEGMENT_MEMBERS_SQL`): a
refresh that died half way never recorded itself, so it is never read, and the next refresh drops its
partition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client
from pravis_schemas.surveys import ReachedFunnelStep, SegmentDefinition, StoredSegment

from pravis_rollups.funnels import stored_funnels
from pravis_rollups.segments import members_select

LATEST_SEGMENTS_SQL = (
    "SELECT project_id, version, toString(created_at), definition FROM segments FINAL "
    "ORDER BY version DESC LIMIT 1 BY project_id, segment_key"
)


@dataclass(frozen=True)
class RefreshResult:
    refresh_id: int
    segments: int
    members: int
    seconds: float


def latest_segments(client: Client) -> list[StoredSegment]:
    return [
        StoredSegment(
            project_id=project_id,
            version=version,
            created_at=created_at,
            definition=SegmentDefinition.model_validate_json(definition),
        )
        for project_id, version, created_at, definition in client.query(LATEST_SEGMENTS_SQL).result_rows
    ]


def refresh_segments(client: Client, as_of: datetime | None = None) -> RefreshResult:
    """Recompute every segment's members as of `as_of` (now by default) into a new refresh."""
    began = time.perf_counter()
    as_of = as_of or datetime.now(UTC)
    segments = latest_segments(client)
    refresh_id = time.time_ns() // 1000
    members = 0
    if segments:
        needs_funnels = any(
            isinstance(c, ReachedFunnelStep) for s in segments for c in s.definition.conditions
        )
        saved = stored_funnels(client) if needs_funnels else []
        funnels = {(f.project_id, f.definition.key): f for f in saved}
        query = members_select(segments, as_of, funnels)
        client.command(
            f"INSERT INTO segment_members (refresh_id, project_id, segment_key, distinct_id) "
            f"SELECT {{refresh_id:UInt64}}, project_id, segment_key, distinct_id FROM ({query.sql})",
            parameters={**query.parameters, "refresh_id": refresh_id},
        )
        members = client.query(
            "SELECT count() FROM segment_members WHERE refresh_id = {refresh_id:UInt64}",
            parameters={"refresh_id": refresh_id},
        ).result_rows[0][0]
    seconds = time.perf_counter() - began
    client.insert(
        "segment_refreshes",
        [[refresh_id, as_of, len(segments), members, seconds]],
        column_names=["refresh_id", "as_of", "segments", "members", "seconds"],
    )
    stale = client.query(
        "SELECT DISTINCT partition_id FROM system.parts WHERE database = currentDatabase() "
        "AND table = 'segment_members' AND active AND toUInt64(partition_id) < {refresh_id:UInt64}",
        parameters={"refresh_id": refresh_id},
    ).result_rows
    for (partition,) in stale:
        client.command(
            "ALTER TABLE segment_members DROP PARTITION ID {partition:String}",
            parameters={"partition": partition},
        )
    return RefreshResult(refresh_id, len(segments), members, seconds)
