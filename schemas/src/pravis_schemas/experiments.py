"""A/B experiment definitions: the versioned config the gateway assigns from and the rollups analyse.

A definition is refused (pydantic `ValidationError`, one reason per problem) unless it has 2-20 variants with
unique keys and weights summing to 1, a coverage in [0, 1], and goals that name an event type plus optionally
a property filter (`property` + `equals`) or a numeric property to average (`value_property`). A goal property
is either a column of the `events` table (`GOAL_COLUMNS`) or a path into `properties` written
`properties.a.b`.

The first variant is the control: users outside coverage, and every user while the experiment is not
`running`, get it with `in_experiment: false`.

A user is hashed on the id the SDK sends at exposure (`user_id`, else `anonymous_id`), so the variant seen
before login can differ from the one after it; `hash_on: "person"` makes the gateway hash on the person of
that id instead (`docs/identity.md`).
"""

from __future__ import annotations

import builtins
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pravis_schemas.events import EVENT_TYPE_PATTERN

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
VARIANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
PROPERTY_PATH_PATTERN = r"^properties(\.[A-Za-z0-9_$-]{1,100}){1,5}$"
WEIGHT_TOLERANCE = 1e-3
"""Weights must sum to 1 within this (GrowthBook silently uses equal weights beyond 0.99-1.01; we refuse)."""

GOAL_COLUMNS = frozenset(
    {
        "app_version",
        "button_id",
        "cache_hit",
        "completed",
        "context",
        "currency",
        "duration_ms",
        "endpoint",
        "error_type",
        "feature_name",
        "follow_up",
        "intent",
        "interaction_id",
        "locale",
        "method",
        "model_used",
        "order_id",
        "page_title",
        "page_url",
        "rating",
        "referrer",
        "request_duration_ms",
        "request_size_bytes",
        "response_size_bytes",
        "revenue",
        "status",
        "success",
        "transcription_corrected",
        "turn_count",
    }
)
"""`events` columns a goal may filter on or average; anything else goes through `properties.<path>`. Revenue
per user: `{"event_type": "order_completed", "value_property": "revenue"}`; conversion to order:
`{"event_type": "order_completed"}`."""
MONEY_GOAL_COLUMNS = frozenset({"revenue"})
"""Goal columns holding an amount in the event's `currency`: a goal averaging one converts every amount into
the reporting currency through `fx_rates` (the rate in force on the event's day, as revenue_daily does), so
the orders of a two-currency experiment add up; a filter on `currency` still narrows the goal to one."""

Status = Literal["draft", "running", "stopped"]
HashOn = Literal["id", "person"]


def check_property(value: str | None) -> str | None:
    """A goal or filter property: a GOAL_COLUMNS column or `properties.<path>` (ValueError otherwise)."""
    if value is None or value in GOAL_COLUMNS or re.match(PROPERTY_PATH_PATTERN, value):
        return value
    raise ValueError(
        f"{value!r} is neither an events column ({', '.join(sorted(GOAL_COLUMNS))}) nor 'properties.<path>'"
    )


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(pattern=VARIANT_PATTERN)]
    weight: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class Goal(BaseModel):
    """A metric: users with a matching event after their first exposure convert; with `value_property`, the
    per-user sum of that numeric property (0 without events) is averaged instead. A goal naming a saved
    `funnel` (instead of an event type) converts the users who complete it, entering after their exposure."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    event_type: Annotated[str, Field(min_length=1, max_length=64, pattern=EVENT_TYPE_PATTERN)] | None = None
    funnel: Annotated[str, Field(pattern=KEY_PATTERN)] | None = None
    property: str | None = None
    equals: str | int | float | bool | None = None
    value_property: str | None = None

    _property = field_validator("property", "value_property")(check_property)

    @model_validator(mode="after")
    def _filter_complete(self) -> Goal:
        if (self.property is None) != (self.equals is None):
            raise ValueError("a property filter needs both 'property' and 'equals'")
        if (self.event_type is None) == (self.funnel is None):
            raise ValueError("a goal names either an 'event_type' or a saved 'funnel'")
        if self.funnel is not None and (self.property or self.value_property):
            raise ValueError("a funnel goal takes no 'property' or 'value_property': its steps filter")
        return self

    @builtins.property
    def kind(self) -> Literal["conversion", "mean"]:
        return "mean" if self.value_property else "conversion"

    @builtins.property
    def is_money(self) -> bool:
        """Averages an amount (MONEY_GOAL_COLUMNS), converted into the reporting currency."""
        return self.value_property in MONEY_GOAL_COLUMNS

    @builtins.property
    def equals_text(self) -> str | None:
        """The filter value as ClickHouse's `toString` renders the stored value (JSON true -> 'true')."""
        if isinstance(self.equals, bool):
            return "true" if self.equals else "false"
        return None if self.equals is None else str(self.equals)


class ExperimentDefinition(BaseModel):
    """What an admin PUTs; the key comes from the URL. `seed` defaults to the key: changing the seed
    reshuffles every user, so keep it fixed for the life of an experiment."""

    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(pattern=KEY_PATTERN)]
    name: Annotated[str, Field(max_length=200)] | None = None
    seed: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    status: Status = "draft"
    coverage: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 1.0
    variants: Annotated[list[Variant], Field(min_length=2, max_length=20)]
    goals: Annotated[list[Goal], Field(max_length=20)] = []
    hash_on: Annotated[
        HashOn,
        Field(
            description="What the gateway hashes: the id the caller gives ('id', as the SDKs do locally) or "
            "the person that id belongs to once the identity graph knows it ('person': a user keeps one "
            "variant before and after login once linked; see docs/identity.md)"
        ),
    ] = "id"

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentDefinition:
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys):
            raise ValueError(f"variant keys must be unique, got {keys}")
        total = sum(v.weight for v in self.variants)
        if abs(total - 1) > WEIGHT_TOLERANCE:
            raise ValueError(f"variant weights must sum to 1, they sum to {total:g}")
        names = [g.name for g in self.goals]
        if len(set(names)) != len(names):
            raise ValueError(f"goal names must be unique, got {names}")
        return self

    @property
    def hash_seed(self) -> str:
        return self.seed or self.key

    @property
    def control(self) -> str:
        return self.variants[0].key

    @property
    def weights(self) -> list[float]:
        return [v.weight for v in self.variants]


class StoredExperiment(BaseModel):
    """One version of a definition as kept in the warehouse table `experiments`."""

    project_id: str
    version: int
    created_at: str
    definition: ExperimentDefinition
