"""Rule 4 of docs/identity.md at the gateway: an alias merging two users who each have a history is refused
with its reason unless forced with the secret key; the warehouse it is checked against being down is a 503.

Against the real gateway, broker, loader and warehouse of the session fixtures; ids are unique per test."""

import secrets
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pravis_gateway.identity import ALIAS_MERGES_IDENTIFIED_USERS, IdentityFacts, refusals
from pravis_gateway.keys import KeyStore
from pravis_schemas.clickhouse_url import clickhouse_connect_from_url

from tests.support import services

EVENTS = "/api/v1/analytics/events"
ALIAS = "/api/v1/identity/alias"


def event(event_type: str = "page_view", **ids: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "timestamp": datetime.now(UTC).isoformat(),
        **ids,
    }


def person_of(url: str, subject: str) -> str:
    with clickhouse_connect_from_url(url) as client:
        rows = client.query(
            "SELECT person_id FROM person_overrides "
            "WHERE project_id = 'test-project' AND distinct_id = {s:String}",
            parameters={"s": subject},
        ).result_rows
    return rows[0][0] if rows else subject


def has_history(url: str, *users: str) -> bool:
    with clickhouse_connect_from_url(url) as client:
        found = client.query(
            "SELECT count() FROM (SELECT user_id FROM identity_users WHERE project_id = 'test-project' "
            "AND user_id IN {u:Array(String)} GROUP BY user_id HAVING sum(events) > 0)",
            parameters={"u": list(users)},
        ).result_rows[0][0]
    return found == len(users)


def test_refusals_need_two_histories_and_two_persons() -> None:
    facts = IdentityFacts(frozenset({"u-1", "u-2", "u-3"}), {"u-2": "u-2", "u-3": "u-2"})
    pairs = {("u-1", "u-2"), ("u-3", "u-2"), ("u-1", "anon-1"), ("u-4", "u-1")}

    refused = refusals(pairs, facts)

    assert set(refused) == {("u-1", "u-2")}
    assert refused[("u-1", "u-2")].startswith(f"{ALIAS_MERGES_IDENTIFIED_USERS}: 'u-2' and 'u-1'")


def test_alias_of_two_histories_is_refused_unless_forced_with_the_secret_key(
    gateway_url: str, api_key: str, secret_key: str, clickhouse_url: str, loader: services.Process
) -> None:
    keep, merge, anonymous = (f"{name}-{secrets.token_hex(4)}" for name in ("keep", "merge", "anon"))
    write = {"X-API-Key": api_key}
    history = [event(user_id=keep), event(user_id=merge, anonymous_id=anonymous)]
    assert httpx.post(gateway_url + EVENTS, json={"events": history}, headers=write).status_code == 200
    services.wait_for(lambda: has_history(clickhouse_url, keep, merge), what="both users loaded")

    alias = event("alias", user_id=keep, previous_id=merge)
    fine = event(user_id=keep)
    answer = httpx.post(gateway_url + EVENTS, json={"events": [alias, fine]}, headers=write)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "partial"
    assert [r["index"] for r in answer.json()["rejected"]] == [0]
    assert answer.json()["rejected"][0]["error"].startswith(ALIAS_MERGES_IDENTIFIED_USERS)

    body = {"user_id": keep, "previous_id": merge}
    assert httpx.post(gateway_url + ALIAS, json={**body, "force": True}, headers=write).status_code == 401
    unforced = httpx.post(gateway_url + ALIAS, json=body, headers={"X-API-Key": secret_key})
    assert unforced.status_code == 422 and ALIAS_MERGES_IDENTIFIED_USERS in unforced.json()["error"]

    forced = httpx.post(gateway_url + ALIAS, json={**body, "force": True}, headers={"X-API-Key": secret_key})
    assert forced.status_code == 200, forced.text
    person = min(keep, merge)
    services.wait_for(
        lambda: person_of(clickhouse_url, keep) == person_of(clickhouse_url, merge) == person,
        what="the forced alias merged both users",
    )
    assert person_of(clickhouse_url, anonymous) == person
    with clickhouse_connect_from_url(clickhouse_url) as client:
        assert client.query(
            "SELECT forced FROM events WHERE event_type = 'alias' AND previous_id = {m:String}",
            parameters={"m": merge},
        ).result_rows == [(True,)]

    # Once they are one person, the same alias from a browser is no merge any more, and is accepted.
    again = httpx.post(gateway_url + EVENTS, json={"events": [event("alias", **body)]}, headers=write)
    assert again.json() == {"status": "ok", "processed": 1}


@pytest.fixture(scope="module")
def gateway_without_warehouse(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, log_dir: Path
) -> Iterator[tuple[str, str]]:
    data = tmp_path_factory.mktemp("no-warehouse")
    key, _ = KeyStore(data / "keys.json").create("cut-off", "write")
    port = services.free_port()
    env = {
        "PRAVIS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PRAVIS_CLICKHOUSE_URL": f"http://127.0.0.1:{services.free_port()}/pravis",
        "PRAVIS_DATA_DIR": str(data),
    }
    gateway = services.Process(
        "gateway-no-warehouse", [sys.executable, "-m", "pravis_gateway", "--port", str(port)], log_dir, env
    ).start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{port}/readyz", gateway.popen)
        yield f"http://127.0.0.1:{port}", key
    finally:
        gateway.stop()


def test_a_batch_with_an_alias_waits_for_the_warehouse_others_do_not(
    gateway_without_warehouse: tuple[str, str],
) -> None:
    url, key = gateway_without_warehouse
    headers = {"X-API-Key": key}

    with_alias = httpx.post(
        url + EVENTS,
        json={"events": [event(anonymous_id="a"), event("alias", user_id="u", previous_id="a")]},
        headers=headers,
    )
    without = httpx.post(url + EVENTS, json={"events": [event(anonymous_id="a")]}, headers=headers)

    assert with_alias.status_code == 503 and int(with_alias.headers["Retry-After"]) > 0
    assert "warehouse" in with_alias.json()["error"]
    assert without.json() == {"status": "ok", "processed": 1}
