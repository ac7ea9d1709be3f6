"""Improvement opportunities against a real warehouse: the ranked list on a dataset built to have a known
worst feature, every input figure and the score against the independent model of tests/opportunity_model.py,
the evidence queries, injection-safe parameters, and the weekly report's section.

Every test runs on three warehouses holding the same data: with no opportunities rollup (the list is computed
from raw events), with the rollups computed for the range but its last two days (rolled-up days and
raw days meet there), and with them computed for the whole range before the identity merge of a visitor who
logged in (the stored ids must count as the person they are now)."""

import json
import math
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pravis_local.cli import app
from pravis_local.synthetic import json_rows
from pravis_rollups import clickhouse, feedback_report
from pravis_rollups.jobs import run_rollups
from pravis_schemas import opportunities
from typer.testing import CliRunner

from tests import opportunity_model as model
from tests.support.receivers import Receiver

FIGURES = (
    "users",
    "uses",
    "feedback",
    "low_rated",
    "scored",
    "negative",
    "commands",
    "repeated_commands",
    "failed_uses",
    "failures",
    "funnel_reached",
    "funnel_dropped",
    "worst_comment",
    "top_failure",
)
VIEW = {"project": model.PROJECT, "date_from": model.FIRST, "date_to": model.LAST}
QUIET = "opp-quiet"
"""The model's project without its feedback: its opportunities come from failures, repeats and drop-off."""


@pytest.fixture(scope="module")
def data() -> tuple[list[dict], list[dict], list[dict]]:
    return model.build()


ROLLUPS = [opportunities.DAILY_TABLE, opportunities.USERS_TABLE]
PATHS = ("raw", "rolled up but the last two days", "rolled up before a merge")


def load(client, data, quiet: list[dict], path: str) -> None:
    """The dataset and its copy without feedback (project QUIET) into the empty database of `client`, with the
    opportunities rollups computed as `path` says, and the saved funnel of both with its funnel_daily."""
    events, copies, scored = data
    rows = events + copies + quiet
    merges = [e for e in rows if e["event_type"] == "identify"]
    assert merges
    clickhouse.insert_json_rows(client, "events", json_rows([e for e in rows if e not in merges]))
    clickhouse.refresh_identity_merges(client)
    clickhouse.insert_json_rows(client, "feedback_scored", json_rows(scored))
    if path == "rolled up before a merge":
        run_rollups(client, model.FIRST, model.LAST, ROLLUPS)
    # Through the loader's insert path, whose views build the identity graph.
    clickhouse.insert_json_rows(client, "events_ingest", json_rows(merges))
    clickhouse.refresh_identity_merges(client)
    client.insert(
        "funnels",
        [
            [project, model.FUNNEL.key, 1, model.FUNNEL.model_dump_json(), datetime.now(UTC)]
            for project in (model.PROJECT, QUIET)
        ],
        column_names=["project_id", "funnel_key", "version", "definition", "created_at"],
    )
    run_rollups(client, model.FIRST, model.LAST, ["funnel_daily"])
    if path == "rolled up but the last two days":
        run_rollups(client, model.FIRST, model.LAST - timedelta(days=2), ROLLUPS)


@pytest.fixture(scope="module", params=PATHS)
def path(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def quiet(data) -> list[dict]:
    events, _, _ = data
    return [{**e, "project_id": QUIET} for e in events if e["event_type"] != "feedback"]


@pytest.fixture(scope="module")
def url(clickhouse_server: str, path: str) -> str:
    return f"{clickhouse_server}/pravis_opp_{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def client(url: str, data, quiet, path: str) -> Iterator[Any]:
    clickhouse.migrate(url)
    with clickhouse.connect(url) as client:
        load(client, data, quiet, path)
        yield client


def rows_of(client, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=parameters)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def test_the_known_worst_feature_ranks_first_and_every_figure_matches_the_model(client, data) -> None:
    events, _, scored = data
    want = model.expected(events, scored)
    got = rows_of(client, opportunities.ranked_sql(), VIEW)

    assert (got[0]["kind"], got[0]["subject"]) == model.WORST
    assert [(r["kind"], r["subject"]) for r in got] == [(r["kind"], r["subject"]) for r in want]
    for mine, theirs in zip(got, want, strict=True):
        assert {k: mine[k] for k in FIGURES} == {k: theirs[k] for k in FIGURES}, mine["opportunity"]
        assert math.isclose(mine["score"], round(theirs["score"], 4), abs_tol=1e-4)
        shares = {
            "low_rating_share": ("low_rated", "feedback"),
            "negative_share": ("negative", "scored"),
            "repeated_command_rate": ("repeated_commands", "commands"),
            "failure_rate": ("failed_uses", "uses"),
            "funnel_dropoff": ("funnel_dropped", "funnel_reached"),
        }
        for share, (bad, n) in shares.items():
            expected = theirs[bad] / theirs[n] if theirs[n] else None
            assert mine[share] == pytest.approx(expected), (mine["opportunity"], share)
    worst = got[0]
    assert worst["funnel_step"] == "sizes: step 2 feature_use"
    assert worst["funnel_url"].endswith("&funnel=sizes#panel-funnel_steps")
    assert "opportunity=feature%3Asize_guide" in worst["feedback_url"]
    assert worst["top_failure"] == "GET /api/v1/sizes · HTTP 500"


def test_edges_of_the_attribution_are_in_the_dataset(data) -> None:
    """The model's expectations above only mean something if the dataset exercises the rules."""
    events, _, scored = data
    by_subject = {(r["kind"], r["subject"]): r for r in model.expected(events, scored)}
    assert by_subject[("intent", "track my order")]["repeated_commands"] > 0
    assert (
        by_subject[("feature", "wishlist")]["failure_labels"]["TypeError"] == 1
    )  # at 59 s, not the one at 61 s
    assert by_subject[model.WORST]["failure_labels"]["GET /api/v1/sizes · HTTP 502"] == 1  # the later use's
    assert by_subject[("feature", model.INJECTION)]["worst_comment"] == "(1) it's 'broken'"
    assert all(r["funnel_reached"] == 0 for key, r in by_subject.items() if key != model.WORST)
    shoes = by_subject[("intent", "find red shoes")]
    assert shoes["repeated_commands"] >= 1 and shoes["failure_labels"]["KeyError"] == 1
    asked = {e["interaction_id"] for e in events if e.get("intent") == "find red shoes"}
    rating = [e for e in events if e["event_type"] == "feedback" and e.get("interaction_id") in asked]
    assert shoes["worst_comment"] == "(1) no red"
    assert shoes["feedback"] == len(rating) - 1  # not the one two days after its request


def test_evidence_lists_the_subjects_lowest_rated_feedback_and_failures(client, data) -> None:
    events, _, _ = data
    unique = list({e["event_id"]: e for e in events}.values())
    sql, parameters = opportunities.feedback_evidence_sql("feature")
    got = rows_of(client, sql, {**VIEW, **parameters, "subject": "size_guide"})
    want = sorted(
        (e["rating"], e["timestamp"], e["event_id"])
        for e in unique
        if e["event_type"] == "feedback"
        and e.get("context") == "size_guide"
        and model.FIRST.isoformat() <= e["timestamp"][:10] <= model.LAST.isoformat()
    )[: opportunities.EVIDENCE_ROWS]
    assert [r["rating"] for r in got] == [w[0] for w in want]

    voice = {e["interaction_id"]: e["intent"] for e in unique if e["event_type"] == "voice_request"}
    sql, parameters = opportunities.feedback_evidence_sql("intent")
    got = rows_of(client, sql, {**VIEW, **parameters, "subject": "track my order"})
    assert got and all(r["ai_event_types"] == "voice_request" for r in got)
    about = [
        e
        for e in unique
        if e["event_type"] == "feedback" and voice.get(e.get("interaction_id")) == "track my order"
    ]
    assert len(got) == min(len(about), opportunities.EVIDENCE_ROWS)

    sql, parameters = opportunities.failure_evidence_sql("feature")
    failures = rows_of(client, sql, {**VIEW, **parameters, "subject": "size_guide"})
    ranked = {r["subject"]: r for r in rows_of(client, opportunities.ranked_sql(), VIEW)}
    assert sum(r["failures"] for r in failures) == ranked["size_guide"]["failures"]
    assert failures[0]["location"] == "GET /api/v1/sizes" and failures[0]["error_type"] == "HTTP 500"
    sql, parameters = opportunities.failure_evidence_sql("feature")
    wishlist = rows_of(client, sql, {**VIEW, **parameters, "subject": "wishlist"})
    assert [(r["error_type"], r["failures"]) for r in wishlist if r["failure_kind"] == "error"] == [
        ("TypeError", 1)
    ]


def test_subjects_and_projects_are_parameters_never_sql(client) -> None:
    hostile = model.INJECTION
    assert hostile not in opportunities.ranked_sql()
    sql, parameters = opportunities.feedback_evidence_sql("feature")
    got = rows_of(client, sql, {**VIEW, **parameters, "subject": hostile})
    assert [(r["rating"], r["comment"]) for r in got] == [(1, "it's 'broken'")]
    assert rows_of(client, opportunities.ranked_sql(), {**VIEW, "project": "x' OR 1=1 --"}) == []
    assert client.query("SELECT count() FROM events").result_rows[0][0] > 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("size_guide", "expected feature:<name> or intent:<intent>"),
        ("page:home", "expected feature:<name> or intent:<intent>"),
        ("feature:", "must be 1 to 200 characters"),
        ("intent:" + "x" * 201, "must be 1 to 200 characters"),
    ],
)
def test_a_bad_subject_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        opportunities.parse_subject(text)
    assert opportunities.parse_subject("intent:find: red shoes") == ("intent", "find: red shoes")


def test_the_weekly_report_lists_the_top_opportunities_with_their_evidence(
    client, data, tmp_path: Path
) -> None:
    events, _, scored = data
    want = model.expected(events, scored)[: feedback_report.OPPORTUNITIES_PER_PROJECT]
    report = feedback_report.build(client, model.FIRST)
    project = next(p for p in report.projects if p.project_id == model.PROJECT)
    assert [(o.kind, o.subject) for o in project.opportunities] == [(w["kind"], w["subject"]) for w in want]
    assert [o.score for o in project.opportunities] == pytest.approx(
        [round(w["score"], 4) for w in want], abs=1e-4
    )
    top = project.opportunities[0]
    assert top.worst_comment == want[0]["worst_comment"] and top.top_failure == want[0]["top_failure"]

    written = feedback_report.write(report, tmp_path)
    markdown, page = written.markdown.read_text(), written.html.read_text()
    assert "### Improvement opportunities" in markdown and "<h3>Improvement opportunities</h3>" in page
    line = next(line for line in markdown.splitlines() if line.startswith("| 1 |"))
    assert "size_guide" in line and "GET /api/v1/sizes · HTTP 500" in line and "sizes: step 2" in line
    assert opportunities.SCORE_FORMULA in markdown


def test_a_project_without_feedback_gets_its_opportunities_and_the_webhook_lists_them(
    client, data, quiet, tmp_path: Path
) -> None:
    events, _, scored = data
    top = feedback_report.OPPORTUNITIES_PER_PROJECT
    want = {model.PROJECT: model.expected(events, scored)[:top], QUIET: model.expected(quiet, [])[:top]}
    assert want[QUIET] and want[QUIET] != want[model.PROJECT]  # other scores without ratings and sentiment
    report = feedback_report.build(client, model.FIRST)
    by_project = {p.project_id: p for p in report.projects}
    assert by_project[QUIET].feedback == 0 and by_project[QUIET].lowest == []
    receiver = Receiver(lambda body, headers: json.loads(body))
    try:
        feedback_report.write(report, tmp_path, receiver.url)
    finally:
        receiver.close()
    [payload] = receiver.accepted
    sent = {p["project_id"]: p for p in payload["report"]["projects"]}
    lines = payload["text"].splitlines()
    for project, rows in want.items():
        subjects = [(w["kind"], w["subject"]) for w in rows]
        assert [(o.kind, o.subject) for o in by_project[project].opportunities] == subjects
        assert [(o["kind"], o["subject"]) for o in sent[project]["opportunities"]] == subjects
        assert [o["score"] for o in sent[project]["opportunities"]] == pytest.approx(
            [round(w["score"], 4) for w in rows], abs=1e-4
        )
        shown = ", ".join(f"{w['kind']} {w['subject']} (score {w['score']:.3f})" for w in rows[:3])
        assert lines[lines.index(next(x for x in lines if x.startswith(f"• {project}:"))) + 1] == (
            f"  top opportunities: {shown}"
        )


def test_the_cli_ranks_and_shows_one_subjects_evidence(client, url: str, data) -> None:
    events, _, scored = data
    want = model.expected(events, scored)
    window = ["--project", model.PROJECT, "--from", str(model.FIRST), "--to", str(model.LAST), "--url", url]
    result = CliRunner().invoke(
        app, ["opportunities", *window, "--evidence", "feature:size_guide"], env={"COLUMNS": "300"}
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    ranked = [
        line for line in lines if line.startswith("│") and any(k in line for k in ("feature:", "intent:"))
    ]
    assert [line.split("│")[1].strip() for line in ranked] == [f"{w['kind']}: {w['subject']}" for w in want]
    assert "Lowest-rated feedback: feature 'size_guide'" in result.output
    assert "GET /api/v1/sizes" in result.output.split("Failures counted against it")[1]

    refused = CliRunner().invoke(app, ["opportunities", *window, "--evidence", "page:home"])
    assert refused.exit_code == 2 and "expected feature:<name> or intent:<intent>" in refused.output


def test_the_rollup_path_and_the_raw_path_agree_and_the_rollup_is_what_is_read(
    clickhouse_server: str, data, quiet
) -> None:
    url = f"{clickhouse_server}/pravis_opp_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    with clickhouse.connect(url) as client:
        load(client, data, quiet, "raw")
        raw = rows_of(client, opportunities.ranked_sql(), VIEW)
        run_rollups(client, model.FIRST, model.LAST, ROLLUPS)
        rolled = rows_of(client, opportunities.ranked_sql(), VIEW)
        stored = rows_of(
            client,
            "SELECT kind, subject, sum(uses) AS uses, sum(failures) AS failures FROM opportunities_daily "
            "WHERE project_id = {project:String} GROUP BY kind, subject",
            VIEW,
        )

        assert rolled == raw
        assert {(r["kind"], r["subject"], r["uses"], r["failures"]) for r in stored} == {
            (r["kind"], r["subject"], r["uses"], r["failures"]) for r in raw
        }
        # A late use of a day already rolled up shows once that day is computed again.
        late = {
            "event_id": "00000000-0000-4000-8000-000000000024",
            "event_type": "feature_use",
            "timestamp": f"{model.FIRST.isoformat()}T12:00:00.000Z",
            "user_id": "u-late",
            "feature_name": "wishlist",
            "properties": {},
            "project_id": model.PROJECT,
            "received_at": f"{model.LAST.isoformat()}T12:00:00.000Z",
        }
        clickhouse.insert_json_rows(client, "events", json_rows([late]))
        uses = {r["subject"]: r["uses"] for r in raw}
        assert {r["subject"]: r["uses"] for r in rows_of(client, opportunities.ranked_sql(), VIEW)} == uses
        run_rollups(client, model.FIRST, model.FIRST, ROLLUPS)
        recomputed = {r["subject"]: r for r in rows_of(client, opportunities.ranked_sql(), VIEW)}
        assert recomputed["wishlist"]["uses"] == uses["wishlist"] + 1
        assert (
            recomputed["wishlist"]["users"] == next(r["users"] for r in raw if r["subject"] == "wishlist") + 1
        )
