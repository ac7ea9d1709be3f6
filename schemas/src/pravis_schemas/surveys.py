"""Surveys and segments: the versioned definitions the gateway targets from, the answer check, and who should
see which survey now (pure, no I/O).

A `SurveyDefinition` is refused (pydantic `ValidationError`, one reason per problem) unless its question ids
are unique, every choice question lists its choices, a rating has a scale of 5 or 10, and every branch names a
later question (so branching never loops). `answer_errors` checks one submitted `survey_answered` against the
version it answers: unknown question, wrong type, value out of range, unknown choice, a stopped survey.

A `SegmentDefinition` is a list of conditions over what the warehouse knows about a person, all of which must
hold; `pravis_rollups.segments` turns each condition type into SQL and refreshes a membership table.

`surveys_to_show` decides what `GET /api/v1/surveys?user_id=` answers from the definitions, the user's
segments and the user's survey history: running, inside its schedule, in the segments it targets, sampled
in, not answered in the current wave (a recurring survey starts a new wave every period), dismissed fewer
than `max_dismissals` times in the wave, and no survey at all shown to the user in the last
`days_between_surveys` days (the candidate's cap). At most one survey is returned: the first eligible in the
order given (the gateway passes them oldest key first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from pravis_schemas.assignment import hash_unit
from pravis_schemas.events import SurveyAnswer
from pravis_schemas.experiments import KEY_PATTERN, VARIANT_PATTERN
from pravis_schemas.funnels import MAX_STEPS

QUESTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
CHOICE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
END = "end"
"""Branch target that ends the survey."""

Status = Literal["draft", "running", "stopped"]
QuestionType = Literal["rating", "nps", "single_choice", "multiple_choice", "open_text"]
Recurrence = Literal["none", "monthly", "quarterly", "yearly"]
PERIOD_MONTHS: dict[Recurrence, int] = {"monthly": 1, "quarterly": 3, "yearly": 12}

NPS_PROMOTER_MIN, NPS_DETRACTOR_MAX = 9, 6
"""Net Promoter Score bands (Bain): 9-10 promoters, 0-6 detractors, 7-8 passives."""


class Branch(BaseModel):
    """After this question, go to `next` when the answer equals `equals` (a number or a choice key)."""

    model_config = ConfigDict(extra="forbid")

    equals: int | str
    next: Annotated[str, Field(pattern=QUESTION_ID_PATTERN)]


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=QUESTION_ID_PATTERN)]
    type: QuestionType
    text: Annotated[str, Field(min_length=1, max_length=1000)]
    scale: Literal[5, 10] | None = Field(None, description="Rating questions only: answers 1..scale.")
    choices: Annotated[list[Annotated[str, Field(pattern=CHOICE_PATTERN)]], Field(max_length=50)] = []
    required: bool = True
    branches: Annotated[list[Branch], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.type == "rating" and self.scale is None:
            raise ValueError(f"question {self.id!r}: a rating needs a scale of 5 or 10")
        if self.type != "rating" and self.scale is not None:
            raise ValueError(f"question {self.id!r}: only a rating has a scale")
        choice = self.type in ("single_choice", "multiple_choice")
        if choice and len(self.choices) < 2:
            raise ValueError(f"question {self.id!r}: a choice question needs at least 2 choices")
        if not choice and self.choices:
            raise ValueError(f"question {self.id!r}: only choice questions have choices")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"question {self.id!r}: choices must be unique")
        if self.type in ("open_text", "multiple_choice") and self.branches:
            raise ValueError(f"question {self.id!r}: branch on a rating, NPS or single choice answer")
        for branch in self.branches:
            if not self.accepts_value(branch.equals):
                raise ValueError(
                    f"question {self.id!r}: branch value {branch.equals!r} is not a possible answer"
                )
        return self

    @property
    def value_range(self) -> tuple[int, int] | None:
        if self.type == "nps":
            return 0, 10
        if self.type == "rating":
            return 1, self.scale or 5
        return None

    def accepts_value(self, value: int | str) -> bool:
        if self.type == "single_choice":
            return value in self.choices
        bounds = self.value_range
        return bounds is not None and isinstance(value, int) and bounds[0] <= value <= bounds[1]


class Schedule(BaseModel):
    """Shown from `start` to `end` (either open); a recurring survey may be answered again every period
    (quarterly: from each 1 Jan/Apr/Jul/Oct UTC), which is how a quarterly UX survey is run."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    recurrence: Recurrence = "none"

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.start and self.end and self.end <= self.start:
            raise ValueError("schedule end must be after its start")
        return self


class FrequencyCap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_dismissals: Annotated[int, Field(ge=1, le=100)] = 2
    """Not shown again in a wave after this many dismissals."""
    days_between_surveys: Annotated[int, Field(ge=0, le=365)] = 14
    """After this survey was shown, no survey at all is shown to the user for this many days."""


class SurveyDefinition(BaseModel):
    """What an admin PUTs; the key comes from the URL."""

    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(pattern=KEY_PATTERN)]
    name: Annotated[str, Field(max_length=200)] | None = None
    status: Status = "draft"
    questions: Annotated[list[Question], Field(min_length=1, max_length=30)]
    segments: Annotated[list[Annotated[str, Field(pattern=KEY_PATTERN)]], Field(max_length=10)] = Field(
        [], description="Segment keys the user must all be in; empty targets everyone."
    )
    sample_percent: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 100.0
    schedule: Schedule = Schedule()
    cap: FrequencyCap = FrequencyCap()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"question ids must be unique, got {ids}")
        position = {qid: i for i, qid in enumerate(ids)}
        for i, question in enumerate(self.questions):
            for branch in question.branches:
                if branch.next != END and position.get(branch.next, -1) <= i:
                    raise ValueError(
                        f"question {question.id!r}: branch target {branch.next!r} must be a later question "
                        f"or {END!r}"
                    )
        return self

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)


class StoredSurvey(BaseModel):
    """One version of a survey definition as kept in the warehouse table `surveys`."""

    project_id: str
    version: int
    created_at: str
    definition: SurveyDefinition


# Segment conditions: one model per type; pravis_rollups.segments has one SQL builder per type.
class ActiveDays(BaseModel):
    """Active (any event) on at least `min_days` of the last `of_last_days` days before the refresh."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["active_days"]
    min_days: Annotated[int, Field(ge=1, le=365)]
    of_last_days: Annotated[int, Field(ge=1, le=365)]

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.min_days > self.of_last_days:
            raise ValueError("min_days cannot exceed of_last_days")
        return self


class FirstSeen(BaseModel):
    """First event before (`before`) or on/after (`after`) a date (UTC)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["first_seen"]
    before: date | None = None
    after: date | None = None

    @model_validator(mode="after")
    def _bound(self) -> Self:
        if self.before is None and self.after is None:
            raise ValueError("first_seen needs before or after")
        return self


class UsedFeature(BaseModel):
    """A `feature_use` event of `feature_name` in the last `within_days` days."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["used_feature"]
    feature_name: Annotated[str, Field(min_length=1, max_length=200)]
    within_days: Annotated[int, Field(ge=1, le=3650)] = 90


class InVariant(BaseModel):
    """Exposed (in the experiment) to `variant` of `experiment_key`."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["experiment_variant"]
    experiment_key: Annotated[str, Field(pattern=KEY_PATTERN)]
    variant: Annotated[str, Field(pattern=VARIANT_PATTERN)]


class Attribute(BaseModel):
    """The user's latest `app_version`, `locale` or `device` (family) is one of `values`."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["attribute"]
    attribute: Literal["app_version", "locale", "device"]
    values: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=128)]], Field(min_length=1, max_length=50)
    ]


class RatingAtMost(BaseModel):
    """Gave a `feedback` rating of at most `max_rating` in the last `within_days` days."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["rating_at_most"]
    max_rating: Annotated[int, Field(ge=1, le=5)]
    within_days: Annotated[int, Field(ge=1, le=3650)] = 90


class ReachedFunnelStep(BaseModel):
    """Reached step `step` (1-based) of the saved funnel `funnel_key`, entering it in the last `within_days`
    days (the funnel's own steps, window, order and exclusions; per person whatever its `count_by`)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["funnel_step"]
    funnel_key: Annotated[str, Field(pattern=KEY_PATTERN)]
    step: Annotated[int, Field(ge=1, le=MAX_STEPS)]
    within_days: Annotated[int, Field(ge=1, le=365)] = 30


Condition = Annotated[
    ActiveDays | FirstSeen | UsedFeature | InVariant | Attribute | RatingAtMost | ReachedFunnelStep,
    Field(discriminator="type"),
]


class SegmentDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(pattern=KEY_PATTERN)]
    name: Annotated[str, Field(max_length=200)] | None = None
    conditions: Annotated[list[Condition], Field(min_length=1, max_length=10)]


NEWEST_SEGMENT_REFRESH_SQL = "SELECT max(refresh_id) FROM segment_refreshes"
"""The newest complete refresh (0 before the first): readers load its members only when it changed."""
SEGMENT_MEMBERS_SQL = """
SELECT project_id, segment_keys, groupArray(distinct_id)
FROM (
    SELECT project_id, distinct_id, arraySort(groupArray(segment_key)) AS segment_keys
    FROM segment_members WHERE refresh_id = {refresh_id:UInt64}
    GROUP BY project_id, distinct_id
)
GROUP BY project_id, segment_keys"""
"""The ids of one refresh (written by pravis_rollups.segment_refresh, read by the gateway) grouped by the set
of segments they are in: a handful of rows however many ids, so the reader parses one array of ids per set."""


class StoredSegment(BaseModel):
    project_id: str
    version: int
    created_at: str
    definition: SegmentDefinition


def answer_errors(stored: StoredSurvey | None, survey_id: str, answers: Sequence[SurveyAnswer]) -> list[str]:
    """Why a `survey_answered` cannot be accepted (empty when it can), one reason per field."""
    if stored is None:
        return [f"survey_id: no survey {survey_id!r}"]
    definition = stored.definition
    if definition.status != "running":
        return [f"survey_id: survey {survey_id!r} is {definition.status}, not running"]
    errors = []
    seen: set[str] = set()
    for index, answer in enumerate(answers):
        where = f"survey_answers.{index}"
        question = definition.question(answer.question_id)
        if question is None:
            errors.append(f"{where}.question_id: unknown question {answer.question_id!r}")
            continue
        if answer.question_id in seen:
            errors.append(f"{where}.question_id: question {answer.question_id!r} answered twice")
        seen.add(answer.question_id)
        errors.extend(f"{where}.{problem}" for problem in _answer_problems(question, answer))
    return errors


def _answer_problems(question: Question, answer: SurveyAnswer) -> list[str]:
    given = {name for name in ("value", "choices", "text") if getattr(answer, name) not in (None, [])}
    expected = {
        "rating": "value",
        "nps": "value",
        "single_choice": "choices",
        "multiple_choice": "choices",
        "open_text": "text",
    }[question.type]
    if given - {expected}:
        return [f"{name}: a {question.type} answer has no {name}" for name in sorted(given - {expected})]
    if expected not in given:
        return [f"{expected}: a {question.type} answer needs {expected}"]
    if expected == "value":
        low, high = question.value_range or (0, 0)
        if not low <= answer.value <= high:
            return [f"value: should be between {low} and {high}, got {answer.value}"]
        return []
    if expected == "choices":
        unknown = [c for c in answer.choices if c not in question.choices]
        if unknown:
            return [f"choices: unknown choice {', '.join(map(repr, unknown))}"]
        if question.type == "single_choice" and len(answer.choices) != 1:
            return ["choices: a single_choice answer has exactly one choice"]
        if len(set(answer.choices)) != len(answer.choices):
            return ["choices: a choice is given twice"]
    return []


def wave_start(schedule: Schedule, now: datetime) -> datetime | None:
    """Start of the current period of a recurring survey (None when it does not recur): answers before it
    do not stop the survey being shown again."""
    months = PERIOD_MONTHS.get(schedule.recurrence)
    if months is None:
        return None
    index = (now.year * 12 + now.month - 1) // months * months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@dataclass
class SurveyHistory:
    """What is known about one user and one survey: from the warehouse plus what this gateway accepted."""

    answered: list[datetime] = field(default_factory=list)
    dismissed: list[datetime] = field(default_factory=list)
    shown: list[datetime] = field(default_factory=list)

    def merge(self, other: SurveyHistory) -> SurveyHistory:
        """Both histories, an event known to both (same timestamp) once."""
        return SurveyHistory(
            sorted({*self.answered, *other.answered}),
            sorted({*self.dismissed, *other.dismissed}),
            sorted({*self.shown, *other.shown}),
        )


def sampled_in(survey_key: str, user_id: str, sample_percent: float) -> bool:
    """Stable per user and survey: the same hash experiments use, seeded with the survey key."""
    return hash_unit(f"survey:{survey_key}", user_id) * 100 < sample_percent


def surveys_to_show(
    surveys: Iterable[StoredSurvey],
    user_id: str,
    segments: frozenset[str],
    history: Mapping[str, SurveyHistory],
    now: datetime,
) -> list[StoredSurvey]:
    """The survey (zero or one, first saved first) `user_id` should see now; see the module docstring."""
    last_shown = max((at for past in history.values() for at in past.shown), default=None)
    for stored in surveys:
        definition = stored.definition
        if definition.status != "running" or not set(definition.segments) <= segments:
            continue
        schedule = definition.schedule
        if (schedule.start and now < schedule.start) or (schedule.end and now >= schedule.end):
            continue
        if not sampled_in(definition.key, user_id, definition.sample_percent):
            continue
        if last_shown and now - last_shown < timedelta(days=definition.cap.days_between_surveys):
            continue
        past = history.get(definition.key, SurveyHistory())
        since = wave_start(schedule, now)
        if any(since is None or at >= since for at in past.answered):
            continue
        if sum(since is None or at >= since for at in past.dismissed) >= definition.cap.max_dismissals:
            continue
        return [stored]
    return []
