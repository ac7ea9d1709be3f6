"""Segment membership and `survey_results_daily` in ClickHouse against independent Python models of the same
rules (the condition descriptions of pravis_schemas.surveys, NPS by Bain's bands), on synthetic users.

Events go straight into ClickHouse (no Kafka), each on-time row twice in separate inserts so only FINAL
counts it once; some anonymous ids log in (identify), so persons span several ids (tests/support/persons.py).
"""

import random
import secrets
import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from pravis_local.surveys_cli import survey_app
from pravis_rollups import clickhouse
from pravis_rollups.jobs import run_rollups
from pravis_rollups.rollups import RollupOptions
from pravis_rollups.segment_refresh import refresh_segments
from pravis_rollups.survey_results import recent_text_answers, segment_results, survey_summary
from pravis_schemas.funnels import FUNNEL_COLUMNS, FunnelDefinition
from pravis_schemas.surveys import SegmentDefinition
from typer.testing import CliRunner
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tests.support.persons import persons

AS_OF = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
DAYS = 60
USERS = 120
PROJECTS = ("p-a", "p-b")
FEATURES = ("search", "export", "voice")
INACTIVE = {"api_request", "identify", "alias"}

SEGMENTS = {
    "regulars": [{"type": "active_days", "min_days": 10, "of_last_days": 30}],
    "early-exporters": [
        {"type": "first_seen", "before": "2026-05-15"},
        {"type": "used_feature", "feature_name": "export", "within_days": 20},
    ],
    "variant-b-mobile": [
        {"type": "experiment_variant", "experiment_key": "checkout", "variant": "b"},
        {"type": "attribute", "attribute": "device", "values": ["iPhone", "Pixel"]},
    ],
    "unhappy": [{"type": "rating_at_most", "max_rating": 2, "within_days": 30}],
    "new-de": [
        {"type": "first_seen", "after": "2026-05-20"},
        {"type": "attribute", "attribute": "locale", "values": ["de-DE"]},
    ],
    "reached-export": [{"type": "funnel_step", "funnel_key": "explore", "step": 2, "within_days": 20}],
}
FUNNEL = {
    "key": "explore",
    "steps": [
        {"event_type": "page_view"},
        {"event_type": "feature_use", "filters": [{"property": "feature_name", "equals": "export"}]},
    ],
    "window_s": 7 * 86_400,
    "count_by": "session",
}
"""Counted per person in a segment although the funnel itself counts sessions."""


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def row(project: str, event_type: str, at: datetime, user_id=None, anonymous_id=None, **fields) -> dict:
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "project_id": project,
        "timestamp": iso(at),
        "received_at": iso(at),
        "properties": {},
        **fields,
    }
    if user_id:
        event["user_id"] = user_id
    if anonymous_id:
        event["anonymous_id"] = anonymous_id
    return event


def synthetic_events(rng: random.Random) -> list[dict]:
    events = []
    start = AS_OF - timedelta(days=DAYS)
    for n in range(USERS):
        project = PROJECTS[n % 2]
        user, anonymous = f"u{n}", f"anon{n}"
        device = rng.choice(["iPhone", "Pixel", "Other", None])
        locale = rng.choice(["de-DE", "en-US"])
        first_day = rng.randrange(DAYS)
        logs_in = rng.random() < 0.5
        for day in sorted(rng.sample(range(first_day, DAYS), k=min(DAYS - first_day, rng.randrange(1, 25)))):
            at = start + timedelta(days=day, seconds=rng.randrange(86_400))
            if at >= AS_OF:
                continue
            ids = {"user_id": user} if logs_in and day > first_day else {"anonymous_id": anonymous}
            base = {"device": device, "locale": locale, "app_version": rng.choice(["1.0", "2.0"])}
            kind = rng.random()
            if kind < 0.5:
                events.append(row(project, "page_view", at, **ids, **base))
            elif kind < 0.7:
                events.append(
                    row(project, "feature_use", at, **ids, **base, feature_name=rng.choice(FEATURES))
                )
            elif kind < 0.8:
                events.append(
                    row(
                        project,
                        "experiment_exposure",
                        at,
                        **ids,
                        **base,
                        experiment_key="checkout",
                        variant=rng.choice(["a", "b"]),
                        in_experiment=rng.random() < 0.9,
                    )
                )
            elif kind < 0.9:
                events.append(row(project, "feedback", at, **ids, **base, rating=rng.randint(1, 5)))
            else:
                events.append(
                    row(
                        project,
                        "api_request",
                        at,
                        **ids,
                        endpoint="/x",
                        method="GET",
                        status=200,
                        duration_ms=1.0,
                    )
                )
        if logs_in:
            at = start + timedelta(days=first_day, seconds=86_399)
            if at < AS_OF:
                events.append(row(project, "identify", at, user_id=user, anonymous_id=anonymous))
    return events


# ---------------------------------------------------------------- the independent model of the conditions


def reached_funnel_step(condition: dict, rows: list[dict], at) -> bool:
    """docs/funnels.md, ordered: the person enters at its first step-1 event on the days from
    (AS_OF - within_days) to AS_OF's day; each later step is its first matching event after the previous
    step's, within the window of the entry."""
    first_day = (AS_OF - timedelta(days=condition["within_days"])).date()
    steps = FUNNEL["steps"]

    def matches(e: dict, step: dict) -> bool:
        return e["event_type"] == step["event_type"] and all(
            e.get(f["property"]) == f["equals"] for f in step.get("filters", [])
        )

    ordered = sorted(rows, key=lambda e: (at(e), e["event_id"]))
    entry = next(
        (
            i
            for i, e in enumerate(ordered)
            if matches(e, steps[0]) and first_day <= at(e).date() <= AS_OF.date()
        ),
        None,
    )
    if entry is None:
        return False
    deadline = at(ordered[entry]) + timedelta(seconds=FUNNEL["window_s"])
    position = entry
    for step in steps[1 : condition["step"]]:
        position = next(
            (
                i
                for i in range(position + 1, len(ordered))
                if matches(ordered[i], step) and at(ordered[i]) <= deadline
            ),
            None,
        )
        if position is None:
            return False
    return True


def model_members(events: list[dict]) -> dict[tuple[str, str], set[str]]:
    """(project, segment) -> ids of member persons, by the rules as documented."""
    person = persons(events)
    by_person: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in events:
        by_person[(e["project_id"], person(e))].append(e)

    def at(e: dict) -> datetime:
        return datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))

    def within(e: dict, days: int) -> bool:
        return at(e) >= AS_OF - timedelta(days=days)

    def holds(condition: dict, rows: list[dict]) -> bool:
        kind = condition["type"]
        if kind == "active_days":
            days = {
                at(e).date()
                for e in rows
                if e["event_type"] not in INACTIVE and within(e, condition["of_last_days"])
            }
            return len(days) >= condition["min_days"]
        if kind == "first_seen":
            first = min(at(e) for e in rows)
            ok = True
            if "before" in condition:
                ok &= first < datetime.fromisoformat(condition["before"]).replace(tzinfo=UTC)
            if "after" in condition:
                ok &= first >= datetime.fromisoformat(condition["after"]).replace(tzinfo=UTC)
            return ok
        if kind == "used_feature":
            return any(
                e["event_type"] == "feature_use"
                and e["feature_name"] == condition["feature_name"]
                and within(e, condition["within_days"])
                for e in rows
            )
        if kind == "experiment_variant":
            return any(
                e["event_type"] == "experiment_exposure"
                and e["in_experiment"]
                and e["experiment_key"] == condition["experiment_key"]
                and e["variant"] == condition["variant"]
                for e in rows
            )
        if kind == "attribute":
            seen = [e for e in rows if e.get(condition["attribute"]) is not None]
            latest = max(seen, key=at)[condition["attribute"]] if seen else ""
            return latest in condition["values"]
        if kind == "funnel_step":
            return reached_funnel_step(condition, rows, at)
        if kind == "rating_at_most":
            return any(
                e["event_type"] == "feedback"
                and e["rating"] <= condition["max_rating"]
                and within(e, condition["within_days"])
                for e in rows
            )
        raise AssertionError(kind)

    members: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (project, _), rows in by_person.items():
        for key, conditions in SEGMENTS.items():
            if all(holds(c, rows) for c in conditions):
                members[(project, key)] |= {e.get("user_id") or e["anonymous_id"] for e in rows}
    return members


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return synthetic_events(random.Random(23))


@pytest.fixture(scope="module")
def warehouse_url(clickhouse_server: str) -> str:
    return f"{clickhouse_server}/pravis_surveys_{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def warehouse(warehouse_url: str, events: list[dict]) -> Iterator[Any]:
    url = warehouse_url
    clickhouse.migrate(url)
    with clickhouse.connect(url) as client:
        rows = [orjson.dumps(e) for e in events]
        clickhouse.insert_json_rows(client, "events", rows)
        clickhouse.insert_json_rows(client, "events", rows)
        clickhouse.refresh_identity_merges(client)
        yield client


def save_segments(client) -> None:
    now = datetime.now(UTC)
    rows = []
    for project in PROJECTS:
        for key, conditions in SEGMENTS.items():
            definition = SegmentDefinition.model_validate({"key": key, "conditions": conditions})
            rows.append([project, key, 1, definition.model_dump_json(), now])
    client.insert(
        "segments", rows, column_names=["project_id", "segment_key", "version", "definition", "created_at"]
    )
    funnel = FunnelDefinition.model_validate(FUNNEL).model_dump_json()
    client.insert(
        "funnels", [[p, FUNNEL["key"], 1, funnel, now] for p in PROJECTS], column_names=list(FUNNEL_COLUMNS)
    )


def test_segment_members_match_the_model_of_every_condition_type(warehouse, events) -> None:
    save_segments(warehouse)
    expected = model_members(events)

    first = refresh_segments(warehouse, AS_OF)
    second = refresh_segments(warehouse, AS_OF)

    got: dict[tuple[str, str], set[str]] = defaultdict(set)
    for project, key, distinct_id in warehouse.query(
        "SELECT project_id, segment_key, distinct_id FROM segment_members WHERE refresh_id = "
        "(SELECT max(refresh_id) FROM segment_refreshes)"
    ).result_rows:
        got[(project, key)].add(distinct_id)
    assert dict(got) == dict(expected)
    all_ids = {e.get("user_id") or e["anonymous_id"] for e in events}
    for key in SEGMENTS:
        sizes = [len(expected.get((p, key), ())) for p in PROJECTS]
        assert 0 < sum(sizes) < len(all_ids) / 2, f"segment {key} is trivially empty or full: {sizes}"
    assert second.members == first.members == sum(len(v) for v in expected.values())
    partitions = warehouse.query("SELECT uniqExact(refresh_id) FROM segment_members").result_rows[0][0]
    assert partitions == 1, "the older refresh was not dropped"


# ------------------------------------------------------- survey results vs an independent computation


TEXTS = ("great", "so slow", "I hate the new menu", "it is an app", "love it, really nice")


def scored_rows(events: list[dict]) -> list[dict]:
    """What the stream tier sends for the open-text answers: the vaderSentiment package's own scores."""
    analyzer = SentimentIntensityAnalyzer()
    rows = []
    for e in events:
        for answer in e.get("survey_answers", []):
            if answer.get("text"):
                compound = analyzer.polarity_scores(answer["text"])["compound"]
                label = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
                rows.append(
                    {
                        "event_id": e["event_id"],
                        "project_id": e["project_id"],
                        "timestamp": e["timestamp"],
                        "user_id": e["user_id"],
                        "survey_id": e["survey_id"],
                        "survey_version": e["survey_version"],
                        "question_id": answer["question_id"],
                        "sentiment_score": compound,
                        "sentiment_label": label,
                        "scored_at": e["timestamp"],
                    }
                )
    return rows


def survey_events(rng: random.Random) -> list[dict]:
    """The same events, event ids included, for the same seed (the tests below regenerate them)."""
    out = []
    day = AS_OF - timedelta(days=2)

    def survey_row(event_type: str, at: datetime, user: str, version: int, **fields) -> dict:
        event_id = str(uuid.UUID(int=rng.getrandbits(128)))
        return row(
            "p-a",
            event_type,
            at,
            user_id=user,
            survey_id="ux",
            survey_version=version,
            event_id=event_id,
            **fields,
        )

    for n in range(80):
        user = f"s{n}"
        at = day + timedelta(seconds=rng.randrange(86_400 * 2 - 3600))
        version = rng.choice([1, 2])
        out.append(survey_row("survey_shown", at, user, version))
        fate = rng.random()
        later = at + timedelta(seconds=rng.randrange(1, 3000))
        if fate < 0.25:
            out.append(survey_row("survey_dismissed", later, user, version))
        elif fate < 0.9:
            answers = [{"question_id": "nps", "value": rng.randint(0, 10), "choices": []}]
            if rng.random() < 0.7:
                answers.append({"question_id": "why", "choices": [], "text": rng.choice(TEXTS)})
            if rng.random() < 0.8:
                picked = rng.sample(["speed", "price", "design"], k=rng.randint(1, 3))
                answers.append({"question_id": "likes", "choices": picked})
            out.append(survey_row("survey_answered", later, user, version, survey_answers=answers))
    return out


def model_results(rows: list[dict]) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for e in rows:
        d = e["timestamp"][:10]
        grouped[(d, e["survey_version"], "")].append(e)
        for answer in e.get("survey_answers", []):
            grouped[(d, e["survey_version"], answer["question_id"])].append({**answer, "user": e["user_id"]})
    for key, items in grouped.items():
        if key[2] == "":
            types = Counter(e["event_type"] for e in items)
            out[key] = {
                "shown": types["survey_shown"],
                "dismissed": types["survey_dismissed"],
                "answered": types["survey_answered"],
                "respondents": len({e["user_id"] for e in items if e["event_type"] == "survey_answered"}),
            }
            continue
        values = [a["value"] for a in items if a.get("value") is not None]
        out[key] = {
            "responses": len(items),
            "respondents": len({a["user"] for a in items}),
            "avg_value": statistics.fmean(values) if values else None,
            "promoters": sum(v >= 9 for v in values),
            "passives": sum(7 <= v <= 8 for v in values),
            "detractors": sum(v <= 6 for v in values),
            "value_counts": dict(Counter(values)),
            "choice_counts": dict(Counter(c for a in items for c in a.get("choices", []))),
            "text_answers": sum(bool(a.get("text")) for a in items),
        }
    return out


def test_survey_results_daily_matches_an_independent_computation(warehouse) -> None:
    rows = survey_events(random.Random(5))
    encoded = [orjson.dumps(e) for e in rows]
    clickhouse.insert_json_rows(warehouse, "events", encoded)
    clickhouse.insert_json_rows(warehouse, "events", encoded)
    expected = model_results(rows)
    first, last = date.fromisoformat(min(expected)[0]), date.fromisoformat(max(expected)[0])

    run_rollups(warehouse, first, last, names=["survey_results_daily"], options=RollupOptions(as_of=last))

    result = warehouse.query(
        "SELECT toString(day), survey_version, question_id, shown, dismissed, answered, respondents, "
        "responses, avg_value, promoters, passives, detractors, value_counts, choice_counts, text_answers "
        "FROM survey_results_daily WHERE project_id = 'p-a' AND survey_id = 'ux'"
    ).result_rows
    got = {}
    for (
        d,
        version,
        qid,
        shown,
        dismissed,
        answered,
        respondents,
        responses,
        avg,
        pro,
        pas,
        det,
        vc,
        cc,
        texts,
    ) in result:
        if qid == "":
            got[(d, version, qid)] = {
                "shown": shown,
                "dismissed": dismissed,
                "answered": answered,
                "respondents": respondents,
            }
        else:
            got[(d, version, qid)] = {
                "responses": responses,
                "respondents": respondents,
                "avg_value": avg,
                "promoters": pro,
                "passives": pas,
                "detractors": det,
                "value_counts": dict(vc),
                "choice_counts": dict(cc),
                "text_answers": texts,
            }
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        have = got[key]
        if want.get("avg_value") is not None:
            assert have.pop("avg_value") == pytest.approx(want.pop("avg_value"))
        assert have == want, key
    nps_rows = [v for k, v in expected.items() if k[2] == "nps"]
    promoters = sum(v["promoters"] for v in nps_rows)
    detractors = sum(v["detractors"] for v in nps_rows)
    assert promoters and detractors, "the data should hold both bands"


def test_survey_summary_gives_nps_per_version_for_nps_questions_only(warehouse, warehouse_url) -> None:
    """Runs after the results test (same module warehouse): NPS = 100 (promoters - detractors) / answers."""
    definition = {
        "key": "ux",
        "status": "running",
        "questions": [
            {"id": "nps", "type": "nps", "text": "?"},
            {"id": "why", "type": "open_text", "text": "?"},
            {"id": "likes", "type": "multiple_choice", "text": "?", "choices": ["speed", "price", "design"]},
        ],
    }
    now = datetime.now(UTC)
    rows = [["p-a", "ux", v, "running", orjson.dumps(definition).decode(), now] for v in (1, 2)]
    columns = ["project_id", "survey_key", "version", "status", "definition", "created_at"]
    warehouse.insert("surveys", rows, column_names=columns)
    events = survey_events(random.Random(5))
    scored = scored_rows(events)
    rescored_earlier = [
        {**r, "sentiment_score": 0.0, "scored_at": "2000-01-01T00:00:00.000Z"} for r in scored
    ]
    clickhouse.insert_json_rows(warehouse, "survey_answer_sentiment", [orjson.dumps(r) for r in scored])
    clickhouse.insert_json_rows(
        warehouse, "survey_answer_sentiment", [orjson.dumps(r) for r in rescored_earlier]
    )

    summary = survey_summary(warehouse, "p-a", "ux")

    for version in (1, 2):
        mine = [e for e in events if e["survey_version"] == version]
        values = [a["value"] for e in mine for a in e.get("survey_answers", []) if a["question_id"] == "nps"]
        shown = sum(e["event_type"] == "survey_shown" for e in mine)
        answered = sum(e["event_type"] == "survey_answered" for e in mine)
        expected_nps = 100 * (sum(v >= 9 for v in values) - sum(v <= 6 for v in values)) / len(values)
        by_question = {r["question"]: r for r in summary if r["version"] == version}
        assert by_question[""]["response_rate"] == pytest.approx(answered / shown)
        assert by_question["nps"]["nps"] == pytest.approx(expected_nps)
        assert by_question["nps"]["avg_value"] == pytest.approx(statistics.fmean(values))
        assert by_question["likes"]["nps"] is None and by_question["why"]["text_answers"] > 0
        scores = [r["sentiment_score"] for r in scored if r["survey_version"] == version]
        why = by_question["why"]
        assert why["avg_sentiment"] == pytest.approx(statistics.fmean(scores))
        labels = Counter(r["sentiment_label"] for r in scored if r["survey_version"] == version)
        assert (why["positive"], why["negative"]) == (labels["positive"], labels["negative"])
        assert by_question["nps"]["avg_sentiment"] is None
    assert {r["sentiment_label"] for r in scored} == {"positive", "negative", "neutral"}

    recent = recent_text_answers(warehouse, "p-a", "ux", limit=5)

    newest = sorted(scored, key=lambda r: r["timestamp"], reverse=True)[:5]
    assert [(r["version"], r["question"], r["sentiment_score"], r["sentiment_label"]) for r in recent] == [
        (r["survey_version"], "why", r["sentiment_score"], r["sentiment_label"]) for r in newest
    ]

    printed = CliRunner().invoke(survey_app, ["results", "ux", "--project", "p-a", "--url", warehouse_url])
    assert printed.exit_code == 0, printed.output
    assert "newest open-text answers" in printed.output and newest[0]["sentiment_label"] in printed.output


def test_segment_results_match_the_members_model(warehouse, warehouse_url, events) -> None:
    """Answers by members of the synthetic segments, after their refresh (so the answers change no
    membership): per segment and version, answered events, NPS responses, average and NPS as computed here."""
    save_segments(warehouse)
    refresh_segments(warehouse, AS_OF)
    members = model_members(events)
    rng = random.Random(11)
    ids = sorted({e.get("user_id") or e["anonymous_id"] for e in events if e["project_id"] == "p-a"})
    answers = []
    for distinct_id in rng.sample(ids, 40):
        answer = [{"question_id": "nps", "value": rng.randint(0, 10), "choices": []}]
        if rng.random() < 0.2:
            answer = [{"question_id": "why", "choices": [], "text": "fine"}]  # no NPS response
        who = {"user_id": distinct_id} if distinct_id.startswith("u") else {"anonymous_id": distinct_id}
        at = AS_OF - timedelta(hours=rng.randrange(1, 48))
        answers.append(
            row(
                "p-a",
                "survey_answered",
                at,
                survey_id="seg-ux",
                survey_version=rng.choice([1, 2]),
                survey_answers=answer,
                **who,
            )
        )
    clickhouse.insert_json_rows(warehouse, "events", [orjson.dumps(e) for e in answers])

    got = {(r["segment"], r["version"]): r for r in segment_results(warehouse, "p-a", "seg-ux", "nps")}

    expected = {}
    for (project, segment), member_ids in members.items():
        for version in (1, 2):
            mine = [
                e
                for e in answers
                if project == "p-a"
                and e["survey_version"] == version
                and (e.get("user_id") or e["anonymous_id"]) in member_ids
            ]
            values = [a["value"] for e in mine for a in e["survey_answers"] if a["question_id"] == "nps"]
            if mine:
                score = (
                    100 * (sum(v >= 9 for v in values) - sum(v <= 6 for v in values)) / len(values)
                    if values
                    else None
                )
                expected[(segment, version)] = (
                    len(mine),
                    len(values),
                    statistics.fmean(values) if values else None,
                    score,
                )
    assert len(expected) >= 4, "the answers should fall into several segments"
    assert got.keys() == expected.keys()
    for key, (answered, responses, average, score) in expected.items():
        row_ = got[key]
        assert (row_["answered"], row_["responses"]) == (answered, responses), key
        assert row_["avg_value"] == pytest.approx(average) and row_["nps"] == pytest.approx(score), key

    days = sorted({date.fromisoformat(e["timestamp"][:10]) for e in answers})
    run_rollups(
        warehouse, days[0], days[-1], names=["survey_results_daily"], options=RollupOptions(as_of=days[-1])
    )
    listed = ["results", "seg-ux", "--project", "p-a", "--url", warehouse_url, "--by-segment", "nps"]
    printed = CliRunner().invoke(survey_app, listed, terminal_width=200)
    assert printed.exit_code == 0 and "nps per segment" in printed.output, printed.output
    assert all(segment in printed.output for segment, _ in got), printed.output
