"""Surveys end to end on the real services: definitions through the admin API (bad ones refused with a reason
per field), segment members refreshed into ClickHouse, `GET /api/v1/surveys` targeting from the gateway's
memory, answers checked at ingest, caps that hold right after answering (before the warehouse knows), a
withdrawn feedback consent, answers stored exactly once, the survey rows in a user's export and gone after a
deletion, the CLI and the Python SDK.

This module runs its own gateway with a short survey refresh, so the warehouse's view reaches it quickly.
"""

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pravis_local.surveys_cli import survey_app
from pravis_sdk import AsyncClient, Client
from typer.testing import CliRunner

from tests.helpers import (
    delete_user_data,
    export_user_data,
    now_iso,
    query_rows,
    rows_holding,
    wait_until_equal,
    wait_until_stored,
)
from tests.support import services

SURVEY = {
    "name": "Quarterly UX",
    "status": "running",
    "questions": [
        {"id": "nps", "type": "nps", "text": "Recommend us?"},
        {"id": "why", "type": "open_text", "text": "Why?", "required": False},
    ],
    "segments": ["searchers"],
    "cap": {"max_dismissals": 1, "days_between_surveys": 0},
}
SEGMENT = {"conditions": [{"type": "used_feature", "feature_name": "search", "within_days": 30}]}


@pytest.fixture(scope="module")
def gateway(worker_env: dict[str, str], log_dir: Path, loader) -> Iterator[httpx.Client]:
    port = services.free_port()
    env = {**worker_env, "PRAVIS_SURVEYS_REFRESH_S": "0.3"}
    process = services.Process(
        "gateway-surveys", [sys.executable, "-m", "pravis_gateway", "--port", str(port)], log_dir, env
    ).start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{port}/readyz", process.popen)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        process.stop()


def event(event_type: str, user_id: str, **fields) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "timestamp": now_iso(),
        "user_id": user_id,
        **fields,
    }


def post(gateway: httpx.Client, api_key: str, events: list[dict]) -> dict:
    response = gateway.post(
        "/api/v1/analytics/events", json={"events": events}, headers={"X-API-Key": api_key}
    )
    return response.json()


def surveys_of(gateway: httpx.Client, api_key: str, user_id: str) -> list[str]:
    response = gateway.get("/api/v1/surveys", params={"user_id": user_id}, headers={"X-API-Key": api_key})
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["surveys"]]


def test_bad_definitions_get_a_reason_per_field(gateway: httpx.Client, secret_key: str) -> None:
    bad = {**SURVEY, "questions": [{"id": "r", "type": "rating", "text": "?"}], "sample_percent": 140}
    response = gateway.put("/api/v1/surveys/broken", json=bad, headers={"X-API-Key": secret_key})

    assert response.status_code == 422
    reasons = response.json()["reasons"]
    assert any(r.startswith("questions.0") and "scale" in r for r in reasons), reasons
    assert any(r.startswith("sample_percent") for r in reasons), reasons
    segment = gateway.put("/api/v1/segments/x", json={"conditions": []}, headers={"X-API-Key": secret_key})
    assert segment.status_code == 422 and segment.json()["reasons"][0].startswith("conditions")


def test_a_funnel_step_condition_must_name_a_saved_funnel_and_one_of_its_steps(
    gateway: httpx.Client, secret_key: str
) -> None:
    headers = {"X-API-Key": secret_key}
    funnel = {"steps": [{"event_type": "page_view"}, {"event_type": "feature_use"}]}
    assert gateway.put("/api/v1/funnels/seg-funnel", json=funnel, headers=headers).status_code in (200, 201)

    def put(key: str, step: int) -> httpx.Response:
        condition = {"type": "funnel_step", "funnel_key": key, "step": step}
        return gateway.put("/api/v1/segments/reached", json={"conditions": [condition]}, headers=headers)

    missing, beyond, good = put("no-such-funnel", 1), put("seg-funnel", 3), put("seg-funnel", 2)

    assert missing.status_code == 422
    assert missing.json()["reasons"] == ["conditions.0.funnel_key: no funnel 'no-such-funnel' in the project"]
    assert beyond.status_code == 422
    assert beyond.json()["reasons"] == ["conditions.0.step: funnel 'seg-funnel' has steps 1..2"]
    assert good.status_code in (200, 201), good.text


def test_cli_saves_definitions_and_prints_the_reasons_of_a_bad_one(
    gateway: httpx.Client, secret_key: str, tmp_path: Path
) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({**SURVEY, "status": "draft"}))
    bad.write_text(json.dumps({**SURVEY, "cap": {"max_dismissals": 0}}))
    common = ["--secret-key", secret_key, "--gateway", str(gateway.base_url)]

    saved = CliRunner().invoke(survey_app, ["put", "cli-draft", str(good), *common])
    refused = CliRunner().invoke(survey_app, ["put", "cli-draft", str(bad), *common])
    shown = CliRunner().invoke(survey_app, ["show", "cli-draft", *common])

    assert saved.exit_code == 0 and "version 1" in saved.output, saved.output
    assert refused.exit_code == 1 and "cap.max_dismissals" in refused.output, refused.output
    assert shown.exit_code == 0 and '"status": "draft"' in shown.output, shown.output


def test_targeting_caps_consent_and_storage(
    gateway: httpx.Client, api_key: str, secret_key: str, clickhouse_url: str
) -> None:
    run = uuid.uuid4().hex[:6]
    searcher, other, withdrawn = f"searcher-{run}", f"other-{run}", f"withdrawn-{run}"
    headers = {"X-API-Key": secret_key}
    assert gateway.put("/api/v1/segments/searchers", json=SEGMENT, headers=headers).status_code in (200, 201)
    saved = gateway.put(f"/api/v1/surveys/ux-{run}", json={**SURVEY}, headers=headers)
    assert saved.status_code == 201, saved.text
    survey_id, version = f"ux-{run}", saved.json()["version"]

    setup = [event("feature_use", u, feature_name="search") for u in (searcher, withdrawn)]
    setup.append(event("feature_use", other, feature_name="export"))
    assert post(gateway, api_key, setup)["status"] == "ok"
    wait_until_stored(clickhouse_url, [e["event_id"] for e in setup])
    refreshed = CliRunner().invoke(survey_app, ["refresh-segments", "--url", clickhouse_url])
    assert refreshed.exit_code == 0 and "segment(s)" in refreshed.output, refreshed.output

    wait_until_equal(lambda: surveys_of(gateway, api_key, searcher), [survey_id])
    assert surveys_of(gateway, api_key, searcher) == [survey_id]
    assert surveys_of(gateway, api_key, other) == []

    # A withdrawn feedback consent: not shown, and its answers are dropped.
    consent = event("consent_change", withdrawn, consent={"feedback": False}, explicit=True)
    assert post(gateway, api_key, [consent])["status"] == "ok"
    assert surveys_of(gateway, api_key, withdrawn) == []
    dropped = event(
        "survey_answered",
        withdrawn,
        survey_id=survey_id,
        survey_version=version,
        survey_answers=[{"question_id": "nps", "value": 3}],
    )
    assert post(gateway, api_key, [dropped]) == {"status": "ok", "processed": 0, "dropped_no_consent": 1}

    # Bad answers are refused with the reason per field; a good one is accepted and counts at once.
    bad = event(
        "survey_answered",
        searcher,
        survey_id=survey_id,
        survey_version=version,
        survey_answers=[{"question_id": "why", "value": 3}, {"question_id": "ghost", "text": "x"}],
    )
    answer = event(
        "survey_answered",
        searcher,
        survey_id=survey_id,
        survey_version=version,
        survey_answers=[
            {"question_id": "nps", "value": 9},
            {"question_id": "why", "text": "mail me at ann@example.com"},
        ],
    )
    shown = event("survey_shown", searcher, survey_id=survey_id, survey_version=version)
    result = post(gateway, api_key, [shown, bad, answer])
    assert result["processed"] == 2, result
    assert [r["index"] for r in result["rejected"]] == [1]
    assert result["rejected"][0]["error"] == (
        "survey_answers.0.value: a open_text answer has no value; "
        "survey_answers.1.question_id: unknown question 'ghost'"
    )
    assert surveys_of(gateway, api_key, searcher) == [], "shown again right after answering"

    wait_until_stored(clickhouse_url, [shown["event_id"], answer["event_id"]])
    rows = query_rows(
        clickhouse_url,
        "SELECT survey_answers FROM events FINAL WHERE event_id = {id:UUID}",
        id=answer["event_id"],
    )
    assert len(rows) == 1
    assert rows[0][0] == [
        {"question_id": "nps", "value": 9, "choices": [], "text": None},
        {"question_id": "why", "value": None, "choices": [], "text": "mail me at [email]"},
    ]
    # After the warehouse knows (and a reload), still not shown.
    assert surveys_of(gateway, api_key, searcher) == []

    # A stopped survey refuses answers.
    stopped = gateway.put(
        f"/api/v1/surveys/{survey_id}", json={**SURVEY, "status": "stopped"}, headers=headers
    )
    assert stopped.status_code == 201
    late = event(
        "survey_answered",
        other,
        survey_id=survey_id,
        survey_version=version,
        survey_answers=[{"question_id": "nps", "value": 5}],
    )
    refused = post(gateway, api_key, [late])
    assert refused["processed"] == 0 and "is stopped" in refused["rejected"][0]["error"], refused

    exported = export_user_data(str(gateway.base_url), secret_key, searcher)
    survey_rows = [r for r in exported if r["_table"] == "events" and r["event_type"].startswith("survey_")]
    assert {r["event_type"] for r in survey_rows} == {"survey_shown", "survey_answered"}
    assert any(r["_table"] == "segment_members" for r in exported)


@pytest.fixture
def offered_survey(
    gateway: httpx.Client, api_key: str, secret_key: str, clickhouse_url: str
) -> Iterator[tuple[str, str]]:
    """(user, survey key): a new survey for searchers and a new user in that segment, offered it now; the
    survey is stopped afterwards. A user is offered one survey at a time, the first by key, so a survey left
    running would be offered instead of the next test's."""
    run = uuid.uuid4().hex[:6]
    user, survey_key = f"sdk-{run}", f"sdk-{run}"
    headers = {"X-API-Key": secret_key}
    assert gateway.put("/api/v1/segments/searchers", json=SEGMENT, headers=headers).status_code in (200, 201)
    assert gateway.put(f"/api/v1/surveys/{survey_key}", json=SURVEY, headers=headers).status_code == 201
    try:
        setup = [event("feature_use", user, feature_name="search")]
        assert post(gateway, api_key, setup)["status"] == "ok"
        wait_until_stored(clickhouse_url, [e["event_id"] for e in setup])
        assert CliRunner().invoke(survey_app, ["refresh-segments", "--url", clickhouse_url]).exit_code == 0
        assert wait_until_equal(lambda: surveys_of(gateway, api_key, user), [survey_key]) == [survey_key]
        yield user, survey_key
    finally:
        stopped = gateway.put(
            f"/api/v1/surveys/{survey_key}", json={**SURVEY, "status": "stopped"}, headers=headers
        )
        assert stopped.status_code in (200, 201), stopped.text


def test_python_sdk_fetches_and_submits(
    gateway: httpx.Client, api_key: str, clickhouse_url: str, offered_survey: tuple[str, str]
) -> None:
    """A server-rendered app: fetch the user's survey, record it shown and answered; not offered again."""
    user, survey_key = offered_survey
    with Client(api_key, host=str(gateway.base_url)) as client:
        survey = next(s for s in client.get_surveys(user_id=user) if s["id"] == survey_key)
        assert [q["id"] for q in survey["questions"]] == ["nps", "why"]
        client.survey_shown(survey, user_id=user)
        answered = client.survey_answered(survey, [{"question_id": "nps", "value": 7}], user_id=user)
        assert client.flush(timeout=30)
        assert survey_key not in [s["id"] for s in client.get_surveys(user_id=user)]
    assert wait_until_stored(clickhouse_url, [answered]) == {answered: 1}
    assert Client(api_key, host="http://127.0.0.1:9").get_surveys(user_id=user) == []


async def test_async_python_sdk_fetches_and_submits(
    gateway: httpx.Client, api_key: str, clickhouse_url: str, offered_survey: tuple[str, str]
) -> None:
    """The same from an asyncio app with `AsyncClient`: its own visitor by default, answers stored once."""
    user, survey_key = offered_survey
    async with AsyncClient(api_key, host=str(gateway.base_url), user_id=user) as client:
        survey = next(s for s in await client.get_surveys() if s["id"] == survey_key)
        assert [q["id"] for q in survey["questions"]] == ["nps", "why"]
        assert await client.get_surveys(anonymous_id=f"{user}-never-searched") == []
        client.survey_shown(survey)
        answered = client.survey_answered(survey, [{"question_id": "nps", "value": 3}])
        assert await client.flush(timeout=30)
        assert survey_key not in [s["id"] for s in await client.get_surveys(user_id=user)]
    assert wait_until_stored(clickhouse_url, [answered]) == {answered: 1}
    async with AsyncClient(api_key, host="http://127.0.0.1:9") as unreachable:
        assert await unreachable.get_surveys(user_id=user) == []


def test_deletion_removes_survey_data(
    gateway: httpx.Client, api_key: str, secret_key: str, clickhouse_url: str, privacy_worker
) -> None:
    run = uuid.uuid4().hex[:6]
    user, survey_key = f"gone-{run}", f"bye-{run}"
    headers = {"X-API-Key": secret_key}
    assert gateway.put("/api/v1/segments/searchers", json=SEGMENT, headers=headers).status_code in (200, 201)
    assert gateway.put(f"/api/v1/surveys/{survey_key}", json=SURVEY, headers=headers).status_code == 201
    rows = [
        event("feature_use", user, feature_name="search"),
        event("survey_shown", user, survey_id=survey_key, survey_version=1),
        event(
            "survey_answered",
            user,
            survey_id=survey_key,
            survey_version=1,
            survey_answers=[{"question_id": "why", "text": "too slow"}],
        ),
        event("feature_request", user, feature_request_title="Dark mode"),
        event("feature_request_vote", user, feature_request_title="dark mode"),
    ]
    assert post(gateway, api_key, rows) == {"status": "ok", "processed": len(rows)}
    wait_until_stored(clickhouse_url, [e["event_id"] for e in rows])
    assert CliRunner().invoke(survey_app, ["refresh-segments", "--url", clickhouse_url]).exit_code == 0
    assert rows_holding(clickhouse_url, {user})["segment_members.distinct_id"] == 1

    delete_user_data(str(gateway.base_url), secret_key, user)

    assert {where: n for where, n in rows_holding(clickhouse_url, {user}).items() if n} == {}


def normalised(title: str) -> str:
    """The request a title names, as docs/surveys.md says: lower case, non-alphanumeric runs as one space."""
    return " ".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def test_feature_request_board_ranks_by_votes_and_shows_the_status(
    gateway: httpx.Client, api_key: str, secret_key: str, clickhouse_url: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    dark, offline, voice = f"Dark mode {tag}", f"Offline sync {tag}", f"Voice notes {tag}"
    votes = [  # (user, event_type, title as the user wrote it)
        ("fr-a", "feature_request", dark),
        ("fr-a", "feature_request_vote", f"dark-MODE!! {tag}"),  # the same person again: one vote
        ("fr-b", "feature_request_vote", f"  DARK mode {tag}"),
        ("fr-c", "feature_request_vote", dark),
        ("fr-b", "feature_request", offline),
        ("fr-c", "feature_request_vote", f"offline_sync {tag}"),
        ("fr-d", "feature_request", voice),
    ]
    events = [event(kind, f"{user}-{tag}", feature_request_title=title) for user, kind, title in votes]
    assert post(gateway, api_key, events)["status"] == "ok"
    admin = {"X-API-Key": secret_key}

    bad = gateway.put("/api/v1/feature-requests/status", json={"status": "wontfix"}, headers=admin)
    planned = gateway.put(
        "/api/v1/feature-requests/status",
        json={"title": f"dark mode {tag}", "status": "planned"},
        headers=admin,
    )
    common = ["--secret-key", secret_key, "--gateway", str(gateway.base_url)]
    done = CliRunner().invoke(survey_app, ["request-status", f"Offline Sync {tag}", "done", *common])
    refused = CliRunner().invoke(survey_app, ["request-status", offline, "someday", *common])

    assert bad.status_code == 422
    assert sorted(r.split(":")[0] for r in bad.json()["reasons"]) == ["status", "title"], bad.json()
    assert planned.status_code == 200, planned.text
    assert done.exit_code == 0, done.output
    assert refused.exit_code == 1 and "status: Input should be 'open', 'planned' or 'done'" in refused.output

    voters: dict[str, set[str]] = {}
    for user, _, title in votes:
        voters.setdefault(normalised(title), set()).add(user)
    status = {normalised(dark): "planned", normalised(offline): "done"}
    expected = sorted(
        ((request, len(users), status.get(request, "open")) for request, users in voters.items()),
        key=lambda r: (-r[1], r[0]),
    )

    def board() -> list[tuple]:
        response = gateway.get("/api/v1/feature-requests", params={"limit": 1000}, headers=admin)
        assert response.status_code == 200, response.text
        mine = [r for r in response.json()["requests"] if r["request"].endswith(tag)]
        assert all(r["weighted_votes"] == r["votes"] for r in mine)  # no activity rolled up for them
        return [(r["request"], r["votes"], r["status"]) for r in mine]

    assert wait_until_equal(board, expected) == expected
    printed = CliRunner().invoke(
        survey_app, ["requests", "--project", "test-project", "--url", clickhouse_url]
    )
    assert printed.exit_code == 0 and "planned" in printed.output, printed.output


def test_a_user_who_logs_in_is_capped_by_what_their_anonymous_id_answered(
    gateway: httpx.Client, api_key: str, secret_key: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    key, anonymous, user = f"cap-login-{tag}", f"anon-{tag}", f"user-{tag}"
    everyone = {**SURVEY, "segments": [], "cap": {"max_dismissals": 1, "days_between_surveys": 0}}
    saved = gateway.put(f"/api/v1/surveys/{key}", json=everyone, headers={"X-API-Key": secret_key})
    assert saved.status_code == 201, saved.text

    def shown(**ids: str) -> bool:
        response = gateway.get("/api/v1/surveys", params=ids, headers={"X-API-Key": api_key})
        return key in [s["id"] for s in response.json()["surveys"]]

    try:
        assert shown(anonymous_id=anonymous)
        answer = {
            "event_id": str(uuid.uuid4()),
            "event_type": "survey_answered",
            "timestamp": now_iso(),
            "anonymous_id": anonymous,
            "survey_id": key,
            "survey_version": saved.json()["version"],
            "survey_answers": [{"question_id": "nps", "value": 9}],
        }
        assert post(gateway, api_key, [answer])["status"] == "ok"
        assert not shown(anonymous_id=anonymous)
        assert shown(user_id=user), "not linked yet: the user id is a person of its own"

        login = event("identify", user, anonymous_id=anonymous)
        assert post(gateway, api_key, [login])["status"] == "ok"

        assert wait_until_equal(lambda: shown(user_id=user), False) is False
    finally:
        # A running survey without segments is every user's: stopped, it is not offered in other tests.
        stopped = gateway.put(
            f"/api/v1/surveys/{key}",
            json={**everyone, "status": "stopped"},
            headers={"X-API-Key": secret_key},
        )
        assert stopped.status_code in (200, 201), stopped.text
