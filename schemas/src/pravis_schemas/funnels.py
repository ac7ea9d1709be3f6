"""Funnel definitions: the versioned config analysts save through the gateway and the warehouse computes from.

A funnel is 2-20 ordered steps, each an `event_type` with optional equality filters on an `events` column
(`GOAL_COLUMNS`) or a `properties.<path>`, a conversion window in seconds (> 0, at most 90 days), an order
mode, optional exclusion steps and the unit it counts (`person`, through the identity graph, or `session`).
A bad definition is refused (pydantic `ValidationError`, one reason per problem): the gateway answers 422.

Order modes (docs/funnels.md has the exact semantics and how they differ from PostHog's):
- `ordered`: each step after the previous one, other events may happen in between (PostHog "sequential").
- `strict`: each step is the unit's very next event after the previous step (PostHog "strict").
- `any_order`: step 1 first, the later steps in any order; step k counts units that did k of the steps
  (PostHog "unordered" for the steps after the first).

An exclusion names an event (and filters) that disqualifies a unit when it happens between two steps
(`from_step`, `to_step`, 1-based; default the whole funnel): the unit leaves every count of the funnel.
"""

from __future__ import annotations

import builtins
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pravis_schemas.events import EVENT_TYPE_PATTERN
from pravis_schemas.experiments import KEY_PATTERN, check_property

MAX_STEPS = 20
MAX_WINDOW_S = 90 * 86_400
"""Longest conversion window: a funnel reads events this far past its range, so the bound caps the scan."""
BREAKDOWN_COLUMNS = ("app_version", "browser", "os", "device", "locale")
"""`events` columns a funnel can be broken down by, besides `properties.<path>`, `variant:<experiment>` and
AI_BREAKDOWN."""
VARIANT_PREFIX = "variant:"
AI_BREAKDOWN = "ai_assistant"
"""Breakdown by whether the unit made an AI request (an `events.AI_EVENT_TYPES` event) during its attempt: at
or after its entry event and within the conversion window, the span its steps are searched in
(docs/funnels.md)."""
BREAKDOWNS = (*BREAKDOWN_COLUMNS, AI_BREAKDOWN)
"""The fixed breakdowns the dashboards and the CLI offer (besides `properties.<path>` and `variant:<key>`)."""

OrderMode = Literal["ordered", "strict", "any_order"]
CountBy = Literal["person", "session"]


class Filter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    property: str
    equals: str | int | float | bool

    _property = field_validator("property")(check_property)

    @builtins.property
    def equals_text(self) -> str:
        """The value as ClickHouse's `toString` renders the stored value (JSON true -> 'true')."""
        if isinstance(self.equals, bool):
            return "true" if self.equals else "false"
        return str(self.equals)


class Matcher(BaseModel):
    """An event type and the filters an event must all pass."""

    model_config = ConfigDict(extra="forbid")

    event_type: Annotated[str, Field(min_length=1, max_length=64, pattern=EVENT_TYPE_PATTERN)]
    filters: Annotated[list[Filter], Field(max_length=10)] = []


class Step(Matcher):
    name: Annotated[str, Field(max_length=100)] | None = None

    @builtins.property
    def label(self) -> str:
        return self.name or self.event_type


class Exclusion(Matcher):
    from_step: Annotated[int, Field(ge=1, le=MAX_STEPS)] = 1
    to_step: Annotated[int, Field(ge=1, le=MAX_STEPS)] | None = None
    """Default: the last step."""


class FunnelDefinition(BaseModel):
    """What an admin PUTs; the key comes from the URL."""

    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(pattern=KEY_PATTERN)]
    name: Annotated[str, Field(max_length=200)] | None = None
    steps: Annotated[list[Step], Field(min_length=2, max_length=MAX_STEPS)]
    window_s: Annotated[int, Field(gt=0, le=MAX_WINDOW_S, description="Conversion window from step 1")] = 1800
    order: OrderMode = "ordered"
    exclusions: Annotated[list[Exclusion], Field(max_length=10)] = []
    count_by: CountBy = "person"

    @model_validator(mode="after")
    def _steps_known(self) -> FunnelDefinition:
        for i, exclusion in enumerate(self.exclusions):
            last = exclusion.to_step or len(self.steps)
            if exclusion.from_step > len(self.steps) or last > len(self.steps):
                raise ValueError(
                    f"exclusion {i} names step {max(exclusion.from_step, last)}; "
                    f"the funnel has steps 1..{len(self.steps)}"
                )
            if exclusion.from_step >= last:
                raise ValueError(f"exclusion {i}: from_step {exclusion.from_step} is not before step {last}")
        return self

    def exclusion_span(self, exclusion: Exclusion) -> tuple[int, int]:
        """The 1-based steps an exclusion lies between."""
        return exclusion.from_step, exclusion.to_step or len(self.steps)


class StoredFunnel(BaseModel):
    """One version of a definition as kept in the warehouse table `funnels`."""

    project_id: str
    version: int
    created_at: str
    definition: FunnelDefinition


def check_breakdown(value: str | None) -> str | None:
    """A breakdown dimension: one of BREAKDOWNS, `properties.<path>` or `variant:<experiment key>` (ValueError
    with the reason otherwise)."""
    if value is None or value in BREAKDOWNS:
        return value
    if value.startswith(VARIANT_PREFIX):
        if re.match(KEY_PATTERN, value.removeprefix(VARIANT_PREFIX)):
            return value
        raise ValueError(f"{value!r}: 'variant:' must be followed by an experiment key")
    if value.startswith("properties."):
        return check_property(value)
    raise ValueError(
        f"unknown breakdown {value!r}: one of {', '.join(BREAKDOWNS)}, 'properties.<path>' or "
        "'variant:<experiment key>'"
    )


_STORED_COLUMNS = "project_id, version, toString(created_at), definition"
LATEST_FUNNELS_SQL = (
    f"SELECT {_STORED_COLUMNS} FROM funnels FINAL "
    "WHERE {project:Nullable(String)} IS NULL OR project_id = {project:Nullable(String)} "
    "ORDER BY version DESC LIMIT 1 BY project_id, funnel_key"
)
"""The newest version of every funnel (of `project`, or of every project when it is NULL): what the rollups,
the dashboards and the admin list read (rows for `stored_funnel`)."""
FUNNEL_HISTORY_SQL = (
    f"SELECT {_STORED_COLUMNS} FROM funnels FINAL "
    "WHERE project_id = {project:String} AND funnel_key = {key:String} ORDER BY version"
)
"""Every version of one funnel, oldest first (rows for `stored_funnel`)."""
FUNNEL_COLUMNS = ("project_id", "funnel_key", "version", "definition", "created_at")
"""Columns of a row inserted into `funnels`."""


def stored_funnel(row: tuple) -> StoredFunnel:
    project_id, version, created_at, definition = row
    return StoredFunnel(
        project_id=project_id,
        version=version,
        created_at=created_at,
        definition=FunnelDefinition.model_validate_json(definition),
    )
