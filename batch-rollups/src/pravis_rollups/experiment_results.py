"""Refreshing `experiment_results` in ClickHouse: one aggregate query per experiment, statistics in Python.

`refresh_results(client)` recomputes every experiment that is running or stopped (drafts have no exposures)
and inserts its rows with one shared `computed_at`; the scheduler calls it like any rollup job, e.g. every 15
minutes (`pravis experiment refresh` runs it once). Readers take the newest computation per experiment:
`SELECT * FROM experiment_results FINAL WHERE (project_id, experiment_key, computed_at) IN (SELECT project_id,
experiment_key, max(computed_at) FROM experiment_results GROUP BY ALL)` — what `latest_results` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client
from pravis_schemas.experiments import ExperimentDefinition, StoredExperiment

from pravis_rollups.experiments import GOAL_STAT_COLUMNS, MONEY_COLUMNS, result_rows, results_sql
from pravis_rollups.funnels import stored_funnels
from pravis_rollups.settings import settings

LATEST_DEFINITIONS_SQL = (
    "SELECT project_id, version, toString(created_at), definition FROM experiments FINAL "
    "ORDER BY version DESC LIMIT 1 BY project_id, experiment_key"
)
LATEST_RESULTS_SQL = """SELECT * FROM experiment_results FINAL
WHERE project_id = {project:String} AND experiment_key = {key:String}
  AND computed_at = (SELECT max(computed_at) FROM experiment_results
                     WHERE project_id = {project:String} AND experiment_key = {key:String})
ORDER BY goal, variation_id"""
RESULT_COLUMNS = [
    "project_id",
    "experiment_key",
    "definition_version",
    "variant",
    "variation_id",
    "is_control",
    "weight",
    "goal",
    "goal_kind",
    "users",
    "multi_variant_users",
    *GOAL_STAT_COLUMNS,
    *MONEY_COLUMNS,
    "confidence_level",
    "srm_p_value",
    "srm_flag",
    "computed_at",
]


def stored_experiments(client: Client) -> list[StoredExperiment]:
    return [
        StoredExperiment(
            project_id=project,
            version=version,
            created_at=created_at,
            definition=ExperimentDefinition.model_validate_json(definition),
        )
        for project, version, created_at, definition in client.query(LATEST_DEFINITIONS_SQL).result_rows
    ]


def compute_results(
    client: Client, stored: StoredExperiment, computed_at: datetime, reporting_currency: str
) -> list[dict[str, Any]]:
    funnels = {}
    if any(goal.funnel for goal in stored.definition.goals):
        funnels = {f.definition.key: f.definition for f in stored_funnels(client, stored.project_id)}
    sql, params = results_sql(
        stored.definition, stored.project_id, funnels, reporting_currency=reporting_currency
    )
    result = client.query(sql, parameters=params)
    aggregates = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    return result_rows(stored, aggregates, computed_at, reporting_currency)


def refresh_results(
    client: Client,
    project_id: str | None = None,
    keys: Iterable[str] | None = None,
    reporting_currency: str = settings.reporting_currency,
) -> dict[str, int]:
    """Recompute the results of running/stopped experiments (optionally of one project / some keys) and insert
    them, money goals in `reporting_currency`; returns rows written per experiment key."""
    wanted = set(keys) if keys is not None else None
    written: dict[str, int] = {}
    for stored in stored_experiments(client):
        definition = stored.definition
        if project_id is not None and stored.project_id != project_id:
            continue
        if (wanted is not None and definition.key not in wanted) or (
            wanted is None and definition.status == "draft"
        ):
            continue
        rows = compute_results(client, stored, datetime.now(UTC), reporting_currency)
        client.insert(
            "experiment_results",
            [[row[c] for c in RESULT_COLUMNS] for row in rows],
            column_names=RESULT_COLUMNS,
        )
        written[definition.key] = len(rows)
    return written


def latest_results(client: Client, project_id: str, key: str) -> list[dict[str, Any]]:
    result = client.query(LATEST_RESULTS_SQL, parameters={"project": project_id, "key": key})
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
