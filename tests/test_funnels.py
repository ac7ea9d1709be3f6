"""End to end funnels: synthetic flows posted through the gateway (shuffled, some redelivered), stored by the
loader, computed by the funnel SQL in ClickHouse and compared exactly with the pure-Python model in
tests/funnel_model.py: every order mode, exclusions, sessions, breakdowns (column, property, experiment
variant with users in two variants), per-day entries across midnight, the window boundary, drop-off next
events and exit points, and paths."""

import json
import random
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pravis_local import funnels_cli
from pravis_local.funnels_cli import funnel_app
from pravis_rollups import clickhouse
from pravis_rollups.clickhouse import connect
from pravis_rollups.experiments import results_sql
from pravis_rollups.funnels import step_counts
from pravis_rollups.jobs import run_rollups
from pravis_rollups.rollups import RollupOptions
from pravis_schemas.experiments import ExperimentDefinition
from pravis_schemas.funnel_sql import dropoff_sql, funnel_sql, paths_sql
from pravis_schemas.funnels import FunnelDefinition, StoredFunnel
from typer.testing import CliRunner

from tests import funnel_model as model
from tests.helpers import post_batch, wait_until_stored

PROJECT = "test-project"
FIRST = datetime.now(UTC).date() - timedelta(days=6)
"""Recent days: the gateway refuses events older than 30 days. Flows run from FIRST - 1 to FIRST + 4."""
LAST = FIRST + timedelta(days=2)
WINDOW_S = 1800
EXPERIMENT = "fx-checkout"
STEPS = [
    {"event_type": "voice_request", "filters": [{"property": "intent", "equals": "checkout"}]},
    {"event_type": "feature_use", "filters": [{"property": "feature_name", "equals": "checkout"}]},
    {"event_type": "button_click", "filters": [{"property": "button_id", "equals": "pay"}]},
    {"event_type": "fx_order_completed", "filters": [{"property": "properties.currency", "equals": "EUR"}]},
]
NOISE = [
    {"event_type": "page_view", "page_url": "https://boutique.example/cart"},
    {"event_type": "feature_use", "feature_name": "search"},
    {"event_type": "button_click", "button_id": "back"},
    {"event_type": "error", "error_type": "PaymentDeclined", "error_message": "declined"},
    {"event_type": "fx_order_completed", "properties": {"currency": "USD"}},
    {"event_type": "transcription"},
    {"event_type": "conversation"},
]
STEP_FIELDS = [
    {"intent": "checkout"},
    {"feature_name": "checkout"},
    {"button_id": "pay"},
    {"properties": {"currency": "EUR"}},
]
VERSIONS = ["1.0.0", "1.1.0", "2.0.0"]


def definition(**overrides: Any) -> FunnelDefinition:
    return FunnelDefinition.model_validate(
        {"key": "checkout", "steps": STEPS, "window_s": WINDOW_S, **overrides}
    )


def _event(
    rng: random.Random, person: str, session: str, ts: datetime, fields: dict, version: str
) -> dict[str, Any]:
    """An event with an event_id drawn from `rng`: ties in timestamp are ordered by event_id, so the flows
    must be the same in every run."""
    body = dict(fields)
    if body["event_type"] in ("voice_request", "transcription", "conversation"):
        body.update(interaction_id=f"i-{rng.getrandbits(32):08x}", request_duration_ms=300.0, success=True)
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "timestamp": ts.isoformat(),
        "user_id": person,
        "session_id": session,
        "app_version": version,
        **body,
    }


def _step(k: int) -> dict:
    return {"event_type": STEPS[k]["event_type"], **STEP_FIELDS[k]}


def flows(seed: int = 22) -> tuple[list[dict], dict[str, str]]:
    """Events of 120 persons: random walks over the steps and noise (repeats, out-of-order steps, zero gaps,
    midnight crossings, sessions), plus persons placed exactly on and 1 ms past the window; and the variant of
    each exposed person ('(multiple)' for those exposed to both)."""
    rng = random.Random(seed)
    events, variants = [], {}
    start_of_range = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
    for n in range(120):
        person = f"fx-person-{n:03d}"
        version = rng.choice(VERSIONS)
        day = rng.randrange(-1, 4)
        ts = start_of_range + timedelta(days=day, hours=rng.choice([9, 14, 23]), minutes=rng.randrange(0, 60))
        session = f"{person}-s0"
        progress = 0
        for _ in range(rng.randrange(2, 12)):
            draw = rng.random()
            if draw < 0.45:  # the next step of the flow
                fields, progress = _step(progress), min(3, progress + 1)
            elif draw < 0.6:  # a repeat, or a step out of order
                fields = _step(rng.randrange(4))
            else:
                fields = rng.choice(NOISE)
            if n % 4:
                fields = {
                    **fields,
                    "properties": {**fields.get("properties", {}), "plan": ["free", "pro"][n % 2]},
                }
            events.append(_event(rng, person, session, ts, fields, version))
            gap_ms = rng.choice([0, 1, 30_000, 240_000, 700_000, 1_500_000])
            ts += timedelta(milliseconds=gap_ms)
            if rng.random() < 0.1:
                session = f"{person}-s{rng.randrange(1, 4)}"
        if n % 3 != 2:
            exposures = ["a", "b"] if n % 10 == 0 else [rng.choice(["a", "b"])]
            for variant in exposures:
                events.append(
                    _event(
                        rng,
                        person,
                        session,
                        start_of_range,
                        {
                            "event_type": "experiment_exposure",
                            "experiment_key": EXPERIMENT,
                            "variant": variant,
                            "in_experiment": True,
                        },
                        version,
                    )
                )
            variants[person] = exposures[0] if len(exposures) == 1 else "(multiple)"
    for n, offset_ms in enumerate([WINDOW_S * 1000, WINDOW_S * 1000 + 1]):
        person, ts = f"fx-boundary-{n}", start_of_range + timedelta(days=1, hours=23, minutes=50)
        for k, at in enumerate([0, 1000, 2000, offset_ms]):
            events.append(
                _event(rng, person, f"{person}-s", ts + timedelta(milliseconds=at), _step(k), "2.0.0")
            )
    return events, variants


def model_events(events: list[dict]) -> list[dict]:
    return [
        {
            **e,
            "ts": datetime.fromisoformat(e["timestamp"]),
            "person": e["user_id"],
            "session": e["session_id"],
        }
        for e in events
    ]


@pytest.fixture(scope="module")
def stored_flows(gateway_url: str, api_key: str, clickhouse_url: str, loader) -> tuple[list[dict], dict]:
    events, variants = flows()
    rng = random.Random(7)
    posted = events + rng.sample(events, 40)  # redelivered copies: same event_id
    rng.shuffle(posted)
    for start in range(0, len(posted), 200):
        answer = post_batch(gateway_url, api_key, posted[start : start + 200])
        assert answer["status"] == "ok", answer
    counts = wait_until_stored(clickhouse_url, [e["event_id"] for e in events], timeout_s=120)
    assert len(counts) == len(events)
    return model_events(events), variants


def run(clickhouse_url: str, query: tuple[str, dict], first: date = FIRST, last: date = LAST) -> list[tuple]:
    sql, params = query
    with connect(clickhouse_url) as client:
        rows = client.query(sql, parameters={**params, "date_from": first, "date_to": last}).result_rows
    return [tuple(row) for row in rows]


def approx(rows: list[tuple]) -> list[tuple]:
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows]


CASES = {
    "ordered": {},
    "strict": {"order": "strict"},
    "any_order": {"order": "any_order"},
    "exclusion": {"exclusions": [{"event_type": "error", "from_step": 2}]},
    "sessions": {"count_by": "session"},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_funnel_matches_model(stored_flows, clickhouse_url: str, case: str) -> None:
    events, _ = stored_flows
    funnel = definition(**CASES[case])
    expected = model.funnel(model.walks(funnel, events, FIRST, LAST), len(STEPS))
    got = run(clickhouse_url, funnel_sql(funnel, PROJECT))
    assert approx(got) == approx(expected)
    assert expected[0][3] > 20 and 0 < expected[-1][3] < expected[0][3]


@pytest.mark.parametrize("breakdown", ["app_version", "properties.plan", f"variant:{EXPERIMENT}"])
def test_breakdowns_match_model(stored_flows, clickhouse_url: str, breakdown: str) -> None:
    events, variants = stored_flows
    funnel = definition()
    walks = model.walks(funnel, events, FIRST, LAST, breakdown=breakdown, variants=variants)
    expected = model.funnel(walks, len(STEPS))
    assert approx(run(clickhouse_url, funnel_sql(funnel, PROJECT, breakdown))) == approx(expected)
    assert len({row[1] for row in expected}) >= 2


@pytest.mark.parametrize("count_by", ["person", "session"])
@pytest.mark.parametrize("per_day", [False, True])
def test_ai_assistant_breakdown_matches_model(
    stored_flows, clickhouse_url: str, count_by: str, per_day: bool
) -> None:
    """Entering at feature_use (not an AI request itself): units split by an AI request from their entry to
    the end of their window; some used the assistant only before entering, which does not count."""
    events, _ = stored_flows
    funnel = definition(steps=STEPS[1:], count_by=count_by)
    walks = model.walks(funnel, events, FIRST, LAST, breakdown="ai_assistant", per_day=per_day)
    expected = model.funnel(walks, len(STEPS) - 1)
    got = run(clickhouse_url, funnel_sql(funnel, PROJECT, "ai_assistant", per_day=per_day))
    assert approx(got) == approx(expected)
    assert {row[1] for row in expected} == {"used", "not used"}
    before_only = [
        w
        for w in walks
        if w["breakdown"] == "not used"
        and any(e["event_type"] in model.AI_REQUESTS for e in w["evs"][: w["reached"][0]])
    ]
    assert before_only


def test_per_day_entries_match_model(stored_flows, clickhouse_url: str) -> None:
    events, _ = stored_flows
    funnel = definition()
    expected = model.funnel(model.walks(funnel, events, FIRST, LAST, per_day=True), len(STEPS))
    got = run(clickhouse_url, funnel_sql(funnel, PROJECT, per_day=True))
    assert approx(got) == approx(expected)
    assert {row[0] for row in expected} == {FIRST, FIRST + timedelta(days=1), LAST}


def test_window_boundary_is_inclusive(stored_flows, clickhouse_url: str) -> None:
    """The boundary persons convert at exactly window_s after entry, and not 1 ms later."""
    funnel = definition()
    sql, params = funnel_sql(funnel, PROJECT)
    day = FIRST + timedelta(days=1)
    walks = model.walks(
        funnel, [e for e in stored_flows[0] if e["person"].startswith("fx-boundary")], day, day
    )
    assert [w["reached"][3] is not None for w in sorted(walks, key=lambda w: w["unit"])] == [True, False]
    got = run(clickhouse_url, (sql, params), day, day)
    expected = model.funnel(model.walks(funnel, stored_flows[0], day, day), len(STEPS))
    assert approx(got) == approx(expected)


@pytest.mark.parametrize("step", [1, 2, 3])
def test_dropoff_matches_model(stored_flows, clickhouse_url: str, step: int) -> None:
    events, _ = stored_flows
    funnel = definition()
    expected = model.dropoff(funnel, model.walks(funnel, events, FIRST, LAST), step, LAST)
    assert run(clickhouse_url, dropoff_sql(funnel, PROJECT, step)) == expected
    assert expected


@pytest.mark.parametrize("depth", [1, 3])
def test_paths_match_model(stored_flows, clickhouse_url: str, depth: int) -> None:
    events, _ = stored_flows
    expected = model.paths(events, FIRST, LAST, "voice_request", depth, WINDOW_S, 50)
    assert run(clickhouse_url, paths_sql(PROJECT, "voice_request", depth, WINDOW_S, 50)) == expected
    assert expected[0][2] > 1


def test_empty_range_answers_no_units(stored_flows, clickhouse_url: str) -> None:
    assert run(clickhouse_url, funnel_sql(definition(), PROJECT), date(2020, 1, 1), date(2020, 1, 31)) == []


def test_injection_through_filters_stays_data(stored_flows, clickhouse_url: str) -> None:
    """Hostile filter values reach ClickHouse as parameters: no unit matches and the events table is intact
    (property paths and breakdowns cannot hold quotes: their pattern refuses them)."""
    hostile = "x' OR 1=1; DROP TABLE events; --"
    steps = [
        {"event_type": "voice_request", "filters": [{"property": "intent", "equals": hostile}]},
        {"event_type": "feature_use", "filters": [{"property": "properties.plan", "equals": hostile}]},
    ]
    funnel = FunnelDefinition(key="hostile", steps=steps)
    assert run(clickhouse_url, funnel_sql(funnel, PROJECT, "properties.plan")) == []
    assert run(clickhouse_url, ("SELECT count() > 0 FROM events", {})) == [(True,)]


def test_step_counts_of_an_empty_range_are_zeros(stored_flows, clickhouse_url: str) -> None:
    stored = StoredFunnel(project_id=PROJECT, version=1, created_at="", definition=definition())
    with connect(clickhouse_url) as client:
        rows = step_counts(client, stored, date(2020, 1, 1), date(2020, 1, 31))
    assert [(r["step"], r["reached"], r["entered"], r["dropped"]) for r in rows] == [
        (k, 0, 0, 0) for k in (1, 2, 3, 4)
    ]


@pytest.fixture(scope="module")
def migrated(clickhouse_url: str) -> None:
    """The warehouse's tables, `funnels` included: the admin routes need no loader running."""
    clickhouse.migrate(clickhouse_url)


def admin(gateway_url: str, secret_key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, f"{gateway_url}/api/v1/funnels{path}", headers={"X-API-Key": secret_key}, timeout=60, **kwargs
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"steps": []}, "steps: List should have at least 2 items"),
        ({"steps": STEPS, "window_s": 0}, "window_s: Input should be greater than 0"),
        ({"steps": STEPS * 6}, "steps: List should have at most 20 items"),
        (
            {"steps": [{"event_type": "page_view", "filters": [{"property": "shoe", "equals": 1}]}, *STEPS]},
            "'shoe' is neither an events column",
        ),
        ({"steps": STEPS, "exclusions": [{"event_type": "error", "to_step": 7}]}, "names step 7"),
        ({"key": "other", "steps": STEPS}, "differs from the URL"),
    ],
)
def test_admin_refuses_bad_definitions_with_reasons(
    gateway_url: str, secret_key: str, migrated: None, body: dict, reason: str
) -> None:
    response = admin(gateway_url, secret_key, "PUT", "/bad", json=body)
    assert response.status_code == 422
    assert reason in response.json()["error"]


def test_admin_saves_versions_and_lists_them(
    gateway_url: str, secret_key: str, api_key: str, migrated: None
) -> None:
    body = {"steps": STEPS, "window_s": WINDOW_S}
    first = admin(gateway_url, secret_key, "PUT", "/admin-checkout", json=body)
    assert first.status_code == 201 and first.json()["version"] == 1
    again = admin(gateway_url, secret_key, "PUT", "/admin-checkout", json=body)
    assert again.status_code == 200 and again.json() == {**first.json(), "created": False}
    second = admin(gateway_url, secret_key, "PUT", "/admin-checkout", json={**body, "order": "strict"})
    assert second.status_code == 201 and second.json()["version"] == 2
    latest = admin(gateway_url, secret_key, "GET", "/admin-checkout").json()
    assert latest["version"] == 2 and latest["definition"]["order"] == "strict"
    history = admin(gateway_url, secret_key, "GET", "/admin-checkout", params={"history": "true"}).json()
    assert [v["version"] for v in history["versions"]] == [1, 2]
    listed = admin(gateway_url, secret_key, "GET", "").json()["funnels"]
    assert [
        (f["definition"]["key"], f["version"]) for f in listed if f["definition"]["key"] == "admin-checkout"
    ] == [("admin-checkout", 2)]
    assert admin(gateway_url, secret_key, "GET", "/missing").status_code == 404
    assert admin(gateway_url, api_key, "GET", "").status_code == 401


def test_cli_define_show_list(
    stored_flows, gateway_url: str, secret_key: str, clickhouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(funnels_cli.console, "width", 200)  # no terminal: rich would fold the tables at 80
    path = tmp_path / "funnel.json"
    path.write_text(json.dumps({"name": "Voice checkout", "steps": STEPS, "window_s": WINDOW_S}))
    env = {
        "PRAVIS_GATEWAY_URL": gateway_url,
        "PRAVIS_SECRET_KEY": secret_key,
        "PRAVIS_CLICKHOUSE_URL": clickhouse_url,
    }
    runner = CliRunner()
    defined = runner.invoke(funnel_app, ["define", "cli-checkout", str(path)], env=env)
    assert defined.exit_code == 0, defined.output
    assert "saved as version 1" in defined.output
    listed = runner.invoke(funnel_app, ["list"], env=env)
    assert "cli-checkout" in listed.output and "voice_request → feature_use" in listed.output
    shown = runner.invoke(
        funnel_app, ["show", "cli-checkout", "--from", str(FIRST), "--to", str(LAST)], env=env
    )
    assert shown.exit_code == 0, shown.output
    expected = model.funnel(model.walks(definition(), stored_flows[0], FIRST, LAST), len(STEPS))
    assert re.search(rf"4\. fx_order_completed +{expected[3][3]} ", shown.output), shown.output
    bad = runner.invoke(funnel_app, ["define", "cli-bad", "-"], input='{"steps": []}', env=env)
    assert bad.exit_code == 1 and "422" in bad.output and "at least 2 items" in bad.output


def test_funnel_daily_rollup_matches_model_and_is_idempotent(stored_flows, clickhouse_url: str) -> None:
    """funnel_daily for two saved funnels (definitions given to the run), twice: the same rows, equal to the
    model's per-day funnel of each."""
    events, _ = stored_flows
    funnels = tuple(
        StoredFunnel(
            project_id=PROJECT, version=3, created_at="", definition=definition(key=key, **CASES[case])
        )
        for key, case in (("daily-ordered", "ordered"), ("daily-any", "any_order"))
    )
    read = """SELECT funnel_key, day, step, step_name, entered, reached, median_from_previous_s,
                     p90_from_previous_s, median_from_start_s, p90_from_start_s
              FROM funnel_daily WHERE project_id = {project:String} AND definition_version = 3
              ORDER BY funnel_key, day, step"""
    with connect(clickhouse_url) as client:
        for _ in range(2):
            run_rollups(client, FIRST, LAST, ["funnel_daily"], RollupOptions(funnels=funnels))
            got = [tuple(r) for r in client.query(read, parameters={"project": PROJECT}).result_rows]
            expected = []
            for stored in sorted(funnels, key=lambda s: s.definition.key):
                per_day = model.walks(stored.definition, events, FIRST, LAST, per_day=True)
                for row in model.funnel(per_day, len(STEPS)):
                    name = stored.definition.steps[row[2] - 1].label
                    expected.append((stored.definition.key, row[0], row[2], name, row[4], row[3], *row[8:]))
            assert approx(got) == approx(expected)


def test_funnel_as_experiment_goal(stored_flows, clickhouse_url: str) -> None:
    """Per variant: persons exposed to one variant who complete the funnel, entering after their exposure."""
    events, variants = stored_flows
    experiment = ExperimentDefinition(
        key=EXPERIMENT,
        status="running",
        variants=[{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
        goals=[{"name": "checkout", "funnel": "checkout"}],
    )
    sql, params = results_sql(experiment, PROJECT, {"checkout": definition()}, reporting_currency="EUR")
    with connect(clickhouse_url) as client:
        result = client.query(sql, parameters=params)
    got = [
        (r["variant"], r["users"], r["multi_variant_users"], r["conversions_0"])
        for r in (dict(zip(result.column_names, row, strict=True)) for row in result.result_rows)
    ]
    exposed = {
        e["person"]: e["ts"]
        for e in sorted(events, key=lambda e: e["ts"], reverse=True)
        if e["event_type"] == "experiment_exposure"
    }
    single = {p: t for p, t in exposed.items() if variants[p] != "(multiple)"}
    walks = model.walks(definition(), events, date(1970, 1, 1), date(2100, 1, 1), since=single)
    done = {w["unit"] for w in walks if w["reached"][-1] is not None}
    multi = sum(1 for v in variants.values() if v == "(multiple)")
    expected = [
        (v, sum(1 for p in single if variants[p] == v), multi, sum(1 for p in done if variants[p] == v))
        for v in ("a", "b")
    ]
    assert got == expected
    assert all(row[3] > 0 for row in expected)
    with pytest.raises(ValueError, match="not saved"):
        results_sql(experiment, PROJECT, {}, reporting_currency="EUR")
