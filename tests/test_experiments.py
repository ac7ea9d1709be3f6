"""End to end A/B test: define through the admin endpoint, assign through the gateway, post conversions,
compute `experiment_results` in ClickHouse and compare with an independent computation on the raw test data.
"""

import secrets
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pravis_gateway.keys import KeyStore
from pravis_local.experiments_cli import experiment_app
from pravis_rollups.clickhouse import connect
from pravis_rollups.experiment_results import latest_results, refresh_results
from pravis_rollups.fx import Rate, load_rates
from pravis_sdk import Client
from pravis_sdk.experiments import get_feature_variant
from scipy import stats
from typer.testing import CliRunner

from tests.growthbook_oracle import growthbook_assignment
from tests.helpers import now_iso, wait_until_stored
from tests.support import services
from tests.support.persons import persons

PROJECT = "test-project"
USERS = 400


@pytest.fixture(scope="module")
def secret_key(data_dir: Path) -> str:
    key, _ = KeyStore(data_dir / "keys.json").create(PROJECT, "secret")
    return key


@pytest.fixture(scope="module")
def gateway(gateway_url: str, loader) -> httpx.Client:
    """The gateway, once the loader has applied the migrations (which create the `experiments` table)."""
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


def put(gateway: httpx.Client, key: str, secret: str, body: dict) -> httpx.Response:
    return gateway.put(f"/api/v1/experiments/{key}", json=body, headers={"X-API-Key": secret})


def feature(gateway: httpx.Client, name: str, api_key: str, user_id: str) -> dict:
    response = gateway.get(
        f"/api/v1/feature/{name}", params={"user_id": user_id}, headers={"X-API-Key": api_key}
    )
    assert response.status_code == 200, response.text
    return response.json()


def post_events(gateway: httpx.Client, api_key: str, events: list[dict]) -> None:
    for start in range(0, len(events), 200):
        batch = events[start : start + 200]
        response = gateway.post(
            "/api/v1/analytics/events",
            json={"events": batch, "sent_at": now_iso()},
            headers={"X-API-Key": api_key},
        )
        assert response.json() == {"status": "ok", "processed": len(batch)}, response.text


def event(event_type: str, user_id: str, **fields) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "timestamp": now_iso(),
        "user_id": user_id,
        **fields,
    }


def test_admin_endpoint_refuses_invalid_definitions_and_write_keys(gateway, secret_key, api_key) -> None:
    bad = {"status": "running", "variants": [{"key": "a", "weight": 0.7}, {"key": "b", "weight": 0.7}]}
    response = put(gateway, "bad-weights", secret_key, bad)
    assert response.status_code == 422
    assert "weights must sum to 1" in response.json()["error"]

    good = {"variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}]}
    assert put(gateway, "needs-secret", api_key, good).status_code == 401
    assert (
        gateway.get(
            "/api/v1/feature/never-defined", params={"user_id": "u"}, headers={"X-API-Key": api_key}
        ).status_code
        == 404
    )


def test_definitions_are_versioned(gateway, secret_key) -> None:
    key = f"versioned-{secrets.token_hex(3)}"
    body = {"variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}]}
    assert put(gateway, key, secret_key, body).json()["version"] == 1
    same = put(gateway, key, secret_key, body)
    assert (same.status_code, same.json()["version"], same.json()["created"]) == (200, 1, False)
    assert put(gateway, key, secret_key, {**body, "status": "running"}).json()["version"] == 2

    history = gateway.get(
        f"/api/v1/experiments/{key}", params={"history": True}, headers={"X-API-Key": secret_key}
    ).json()
    assert [(v["version"], v["definition"]["status"]) for v in history["versions"]] == [
        (1, "draft"),
        (2, "running"),
    ]


def test_experiment_end_to_end(gateway, secret_key, api_key, clickhouse_url) -> None:
    key = f"checkout-{secrets.token_hex(3)}"
    body = {
        "status": "running",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "big-button", "weight": 0.5}],
        "goals": [
            {"name": "checkout", "event_type": "button_click", "property": "button_id", "equals": "checkout"},
            {
                "name": "spend",
                "event_type": "order_completed",
                "value_property": "revenue",
                "property": "currency",
                "equals": "EUR",
            },
            {"name": "ordered", "event_type": "order_completed"},
        ],
    }
    response = put(gateway, key, secret_key, body)
    assert response.status_code == 201, response.text

    users = [f"u-{key}-{i}" for i in range(USERS)]
    variant_of, exposure_ids = {}, []
    for user in users:
        served = feature(gateway, key, api_key, user)
        expected = growthbook_assignment({**body, "key": key}, user)
        assert (served["variant"], served["in_experiment"]) == (expected["variant"], True)
        variant_of[user] = served["variant"]
        exposure_ids.append(served["exposure_event_id"])
    assert feature(gateway, key, api_key, users[0])["variant"] == variant_of[users[0]]  # stable on repeat

    # Three users also see the other variant (say, an SDK with stale definitions): excluded, and counted.
    switchers = users[:3]
    rng = np.random.default_rng(88)
    events = [
        event(
            "experiment_exposure",
            u,
            experiment_key=key,
            in_experiment=True,
            variant="big-button" if variant_of[u] == "control" else "control",
        )
        for u in switchers
    ]
    converted, spend, ordered = {}, {}, {}
    for user in users:
        uplift = 0.15 if variant_of[user] == "big-button" else 0.0
        converted[user] = bool(rng.random() < 0.25 + uplift)
        if converted[user]:
            events.append(event("button_click", user, button_id="checkout"))
            events.append(event("button_click", user, button_id="checkout"))  # a second click: still one user
        if rng.random() < 0.3:
            events.append(event("button_click", user, button_id="help"))  # filtered out by the goal
        amounts = [round(float(rng.exponential(40 + 10 * uplift * 10)), 2) for _ in range(rng.integers(0, 3))]
        spend[user] = sum(amounts)
        ordered[user] = bool(amounts)
        orders = [
            event("order_completed", user, order_id=f"o-{uuid.uuid4().hex[:12]}", revenue=a, currency="EUR")
            for a in amounts
        ]
        if orders and rng.random() < 0.3:  # the same order sent twice: one order, its revenue once
            events.append({**orders[0], "event_id": str(uuid.uuid4())})
        if rng.random() < 0.2:  # another currency: not in a EUR goal's sum
            events.append(
                event(
                    "order_completed", user, order_id=f"o-{uuid.uuid4().hex[:12]}", revenue=9, currency="USD"
                )
            )
            ordered[user] = True
        events.extend(orders)
    post_events(gateway, api_key, events)
    wait_until_stored(clickhouse_url, exposure_ids + [e["event_id"] for e in events], timeout_s=120)

    with connect(clickhouse_url) as client:
        assert refresh_results(client, project_id=PROJECT, keys=[key]) == {key: 6}
        rows = latest_results(client, PROJECT, key)

    included = [u for u in users if u not in switchers]
    groups = {v: [u for u in included if variant_of[u] == v] for v in ("control", "big-button")}
    by = {(r["goal"], r["variant"]): r for r in rows}
    for variant, members in groups.items():
        checkout, money = by[("checkout", variant)], by[("spend", variant)]
        assert checkout["users"] == money["users"] == len(members)
        assert checkout["multi_variant_users"] == 3
        assert checkout["conversions"] == sum(converted[u] for u in members)
        assert checkout["conversion_rate"] == pytest.approx(np.mean([converted[u] for u in members]))
        assert money["mean"] == pytest.approx(np.mean([spend[u] for u in members]))
        assert money["variance"] == pytest.approx(np.var([spend[u] for u in members], ddof=1))
        assert by[("ordered", variant)]["conversions"] == sum(ordered[u] for u in members)

    c, t = groups["control"], groups["big-button"]
    conv_c, conv_t = sum(converted[u] for u in c), sum(converted[u] for u in t)
    table = [[conv_c, len(c) - conv_c], [conv_t, len(t) - conv_t]]
    treatment_checkout = by[("checkout", "big-button")]
    assert treatment_checkout["p_value"] == pytest.approx(
        stats.chi2_contingency(table, correction=False).pvalue
    )
    assert treatment_checkout["lift"] == pytest.approx((conv_t / len(t)) / (conv_c / len(c)) - 1)
    assert treatment_checkout["lift_ci_low"] < treatment_checkout["lift"] < treatment_checkout["lift_ci_high"]
    welch = stats.ttest_ind([spend[u] for u in t], [spend[u] for u in c], equal_var=False)
    assert by[("spend", "big-button")]["p_value"] == pytest.approx(welch.pvalue)
    assert by[("checkout", "control")]["lift"] is None
    srm = stats.chisquare([len(c), len(t)], [len(included) / 2] * 2).pvalue
    assert treatment_checkout["srm_p_value"] == pytest.approx(srm)
    assert treatment_checkout["srm_flag"] is bool(srm < 0.001)

    printed = CliRunner().invoke(
        experiment_app,
        ["results", key, "--project", PROJECT, "--no-refresh", "--url", clickhouse_url],
        terminal_width=200,
    )
    assert printed.exit_code == 0, printed.output
    assert "big-button" in printed.output and "SAMPLE RATIO MISMATCH" not in printed.output
    assert "excluded): 3" in printed.output


def rate_on(rates: dict[str, list[tuple[date, Decimal]]], currency: str, day: date) -> Decimal | None:
    """The newest rate of `currency` on or before `day` (None without one): the operator's rates file read
    the way docs/queries.md says revenue_daily reads it."""
    known = [rate for since, rate in sorted(rates.get(currency, [])) if since <= day]
    return known[-1] if known else None


def test_revenue_per_user_of_a_two_currency_experiment_is_compared_in_the_reporting_currency(
    gateway, secret_key, api_key, clickhouse_url
) -> None:
    key = f"fx-{secrets.token_hex(3)}"
    body = {
        "status": "running",
        "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
        "goals": [{"name": "spend", "event_type": "order_completed", "value_property": "revenue"}],
    }
    assert put(gateway, key, secret_key, body).status_code == 201
    # A reporting currency no other test loads rates for, so this test's rates are the only ones in force;
    # the rate of tomorrow is not yet in force, and GBP has none at all.
    reporting, today = "SEK", datetime.now(UTC).date()
    rates = {
        "EUR": [(today - timedelta(days=9), Decimal("11.5")), (today - timedelta(days=1), Decimal("11.25")),
                (today + timedelta(days=1), Decimal("99"))],
        "USD": [(today - timedelta(days=9), Decimal("10.125"))],
    }  # fmt: skip
    users = [f"fx-{key}-{i}" for i in range(120)]
    served = {u: feature(gateway, key, api_key, u) for u in users}
    rng = np.random.default_rng(24)
    events, spend, unconverted = [], dict.fromkeys(users, Decimal(0)), {"a": 0, "b": 0}
    for user in users:
        variant = served[user]["variant"]
        for _ in range(rng.integers(0, 4)):
            # Variant b's buyers pay in dollars, a's in euros: only converted amounts compare.
            currency = str(rng.choice(["EUR", "USD"], p=[0.8, 0.2] if variant == "a" else [0.2, 0.8]))
            amount = Decimal(str(round(float(rng.exponential(30)), 2)))
            order = event("order_completed", user, order_id=f"o-{uuid.uuid4().hex[:12]}", revenue=str(amount),
                          currency=currency)  # fmt: skip
            events.append(order)
            if rng.random() < 0.2:  # the same order sent twice: counted once
                events.append({**order, "event_id": str(uuid.uuid4())})
            day = datetime.fromisoformat(order["timestamp"]).date()
            spend[user] += amount * rate_on(rates, currency, day)
        if rng.random() < 0.1:  # a currency without a rate: left out of the mean, counted apart
            events.append(event("order_completed", user, order_id=f"o-{uuid.uuid4().hex[:12]}", revenue="5",
                                currency="GBP"))  # fmt: skip
            unconverted[variant] += 1
    post_events(gateway, api_key, events)
    wait_until_stored(
        clickhouse_url, [s["exposure_event_id"] for s in served.values()] + [e["event_id"] for e in events]
    )

    with connect(clickhouse_url) as client:
        load_rates(client, reporting, [Rate(c, d, r) for c, days in rates.items() for d, r in days])
        refresh_results(client, project_id=PROJECT, keys=[key], reporting_currency=reporting)
        rows = {r["variant"]: r for r in latest_results(client, PROJECT, key)}

    groups = {v: [float(spend[u]) for u in users if served[u]["variant"] == v] for v in ("a", "b")}
    for variant, sums in groups.items():
        assert rows[variant]["users"] == len(sums)
        assert rows[variant]["mean"] == pytest.approx(np.mean(sums))
        assert rows[variant]["variance"] == pytest.approx(np.var(sums, ddof=1))
        assert (rows[variant]["currency"], rows[variant]["unconverted"]) == (reporting, unconverted[variant])
    welch = stats.ttest_ind(groups["b"], groups["a"], equal_var=False)
    assert rows["b"]["p_value"] == pytest.approx(welch.pvalue)
    assert rows["b"]["lift"] == pytest.approx(np.mean(groups["b"]) / np.mean(groups["a"]) - 1)

    printed = CliRunner().invoke(
        experiment_app,
        ["results", key, "--project", PROJECT, "--no-refresh", "--url", clickhouse_url],
        env={"COLUMNS": "200"},  # rich's width: no cell wrapped
    )
    assert printed.exit_code == 0, printed.output
    assert f"{np.mean(groups['a']):.3g}±{np.std(groups['a'], ddof=1):.3g} SEK" in printed.output
    assert (f", {unconverted['a']} unconverted" in printed.output) is (unconverted["a"] > 0)


def test_skewed_assignment_is_flagged_as_sample_ratio_mismatch(gateway, secret_key, api_key, clickhouse_url):
    key = f"skewed-{secrets.token_hex(3)}"
    body = {"status": "running", "variants": [{"key": "off", "weight": 0.5}, {"key": "on", "weight": 0.5}]}
    assert put(gateway, key, secret_key, body).status_code == 201
    # A buggy client that drops most "on" exposures: serve 240 "off" users but only 160 "on" users (60/40).
    candidates = [f"s-{key}-{i}" for i in range(1000)]
    variant = {u: growthbook_assignment({**body, "key": key}, u)["variant"] for u in candidates}
    off = [u for u in candidates if variant[u] == "off"][:240]
    on = [u for u in candidates if variant[u] == "on"][:160]
    exposure_ids = [feature(gateway, key, api_key, u)["exposure_event_id"] for u in off + on]
    wait_until_stored(clickhouse_url, exposure_ids, timeout_s=120)

    with connect(clickhouse_url) as client:
        refresh_results(client, project_id=PROJECT, keys=[key])
        rows = latest_results(client, PROJECT, key)

    assert [(r["variant"], r["users"], r["goal"]) for r in rows] == [("off", 240, ""), ("on", 160, "")]
    assert rows[0]["srm_p_value"] == pytest.approx(stats.chisquare([240, 160]).pvalue)
    assert rows[0]["srm_p_value"] < 0.001 and all(r["srm_flag"] for r in rows)


def test_sdk_assigns_like_the_server_and_logs_exposures(gateway, secret_key, api_key, clickhouse_url) -> None:
    key = f"sdk-side-{secrets.token_hex(3)}"
    body = {
        "status": "running",
        "coverage": 0.8,
        "variants": [{"key": "a", "weight": 0.3}, {"key": "b", "weight": 0.3}, {"key": "c", "weight": 0.4}],
    }
    assert put(gateway, key, secret_key, body).status_code == 201
    served = gateway.get("/api/v1/features", headers={"X-API-Key": api_key}).json()["experiments"]
    experiment = next(e for e in served if e["key"] == key)
    assert experiment["version"] == 1 and "goals" not in experiment

    users = [f"sdk-{key}-{i}" for i in range(60)]
    for user in users[:30]:
        server = feature(gateway, key, api_key, user)
        local = get_feature_variant(experiment, user)
        assert {k: server[k] for k in local} == local
        oracle = growthbook_assignment(experiment, user)
        assert {k: server[k] for k in oracle} == oracle

    client = Client(api_key, gateway.base_url.scheme + "://" + gateway.base_url.netloc.decode())
    local = {u: get_feature_variant(experiment, u, client=client) for u in users[30:]}
    assert client.flush(timeout=30)
    client.shutdown()
    with connect(clickhouse_url) as warehouse:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            logged = warehouse.query(
                "SELECT user_id, variant, in_experiment FROM events FINAL "
                "WHERE event_type = 'experiment_exposure' AND experiment_key = {key:String} "
                "AND user_id IN {users:Array(String)}",
                parameters={"key": key, "users": users[30:]},
            ).result_rows
            if len(logged) == 30:
                break
            time.sleep(0.2)
    assert {(u, v, bool(i)) for u, v, i in logged} == {
        (u, r["variant"], r["in_experiment"]) for u, r in local.items()
    }


def define_buy_experiment(gateway: httpx.Client, key: str, secret: str) -> None:
    """Variants a and b, half each; the goal: a click on "buy"."""
    body = {
        "status": "running",
        "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
        "goals": [{"name": "buy", "event_type": "button_click", "property": "button_id", "equals": "buy"}],
    }
    assert put(gateway, key, secret, body).status_code == 201


def test_conversions_before_the_exposure_are_not_counted(
    gateway, secret_key, api_key, clickhouse_url
) -> None:
    key = f"before-{secrets.token_hex(3)}"
    define_buy_experiment(gateway, key, secret_key)
    users = [f"b-{key}-{i}" for i in range(24)]
    served = {u: feature(gateway, key, api_key, u) for u in users}
    converted_after = set(users[::2])
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    # Every user clicks "buy"; half of them only an hour before they were exposed, which must not count.
    events = [
        event("button_click", u, button_id="buy", **({} if u in converted_after else {"timestamp": hour_ago}))
        for u in users
    ]
    post_events(gateway, api_key, events)
    wait_until_stored(
        clickhouse_url, [s["exposure_event_id"] for s in served.values()] + [e["event_id"] for e in events]
    )

    with connect(clickhouse_url) as client:
        refresh_results(client, project_id=PROJECT, keys=[key])
        rows = latest_results(client, PROJECT, key)

    by_variant = {r["variant"]: r for r in rows if r["goal"] == "buy"}
    for variant in ("a", "b"):
        members = [u for u in users if served[u]["variant"] == variant]
        assert by_variant[variant]["users"] == len(members)
        assert by_variant[variant]["conversions"] == len([u for u in members if u in converted_after])


def test_a_visitor_exposed_anonymously_who_converts_after_login_is_one_converting_unit(
    gateway, secret_key, api_key, clickhouse_url
) -> None:
    """Exposure under the anonymous id, login (identify), conversion under the user id: one person, one
    converting unit (docs/identity.md), as the model of the identity rules (tests/support/persons.py) says."""
    key = f"login-{secrets.token_hex(3)}"
    define_buy_experiment(gateway, key, secret_key)
    moment = datetime.now(UTC) - timedelta(minutes=10)

    def at(minutes: int, event_type: str, ids: dict[str, str], **fields: Any) -> dict:
        when = (moment + timedelta(minutes=minutes)).isoformat()
        return {"event_id": str(uuid.uuid4()), "event_type": event_type, "timestamp": when, **ids, **fields}

    events = []
    for i in range(18):
        anon, user = {"anonymous_id": f"anon-{key}-{i}"}, {"user_id": f"u-{key}-{i}"}
        variant = "ab"[i % 2]
        events.append(
            at(0, "experiment_exposure", anon, experiment_key=key, in_experiment=True, variant=variant)
        )
        if i % 3 != 2:  # logs in; then buys (i % 3 == 0) under the user id only, as a server would send it
            events.append(at(1, "identify", {**anon, **user}))
            if i % 3 == 0:
                events.append(at(2, "button_click", user, button_id="buy"))
        elif i % 4 == 2:  # never logs in, buys anonymously
            events.append(at(2, "button_click", anon, button_id="buy"))
    post_events(gateway, api_key, events)
    wait_until_stored(clickhouse_url, [e["event_id"] for e in events])

    with connect(clickhouse_url) as client:
        refresh_results(client, project_id=PROJECT, keys=[key])
        rows = latest_results(client, PROJECT, key)

    stored = [{**e, "project_id": PROJECT} for e in events]
    person = persons(stored)
    exposed = {
        person(e): (e["variant"], e["timestamp"]) for e in stored if e["event_type"] == "experiment_exposure"
    }
    buyers = {
        person(e)
        for e in stored
        if e["event_type"] == "button_click" and e["timestamp"] >= exposed[person(e)][1]
    }
    by_variant = {r["variant"]: r for r in rows if r["goal"] == "buy"}
    for variant in ("a", "b"):
        members = {p for p, (v, _) in exposed.items() if v == variant}
        assert by_variant[variant]["users"] == len(members) == 9
        assert by_variant[variant]["conversions"] == len(members & buyers)
    assert len(buyers) > 6  # the logged-in buyers count: under raw ids only the anonymous ones would


def test_a_definition_reaches_a_second_gateway_by_its_refresh(
    gateway, secret_key, api_key, worker_env: dict[str, str], log_dir: Path
) -> None:
    port = services.free_port()
    other = services.Process(
        "gateway-experiments-2",
        [sys.executable, "-m", "pravis_gateway", "--port", str(port)],
        log_dir,
        {**worker_env, "PRAVIS_EXPERIMENTS_REFRESH_S": "0.5"},
    ).start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{port}/readyz", other.popen)
        second = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        key = f"refresh-{secrets.token_hex(3)}"
        body = {
            "status": "running",
            "variants": [{"key": "off", "weight": 0.5}, {"key": "on", "weight": 0.5}],
        }

        def served_by_second() -> dict[str, Any] | None:
            listed = second.get("/api/v1/features", headers={"X-API-Key": api_key}).json()["experiments"]
            return next((e for e in listed if e["key"] == key), None)

        assert served_by_second() is None
        assert put(gateway, key, secret_key, body).status_code == 201
        services.wait_for(lambda: served_by_second() is not None, 60, "the definition on the second gateway")
        assert served_by_second()["version"] == 1
        user = "refresh-user"
        assert (
            feature(second, key, api_key, user)["variant"]
            == growthbook_assignment({**body, "key": key}, user)["variant"]
        )

        assert put(gateway, key, secret_key, {**body, "status": "stopped"}).status_code in (200, 201)
        services.wait_for(lambda: served_by_second()["version"] == 2, 60, "the change on the second gateway")
        stopped = feature(second, key, api_key, user)
        assert (stopped["variant"], stopped["in_experiment"]) == ("off", False)
        second.close()
    finally:
        other.stop()


def test_pravis_experiment_refresh_computes_the_results(gateway, secret_key, api_key, clickhouse_url) -> None:
    key = f"cli-{secrets.token_hex(3)}"
    body = {"status": "running", "variants": [{"key": "x", "weight": 0.5}, {"key": "y", "weight": 0.5}]}
    assert put(gateway, key, secret_key, body).status_code == 201
    users = [f"cli-{key}-{i}" for i in range(30)]
    served = {u: feature(gateway, key, api_key, u) for u in users}
    wait_until_stored(clickhouse_url, [s["exposure_event_id"] for s in served.values()])

    pravis = str(Path(sys.executable).with_name("pravis"))
    done = subprocess.run(
        [pravis, "experiment", "refresh", "--project", PROJECT, "--url", clickhouse_url],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "refreshed" in done.stdout
    with connect(clickhouse_url) as client:
        rows = latest_results(client, PROJECT, key)
    assert {r["variant"]: r["users"] for r in rows} == {
        v: sum(1 for u in users if served[u]["variant"] == v) for v in ("x", "y")
    }
