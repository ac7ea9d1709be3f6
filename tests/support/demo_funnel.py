"""The funnel the dashboard tests save over the demo dataset, and that dataset's events as the funnel model
(tests/funnel_model.py) reads them: with their persons (tests/support/persons.py), timestamps and sessions."""

from datetime import datetime
from typing import Any

from pravis_local.synthetic import Dataset, parse_iso
from pravis_schemas.funnels import FUNNEL_COLUMNS, FunnelDefinition, StoredFunnel

from tests.support.persons import persons

DEMO_FUNNEL = StoredFunnel(
    project_id="default",
    version=1,
    created_at="2024-03-01T00:00:00+00:00",
    definition=FunnelDefinition(
        key="browse-to-buy",
        steps=[
            {"event_type": "page_view"},
            {"event_type": "feature_use"},
            {"event_type": "button_click", "filters": [{"property": "button_id", "equals": "buy"}]},
        ],
        window_s=1800,
    ),
)


def save_demo_funnel(client) -> None:
    """DEMO_FUNNEL as version 1 in the warehouse's `funnels` (clickhouse-connect `client`)."""
    definition = DEMO_FUNNEL.definition
    row = [DEMO_FUNNEL.project_id, definition.key, 1, definition.model_dump_json(), datetime(2024, 3, 1)]
    client.insert("funnels", [row], column_names=FUNNEL_COLUMNS)


def model_events(dataset: Dataset) -> list[dict[str, Any]]:
    """The project `default`'s events that have a person, as the funnel model reads them."""
    person = persons(dataset.all_events())
    return [
        {**e, "ts": parse_iso(e["timestamp"]), "person": person(e), "session": e.get("session_id")}
        for e in dataset.all_events()
        if e["project_id"] == "default" and person(e)
    ]
