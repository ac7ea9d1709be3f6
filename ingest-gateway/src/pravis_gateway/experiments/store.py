"""Experiment definitions in the warehouse table `experiments` (every version kept), and the gateway's cache.

Assignment never waits for ClickHouse: `GET /feature/...` reads the in-memory newest version of each
experiment, which a background task reloads every `experiments_refresh_s` seconds (default 5), so a definition
saved through another gateway instance is served everywhere within that interval (at once on the instance that
saved it). If the warehouse is unreachable the last loaded definitions keep being served.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import structlog
from pravis_schemas.experiments import ExperimentDefinition, StoredExperiment

from pravis_gateway.clickhouse import LazyClient, WarehouseUnavailable

log = structlog.get_logger("pravis.gateway.experiments")

_COLUMNS = "project_id, experiment_key, version, toString(created_at), definition"
LATEST_SQL = (
    f"SELECT {_COLUMNS} FROM experiments FINAL ORDER BY version DESC LIMIT 1 BY project_id, experiment_key"
)
HISTORY_SQL = (
    f"SELECT {_COLUMNS} FROM experiments FINAL "
    "WHERE project_id = {project:String} AND experiment_key = {key:String} ORDER BY version"
)


def _stored(row: tuple) -> StoredExperiment:
    project_id, _key, version, created_at, definition = row
    return StoredExperiment(
        project_id=project_id,
        version=version,
        created_at=created_at,
        definition=ExperimentDefinition.model_validate_json(definition),
    )


class ExperimentStore:
    def __init__(self, clickhouse_url: str, refresh_s: float) -> None:
        self.clickhouse_url = clickhouse_url
        self.refresh_s = refresh_s
        self._warehouse = LazyClient(clickhouse_url)
        self._latest: dict[tuple[str, str], StoredExperiment] = {}
        self.loaded = asyncio.Event()

    def cached(self, project_id: str, key: str) -> StoredExperiment | None:
        return self._latest.get((project_id, key))

    def cached_for(self, project_id: str) -> list[StoredExperiment]:
        return sorted(
            (s for (project, _), s in self._latest.items() if project == project_id),
            key=lambda s: s.definition.key,
        )

    async def refresh(self) -> None:
        rows = await self._warehouse.run(lambda c: c.query(LATEST_SQL).result_rows)
        self._latest = {(r[0], r[1]): _stored(r) for r in rows}
        self.loaded.set()

    async def refresh_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except WarehouseUnavailable as exc:
                log.warning("experiment definitions not refreshed", error=str(exc))
            await asyncio.sleep(self.refresh_s)

    async def history(self, project_id: str, key: str) -> list[StoredExperiment]:
        rows = await self._warehouse.run(
            lambda c: c.query(HISTORY_SQL, parameters={"project": project_id, "key": key}).result_rows
        )
        return [_stored(r) for r in rows]

    async def save(self, project_id: str, definition: ExperimentDefinition) -> tuple[StoredExperiment, bool]:
        """Store `definition` as the next version; an unchanged one keeps its version. (stored, created)

        Versions are numbered by reading the newest one first: two admins saving the same key at the same
        instant could both write version n+1; the later row replaces the earlier (ReplacingMergeTree).
        """
        versions = await self.history(project_id, definition.key)
        if versions and versions[-1].definition == definition:
            return versions[-1], False
        now = datetime.now(UTC)
        stored = StoredExperiment(
            project_id=project_id,
            version=(versions[-1].version if versions else 0) + 1,
            created_at=now.isoformat(),
            definition=definition,
        )
        row = [
            project_id,
            definition.key,
            stored.version,
            definition.status,
            orjson.dumps(definition.model_dump(mode="json")).decode(),
            now,
        ]
        columns = ["project_id", "experiment_key", "version", "status", "definition", "created_at"]
        await self._warehouse.run(lambda c: c.insert("experiments", [row], column_names=columns))
        self._latest[(project_id, definition.key)] = stored
        return stored, True

    def close(self) -> None:
        self._warehouse.close()
