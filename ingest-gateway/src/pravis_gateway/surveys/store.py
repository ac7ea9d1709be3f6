"""Survey and segment definitions in the warehouse (every version kept, as experiments), and the loader that
refreshes the gateway's `SurveyBook` every `surveys_refresh_s`: newest definitions, segment members of the
newest refresh (`pravis_rollups.segment_refresh`), and every id's survey history.

A reload is read and turned into dictionaries in a worker thread and swapped into the book at once: building
them on the event loop stalled every request for as long (docs/scaling.md). Segment members, the largest part
(an entry per member id), are read again only when a newer segment refresh was recorded, which happens every
`segment_refresh_s` of the scheduler, not every `surveys_refresh_s`.

The history is read per person (docs/identity.md: an anonymous id that logged in belongs to its user) from the
survey event types only (the `events` sort key starts with project_id, event_type), keeping the newest answer
and shown time and the last `MAX_DISMISSALS_KEPT` dismissals, which is all targeting needs; with it, every id
of those persons and its person, so a user who logged in is capped by what their anonymous id already saw.
When the warehouse is unreachable the last loaded view is served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import structlog
from clickhouse_connect.driver.client import Client
from pravis_schemas.feature_requests import RANKING_SQL, SET_STATUS_SQL, StatusChange, ranking_parameters
from pravis_schemas.funnels import LATEST_FUNNELS_SQL, stored_funnel
from pravis_schemas.identity import person_id_sql, person_join
from pravis_schemas.surveys import (
    NEWEST_SEGMENT_REFRESH_SQL,
    SEGMENT_MEMBERS_SQL,
    SegmentDefinition,
    StoredSegment,
    StoredSurvey,
    SurveyDefinition,
    SurveyHistory,
)
from pydantic import BaseModel

from pravis_gateway.clickhouse import LazyClient, WarehouseUnavailable
from pravis_gateway.surveys.book import Id, SurveyBook, WarehouseView

log = structlog.get_logger("pravis.gateway.surveys")

MAX_DISMISSALS_KEPT = 100
"""The largest `max_dismissals` a definition may set."""

SURVEY_EVENTS_SQL = f"""
SELECT e.project_id AS project_id, {person_id_sql("e", "po")} AS person, assumeNotNull(e.survey_id) AS survey,
       e.event_type AS event_type, e.timestamp AS timestamp
FROM events AS e FINAL
{person_join("e", "po")}
WHERE e.event_type IN ('survey_shown', 'survey_dismissed', 'survey_answered') AND e.survey_id IS NOT NULL"""
HISTORY_SQL = f"""
SELECT project_id, person, survey,
       maxIf(timestamp, event_type = 'survey_answered'), countIf(event_type = 'survey_answered') > 0,
       maxIf(timestamp, event_type = 'survey_shown'), countIf(event_type = 'survey_shown') > 0,
       arraySlice(arrayReverseSort(groupArrayIf(timestamp, event_type = 'survey_dismissed')),
                  1, {MAX_DISMISSALS_KEPT})
FROM ({SURVEY_EVENTS_SQL})
GROUP BY project_id, person, survey"""
PERSON_IDS_SQL = f"""
SELECT project_id, distinct_id, person_id FROM person_overrides
WHERE (project_id, person_id) IN (SELECT DISTINCT project_id, person FROM ({SURVEY_EVENTS_SQL}))"""
"""The ids whose person is not the id itself, of the persons with a survey history."""

Definition = TypeVar("Definition", SurveyDefinition, SegmentDefinition)


class Table:
    """One versioned definition table: `surveys` or `segments`."""

    def __init__(self, name: str, key_column: str, model: type[BaseModel], stored: type[BaseModel]) -> None:
        self.name, self.key_column, self.model, self.stored = name, key_column, model, stored
        columns = f"project_id, {key_column}, version, toString(created_at), definition"
        self.latest_sql = (
            f"SELECT {columns} FROM {name} FINAL ORDER BY version DESC LIMIT 1 BY project_id, {key_column}"
        )
        self.history_sql = (
            f"SELECT {columns} FROM {name} FINAL "
            f"WHERE project_id = {{project:String}} AND {key_column} = {{key:String}} ORDER BY version"
        )

    def parse(self, row: tuple) -> Any:
        project_id, _key, version, created_at, definition = row
        return self.stored(
            project_id=project_id,
            version=version,
            created_at=created_at,
            definition=self.model.model_validate_json(definition),
        )


SURVEYS = Table("surveys", "survey_key", SurveyDefinition, StoredSurvey)
SEGMENTS = Table("segments", "segment_key", SegmentDefinition, StoredSegment)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def segments_by_id(rows: list[tuple[str, list[str], list[str]]]) -> dict[Id, frozenset[str]]:
    """(project_id, distinct_id) -> its segments, from `SEGMENT_MEMBERS_SQL`'s rows (one per set of
    segments); the ids of one set share one frozenset."""
    members: dict[Id, frozenset[str]] = {}
    for project, segment_keys, ids in rows:
        members.update(dict.fromkeys(((project, i) for i in ids), frozenset(segment_keys)))
    return members


class SurveyStore:
    def __init__(self, clickhouse_url: str, refresh_s: float, book: SurveyBook) -> None:
        self.clickhouse_url = clickhouse_url
        self.refresh_s = refresh_s
        self.book = book
        self._warehouse = LazyClient(clickhouse_url)
        self._members: Mapping[Id, frozenset[str]] = {}
        self._members_refresh_id: int | None = None

    async def refresh(self) -> None:
        surveys, view = await self._warehouse.run(self._load)
        self.book.replace_definitions(surveys)
        self.book.replace_warehouse_view(view)

    def _load(self, client: Client) -> tuple[list[StoredSurvey], WarehouseView]:
        """Runs in the warehouse thread: the queries and every dictionary built from their rows."""
        surveys = [SURVEYS.parse(r) for r in client.query(SURVEYS.latest_sql).result_rows]
        refresh_id = client.query(NEWEST_SEGMENT_REFRESH_SQL).result_rows[0][0]
        if refresh_id != self._members_refresh_id:
            rows = client.query(SEGMENT_MEMBERS_SQL, parameters={"refresh_id": refresh_id}).result_rows
            self._members, self._members_refresh_id = segments_by_id(rows), refresh_id
        history: dict[Id, dict[str, SurveyHistory]] = {}
        for project, person, survey, answered, any_answer, shown, any_shown, dismissed in client.query(
            HISTORY_SQL
        ).result_rows:
            history.setdefault((project, person), {})[survey] = SurveyHistory(
                answered=[_utc(answered)] if any_answer else [],
                dismissed=[_utc(d) for d in dismissed],
                shown=[_utc(shown)] if any_shown else [],
            )
        persons = {
            (project, distinct_id): person
            for project, distinct_id, person in client.query(PERSON_IDS_SQL).result_rows
        }
        return surveys, WarehouseView.of(self._members, history, persons)

    async def refresh_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except WarehouseUnavailable as exc:
                log.warning("surveys not refreshed", error=str(exc))
            await asyncio.sleep(self.refresh_s)

    async def history(self, table: Table, project_id: str, key: str) -> list[Any]:
        rows = await self._warehouse.run(
            lambda c: c.query(table.history_sql, parameters={"project": project_id, "key": key}).result_rows
        )
        return [table.parse(r) for r in rows]

    async def latest(self, table: Table, project_id: str) -> list[Any]:
        rows = await self._warehouse.run(lambda c: c.query(table.latest_sql).result_rows)
        return sorted((table.parse(r) for r in rows if r[0] == project_id), key=lambda s: s.definition.key)

    async def funnel_steps(self, project_id: str) -> dict[str, int]:
        """Steps of each saved funnel of the project, by key (what a `funnel_step` condition may name)."""
        rows = await self._warehouse.run(
            lambda c: c.query(LATEST_FUNNELS_SQL, parameters={"project": project_id}).result_rows
        )
        return {f.definition.key: len(f.definition.steps) for f in map(stored_funnel, rows)}

    async def set_request_status(self, project_id: str, change: StatusChange) -> None:
        parameters = {"project": project_id, "title": change.title, "status": change.status}
        await self._warehouse.run(lambda c: c.command(SET_STATUS_SQL, parameters=parameters))

    async def request_board(self, project_id: str, limit: int) -> list[dict[str, Any]]:
        result = await self._warehouse.run(
            lambda c: c.query(RANKING_SQL, parameters=ranking_parameters(project_id, limit))
        )
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    async def save(self, table: Table, project_id: str, definition: Definition) -> tuple[Any, bool]:
        """Store `definition` as the next version; an unchanged one keeps its version. (stored, created)
        Versions are numbered as experiments' are (`pravis_gateway.experiments.store`)."""
        versions = await self.history(table, project_id, definition.key)
        if versions and versions[-1].definition == definition:
            return versions[-1], False
        now = datetime.now(UTC)
        stored = table.stored(
            project_id=project_id,
            version=(versions[-1].version if versions else 0) + 1,
            created_at=now.isoformat(),
            definition=definition,
        )
        text = orjson.dumps(definition.model_dump(mode="json")).decode()
        row = [project_id, definition.key, stored.version, text, now]
        columns = ["project_id", table.key_column, "version", "definition", "created_at"]
        if table is SURVEYS:
            row.append(definition.status)
            columns.append("status")
        await self._warehouse.run(lambda c: c.insert(table.name, [row], column_names=columns))
        if table is SURVEYS:
            self.book.put_definition(stored)
        return stored, True

    def close(self) -> None:
        self._warehouse.close()
