"""The weekly feedback report's survey section and top feature requests of the week, against an independent
Python model of the synthetic rows: each survey version's shown/answered counts, response rate and NPS, the
week's newest open-text answers with their VADER sentiment, a running survey nobody saw, and the requests
ranked by the persons voting in the week; in the Markdown, the HTML and the webhook message."""

import json
import secrets
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pravis_local.synthetic import SyntheticConfig, generate, json_rows, parse_iso
from pravis_rollups import clickhouse, feedback_report
from pravis_schemas.feature_requests import SET_STATUS_SQL
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tests.support.persons import persons
from tests.support.receivers import Receiver

CONFIG = SyntheticConfig(seed=23, users=50, days=14)
WEEK = CONFIG.start + timedelta(days=7)  # a Monday
SURVEY = {
    "key": "ux-quarterly",
    "status": "running",
    "questions": [{"id": "nps", "type": "nps", "text": "?"}, {"id": "why", "type": "open_text", "text": "?"}],
}
UNSEEN = {
    "key": "beta-poll",
    "status": "running",
    "questions": [{"id": "r", "type": "rating", "text": "?", "scale": 5}],
}
STATUSES = {"dark mode": "planned"}
vader = SentimentIntensityAnalyzer()


def label(score: float) -> str:
    return "positive" if score >= 0.05 else "negative" if score <= -0.05 else "neutral"  # VADER's advice


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return [e for e in generate(CONFIG).all_events() if e["project_id"] == "default"]


@pytest.fixture(scope="module")
def client(clickhouse_server: str, rows) -> Any:
    url = f"{clickhouse_server}/pravis_report_surveys_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    dataset = generate(CONFIG)
    sentiment = [
        {
            **{k: e[k] for k in ("event_id", "project_id", "timestamp", "survey_id", "survey_version")},
            "question_id": a["question_id"],
            "sentiment_score": vader.polarity_scores(a["text"])["compound"],
            "sentiment_label": label(vader.polarity_scores(a["text"])["compound"]),
            "scored_at": e["received_at"],
        }
        for e in dataset.all_events()
        for a in e.get("survey_answers") or ()
        if a.get("text")
    ]
    now = datetime.now(UTC)
    definitions = [
        ["default", "ux-quarterly", 1, "running", orjson.dumps(SURVEY).decode(), now],
        ["default", "beta-poll", 1, "draft", orjson.dumps({**UNSEEN, "status": "draft"}).decode(), now],
        ["default", "beta-poll", 2, "running", orjson.dumps(UNSEEN).decode(), now],
    ]
    with clickhouse.connect(url) as c:
        clickhouse.insert_json_rows(c, "events", json_rows(dataset.all_events() + dataset.duplicates))
        clickhouse.refresh_identity_merges(c)
        clickhouse.insert_json_rows(c, "survey_answer_sentiment", json_rows(sentiment))
        columns = ["project_id", "survey_key", "version", "status", "definition", "created_at"]
        c.insert("surveys", definitions, column_names=columns)
        for title, status in STATUSES.items():
            c.command(SET_STATUS_SQL, parameters={"project": "default", "title": title, "status": status})
        yield c


def in_week(e: dict[str, Any]) -> bool:
    return WEEK <= parse_iso(e["timestamp"]).date() < WEEK + timedelta(days=7)


def test_survey_section_matches_the_model(client, rows, tmp_path: Path) -> None:
    mine = [e for e in rows if in_week(e) and e.get("survey_id") == "ux-quarterly"]
    kinds = Counter(e["event_type"] for e in mine)
    values = [a["value"] for e in mine for a in e.get("survey_answers") or () if a["question_id"] == "nps"]
    nps = 100 * (sum(v >= 9 for v in values) - sum(v <= 6 for v in values)) / len(values)
    texts = sorted(
        ((e["timestamp"], a["text"]) for e in mine for a in e.get("survey_answers") or () if a.get("text")),
        reverse=True,
    )[: feedback_report.TEXT_ANSWERS_PER_SURVEY]

    report = feedback_report.build(client, WEEK)

    [project] = [p for p in report.projects if p.project_id == "default"]
    surveys = {s.survey: s for s in project.surveys}
    assert set(surveys) == {"ux-quarterly", "beta-poll"}
    ux = surveys["ux-quarterly"]
    assert (ux.version, ux.status, ux.shown, ux.answered) == (
        1,
        "running",
        kinds["survey_shown"],
        kinds["survey_answered"],
    )
    assert ux.response_rate == pytest.approx(kinds["survey_answered"] / kinds["survey_shown"])
    [score] = ux.scores  # the open-text question has no score
    assert (score.question, score.responses) == ("nps", len(values)) and score.nps == pytest.approx(nps)
    assert [(t.timestamp.replace(tzinfo=UTC), t.text) for t in ux.texts] == [
        (parse_iso(t), x) for t, x in texts
    ]
    for t in ux.texts:
        expected = vader.polarity_scores(t.text)["compound"]
        assert t.sentiment_score == pytest.approx(expected) and t.sentiment_label == label(expected)
    beta = surveys["beta-poll"]
    assert (beta.version, beta.status, beta.shown, beta.answered, beta.response_rate) == (
        2,
        "running",
        0,
        0,
        None,
    )

    person = persons(rows)
    voters: dict[str, set[str]] = defaultdict(set)
    for e in rows:
        if e["event_type"] in ("feature_request", "feature_request_vote") and in_week(e):
            request = " ".join(
                "".join(c if c.isalnum() else " " for c in e["feature_request_title"].lower()).split()
            )
            voters[request].add(person(e))
    ranked = sorted(voters, key=lambda r: (-len(voters[r]), r))[: feedback_report.REQUESTS_PER_PROJECT]
    assert len(ranked) >= 2
    assert [(r.votes, r.weighted_votes, r.status) for r in project.requests] == [
        (len(voters[r]), len(voters[r]), STATUSES.get(r, "open"))
        for r in ranked  # no voter active lately
    ]
    top = project.requests[0]

    receiver = Receiver(lambda body, _headers: json.loads(body))
    try:
        written = feedback_report.write(report, tmp_path, receiver.url)
    finally:
        receiver.close()
    markdown, page = written.markdown.read_text(), written.html.read_text()
    headline = f"nps: NPS {nps:+.0f} ({len(values)} answers)"
    assert "### Surveys" in markdown and "### Top feature requests of the week" in markdown
    assert (
        f"| ux-quarterly | 1 | running | {ux.shown} | {ux.answered} | {ux.response_rate:.0%} | {headline} |"
        in markdown
    )
    assert f"| 1 | {top.title} | {top.votes} | {top.weighted_votes} | {top.status} |" in markdown
    assert f"{ux.texts[0].sentiment_label} {ux.texts[0].sentiment_score:+.2f}: {ux.texts[0].text}" in markdown
    assert "<h3>Surveys</h3>" in page and f"<td>{headline}</td>" in page
    [body] = receiver.accepted
    assert f"surveys: beta-poll v2: 0 answered, ux-quarterly v1: {headline}" in body["text"]
    assert f"top request: {top.title} ({top.votes} votes, {top.status})" in body["text"]
    [sent] = [p for p in body["report"]["projects"] if p["project_id"] == "default"]
    assert sent["surveys"] == [s.headline() for s in project.surveys]
    assert sent["top_requests"][0] == {"title": top.title, "votes": top.votes, "status": top.status}
