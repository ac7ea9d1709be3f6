"""Survey definitions, answer checks and targeting (pravis_schemas.surveys), the last against an independent
model of the rules written from the issue's text: simulated users visit day after day, and every survey they
are shown, dismiss or answer is recorded; the model says who must see what, and nobody sees a survey again
after answering it (in its wave) or dismissing it too often."""

import hashlib
import random
from datetime import UTC, datetime, timedelta

import pytest
from pravis_schemas.events import SurveyAnswer, parse_event
from pravis_schemas.surveys import (
    SegmentDefinition,
    StoredSurvey,
    SurveyDefinition,
    SurveyHistory,
    answer_errors,
    surveys_to_show,
    wave_start,
)
from pydantic import ValidationError

QUESTIONS = [
    {"id": "nps", "type": "nps", "text": "Recommend us?", "branches": [{"equals": 10, "next": "why"}]},
    {"id": "rate", "type": "rating", "scale": 5, "text": "Rate search"},
    {"id": "pick", "type": "single_choice", "text": "Plan?", "choices": ["free", "pro"]},
    {"id": "many", "type": "multiple_choice", "text": "Uses?", "choices": ["a", "b", "c"], "required": False},
    {"id": "why", "type": "open_text", "text": "Why?", "required": False},
]


def stored(key: str = "ux", version: int = 1, **fields) -> StoredSurvey:
    definition = SurveyDefinition.model_validate(
        {"key": key, "questions": QUESTIONS, "status": "running", **fields}
    )
    return StoredSurvey(project_id="p", version=version, created_at="2026-01-01", definition=definition)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"questions": [{"id": "a", "type": "rating", "text": "x"}]}, "needs a scale"),
        ({"questions": [{"id": "a", "type": "nps", "text": "x", "scale": 5}]}, "only a rating has a scale"),
        (
            {"questions": [{"id": "a", "type": "single_choice", "text": "x", "choices": ["one"]}]},
            "at least 2",
        ),
        (
            {"questions": [{"id": "a", "type": "nps", "text": "x"}, {"id": "a", "type": "nps", "text": "y"}]},
            "unique",
        ),
        (
            {
                "questions": [
                    {"id": "a", "type": "nps", "text": "x", "branches": [{"equals": 11, "next": "end"}]}
                ]
            },
            "not a possible answer",
        ),
        (
            {
                "questions": [
                    {"id": "a", "type": "nps", "text": "x"},
                    {"id": "b", "type": "nps", "text": "y", "branches": [{"equals": 1, "next": "a"}]},
                ]
            },
            "must be a later question",
        ),
        ({"sample_percent": 101}, "less than or equal to 100"),
        ({"schedule": {"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}}, "after its start"),
    ],
)
def test_bad_definitions_are_refused_with_the_reason(change: dict, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        SurveyDefinition.model_validate({"key": "s", "questions": QUESTIONS, **change})


def test_segment_conditions_are_checked() -> None:
    with pytest.raises(ValidationError, match="min_days cannot exceed"):
        SegmentDefinition.model_validate(
            {"key": "s", "conditions": [{"type": "active_days", "min_days": 5, "of_last_days": 3}]}
        )
    with pytest.raises(ValidationError, match="first_seen needs before or after"):
        SegmentDefinition.model_validate({"key": "s", "conditions": [{"type": "first_seen"}]})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        SegmentDefinition.model_validate({"key": "s", "conditions": [{"type": "reached_goal"}]})
    with pytest.raises(ValidationError, match=r"conditions\.0\.funnel_step\.step"):
        SegmentDefinition.model_validate(
            {"key": "s", "conditions": [{"type": "funnel_step", "funnel_key": "f", "step": 0}]}
        )


def answers(*items: dict) -> list[SurveyAnswer]:
    return [SurveyAnswer.model_validate(item) for item in items]


def test_valid_answers_pass_and_each_bad_field_gets_a_reason() -> None:
    survey = stored()
    good = answers(
        {"question_id": "nps", "value": 10},
        {"question_id": "rate", "value": 5},
        {"question_id": "pick", "choices": ["pro"]},
        {"question_id": "many", "choices": ["a", "c"]},
        {"question_id": "why", "text": "fast"},
    )
    assert answer_errors(survey, "ux", good) == []

    bad = answers(
        {"question_id": "nps", "value": 10},
        {"question_id": "rate", "value": 7},
        {"question_id": "pick", "choices": ["free", "pro"]},
        {"question_id": "many", "choices": ["z"]},
        {"question_id": "why", "value": 3},
        {"question_id": "ghost", "value": 1},
        {"question_id": "nps", "value": 1},
    )
    assert answer_errors(survey, "ux", bad) == [
        "survey_answers.1.value: should be between 1 and 5, got 7",
        "survey_answers.2.choices: a single_choice answer has exactly one choice",
        "survey_answers.3.choices: unknown choice 'z'",
        "survey_answers.4.value: a open_text answer has no value",
        "survey_answers.5.question_id: unknown question 'ghost'",
        "survey_answers.6.question_id: question 'nps' answered twice",
    ]
    assert answer_errors(None, "gone", good) == ["survey_id: no survey 'gone'"]
    stopped = stored(status="stopped")
    assert answer_errors(stopped, "ux", good) == ["survey_id: survey 'ux' is stopped, not running"]


def test_answered_event_parses_its_answers() -> None:
    event = parse_event(
        {
            "event_id": "7b0f6bfa-0a1e-4a43-b35a-3c1e0c1d0f11",
            "event_type": "survey_answered",
            "timestamp": "2026-01-01T00:00:00Z",
            "user_id": "u",
            "survey_id": "ux",
            "survey_version": 2,
            "survey_answers": [{"question_id": "nps", "value": 9}],
        }
    )
    assert event.survey_answers[0].value == 9
    with pytest.raises(ValidationError, match="survey_answers"):
        parse_event({**event.model_dump(mode="json"), "survey_answers": []})


def test_quarterly_waves_start_on_the_quarter() -> None:
    schedule = SurveyDefinition.model_validate(
        {"key": "q", "questions": QUESTIONS, "schedule": {"recurrence": "quarterly"}}
    ).schedule
    assert wave_start(schedule, datetime(2026, 5, 17, tzinfo=UTC)) == datetime(2026, 4, 1, tzinfo=UTC)
    assert wave_start(schedule, datetime(2026, 12, 31, tzinfo=UTC)) == datetime(2026, 10, 1, tzinfo=UTC)
    assert (
        wave_start(schedule.model_copy(update={"recurrence": "none"}), datetime(2026, 5, 1, tzinfo=UTC))
        is None
    )


# ---------------------------------------------------------------- targeting vs an independent model


def model_sampled(key: str, user: str, percent: float) -> bool:
    """FNV-1a 32 of seed+user, /10000 as GrowthBook's v2 hash (pravis experiments use it), written anew."""

    def fnv(text: str) -> int:
        h = 0x811C9DC5
        for byte in text.encode():
            h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
        return h

    return (fnv(str(fnv(f"survey:{key}" + user))) % 10000) / 10000 * 100 < percent


def model_quarter(moment: datetime) -> tuple[int, int]:
    return moment.year, (moment.month - 1) // 3


def model_choice(
    surveys: list[dict], user: str, segments: set[str], log: list[tuple], now: datetime
) -> str | None:
    """log: (kind, survey key, when) of this user, everything shown/dismissed/answered so far."""
    last_shown = max((when for kind, _, when in log if kind == "shown"), default=None)
    for s in surveys:
        if s["status"] != "running" or not set(s["segments"]) <= segments:
            continue
        if s.get("start") and now < s["start"]:
            continue
        if s.get("end") and now >= s["end"]:
            continue
        if not model_sampled(s["key"], user, s["sample"]):
            continue
        if last_shown and now - last_shown < timedelta(days=s["gap_days"]):
            continue
        same_wave = (
            (lambda when: model_quarter(when) == model_quarter(now))
            if s["quarterly"]
            else (lambda when: True)
        )
        if any(kind == "answered" and key == s["key"] and same_wave(w) for kind, key, w in log):
            continue
        if (
            sum(kind == "dismissed" and key == s["key"] and same_wave(w) for kind, key, w in log)
            >= s["max_dismissals"]
        ):
            continue
        return s["key"]
    return None


SIM_SURVEYS = [
    {
        "key": "nps-pro",
        "status": "running",
        "segments": ["pro"],
        "sample": 100,
        "gap_days": 3,
        "max_dismissals": 2,
        "quarterly": False,
    },
    {
        "key": "ux-quarterly",
        "status": "running",
        "segments": [],
        "sample": 60,
        "gap_days": 3,
        "max_dismissals": 1,
        "quarterly": True,
    },
    {
        "key": "draft",
        "status": "draft",
        "segments": [],
        "sample": 100,
        "gap_days": 0,
        "max_dismissals": 1,
        "quarterly": False,
    },
    {
        "key": "late",
        "status": "running",
        "segments": ["unhappy"],
        "sample": 100,
        "gap_days": 1,
        "max_dismissals": 3,
        "quarterly": False,
        "start": datetime(2026, 3, 1, tzinfo=UTC),
        "end": datetime(2026, 6, 1, tzinfo=UTC),
    },
]


def as_stored(spec: dict, version: int) -> StoredSurvey:
    schedule = {"recurrence": "quarterly" if spec["quarterly"] else "none"}
    if spec.get("start"):
        schedule |= {"start": spec["start"].isoformat(), "end": spec["end"].isoformat()}
    definition = SurveyDefinition.model_validate(
        {
            "key": spec["key"],
            "status": spec["status"],
            "questions": QUESTIONS,
            "segments": spec["segments"],
            "sample_percent": spec["sample"],
            "schedule": schedule,
            "cap": {"days_between_surveys": spec["gap_days"], "max_dismissals": spec["max_dismissals"]},
        }
    )
    return StoredSurvey(project_id="p", version=version, created_at="x", definition=definition)


def test_targeting_and_caps_match_the_model_over_simulated_users() -> None:
    rng = random.Random(hashlib.sha256(b"surveys").digest())
    definitions = [as_stored(spec, i + 1) for i, spec in enumerate(SIM_SURVEYS)]
    shown_per_survey: dict[str, int] = {}
    for n in range(300):
        user = f"user-{n}"
        segments = {s for s in ("pro", "unhappy") if rng.random() < 0.5}
        log: list[tuple] = []
        history: dict[str, SurveyHistory] = {}
        now = datetime(2026, 1, 5, 9, tzinfo=UTC)
        for _visit in range(60):
            now += timedelta(hours=rng.choice([2, 20, 30, 75]))
            expected = model_choice(SIM_SURVEYS, user, segments, log, now)
            got = surveys_to_show(definitions, user, frozenset(segments), history, now)
            assert [s.definition.key for s in got] == ([expected] if expected else []), (user, now, log)
            if expected is None:
                continue
            shown_per_survey[expected] = shown_per_survey.get(expected, 0) + 1
            record = history.setdefault(expected, SurveyHistory())
            log.append(("shown", expected, now))
            record.shown.append(now)
            fate = rng.random()
            if fate < 0.4:
                log.append(("answered", expected, now))
                record.answered.append(now)
            elif fate < 0.8:
                log.append(("dismissed", expected, now))
                record.dismissed.append(now)
        for kind, key, answered_at in log:
            if kind == "answered" and key != "ux-quarterly":
                later = [w for k2, key2, w in log if k2 == "shown" and key2 == key and w > answered_at]
                assert not later, f"{user} saw {key} again after answering it"
    assert shown_per_survey.keys() == {"nps-pro", "ux-quarterly", "late"}
