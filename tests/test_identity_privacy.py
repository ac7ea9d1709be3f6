"""Privacy and experiments follow the person (issue 21): export, deletion and consent withdrawal by a user id
cover the anonymous id it browsed under before login and the user ids an alias merged into it; a person-hashed
experiment keeps one variant across login.

Each test builds its own journey with fresh ids. What the test expects (which ids are one person) is written
down by the test from the journey it posted, never read from the code under test, and the leftover check
walks every id-holding column of every table the warehouse itself lists.
"""

import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import httpx
import pytest
from pravis_gateway.keys import KeyStore
from pravis_rollups.clickhouse import connect

from tests.growthbook_oracle import growthbook_assignment
from tests.helpers import (
    delete_user_data,
    export_user_data,
    now_iso,
    page_view,
    post_batch,
    rows_holding,
    wait_until_stored,
)
from tests.support import services


def event(event_type: str, timestamp: str | None = None, **fields) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "timestamp": timestamp or now_iso(),
        **fields,
    }


@dataclass
class Journey:
    """anon browses, logs in as user (identify, then events with both ids); merged, a user id that so far only
    kept an anonymous id of its own (`merged_anon`, by an alias), is merged into user by an alias; after
    logout the device gets `after_logout`, and `other` logs in on it: those two are another person, which user
    logging in on that device again later does not change (an id belongs to the user seen with it first)."""

    user: str
    anon: str
    merged: str
    merged_anon: str
    after_logout: str
    other: str
    events: list[dict]

    @property
    def person(self) -> set[str]:
        return {self.user, self.anon, self.merged, self.merged_anon}

    @property
    def person_id(self) -> str:
        """Two identified users merged by an alias are the person of the smaller user id (rule 2)."""
        return min(self.user, self.merged)

    @property
    def person_events(self) -> list[dict]:
        return [e for e in self.events if self.person & {e.get("user_id"), e.get("anonymous_id")}]

    @property
    def stranger_events(self) -> list[dict]:
        return [e for e in self.events if e not in self.person_events]

    @property
    def pre_login(self) -> list[dict]:
        return [e for e in self.events if e.get("anonymous_id") == self.anon and "user_id" not in e]


def journey(gateway_url: str, api_key: str, clickhouse_url: str) -> Journey:
    tag = uuid.uuid4().hex[:8]
    user, anon, merged, merged_anon = f"u-9-{tag}", f"anon-X-{tag}", f"u-11-{tag}", f"anon-Q-{tag}"
    after_logout, other = f"anon-Y-{tag}", f"u-10-{tag}"
    # Yesterday (UTC): a day whose rollups a deletion recomputes, whatever the local time zone.
    day = datetime.now(UTC).date() - timedelta(days=1)
    at = [datetime.combine(day, clock_time(10, minute), UTC).isoformat() for minute in range(10)]
    events = [
        page_view(anonymous_id=anon, timestamp=at[0]),
        event("feature_use", at[1], anonymous_id=anon, feature_name="voice_search"),
        event("identify", at[2], user_id=user, anonymous_id=anon, properties={"plan": "pro"}),
        page_view(user_id=user, anonymous_id=anon, timestamp=at[3]),
        event("feedback", at[4], user_id=user, anonymous_id=anon, rating=4, interaction_id=f"i-{tag}"),
        event("alias", at[5], user_id=merged, previous_id=merged_anon),
        event("alias", at[6], user_id=user, previous_id=merged),
        page_view(anonymous_id=after_logout, timestamp=at[7]),
        page_view(user_id=other, anonymous_id=after_logout, timestamp=at[8]),
        page_view(user_id=user, anonymous_id=after_logout, timestamp=at[9]),
    ]
    result = post_batch(gateway_url, api_key, events)
    assert result == {"status": "ok", "processed": len(events)}, result
    wait_until_stored(clickhouse_url, [e["event_id"] for e in events])
    return Journey(user, anon, merged, merged_anon, after_logout, other, events)


def linked_in_warehouse(clickhouse_url: str, project: str, ids: set[str]) -> dict[str, str]:
    """person_id of each of `ids` as analysts read it (person_overrides), for waiting on the graph."""
    with connect(clickhouse_url) as client:
        rows = client.query(
            "SELECT distinct_id, person_id FROM person_overrides "
            "WHERE project_id = {p:String} AND distinct_id IN {ids:Array(String)}",
            parameters={"p": project, "ids": sorted(ids)},
        ).result_rows
    return dict(rows)


def wait_for_person(clickhouse_url: str, project: str, person: str, ids: set[str]) -> None:
    """Until the graph maps every id of `ids` but `person` to `person` (the loader keeps it current)."""
    expected = dict.fromkeys(ids - {person}, person)
    deadline = time.monotonic() + 60
    while (found := linked_in_warehouse(clickhouse_url, project, ids)) != expected:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def test_export_of_a_user_id_returns_the_pre_login_rows_and_names_the_ids(
    gateway_url: str, api_key: str, secret_key: str, clickhouse_url: str, loader
) -> None:
    j = journey(gateway_url, api_key, clickhouse_url)
    wait_for_person(clickhouse_url, "test-project", j.person_id, j.person)

    rows = export_user_data(gateway_url, secret_key, j.user)

    assert rows[0] == {"_table": "_person", "subject": j.user, "subjects_covered": sorted(j.person)}
    exported = {r["event_id"] for r in rows if r["_table"] == "events"}
    assert {e["event_id"] for e in j.pre_login} <= exported
    assert exported == {e["event_id"] for e in j.person_events}
    # Rows of another person's id whose own state names the user (not merged yet) are the user's data too.
    links = {
        (r["linked_id"], r["user_id"])
        for r in rows
        if r["_table"] == "identity_links" and r["linked_id"] in j.person
    }
    assert links == {(j.anon, j.user), (j.merged, j.user), (j.merged_anon, j.merged)}
    assert {r["user_id"] for r in rows if r["_table"] == "identity_users"} == {j.user, j.merged}
    assert {(r["user_id"], r["person_id"]) for r in rows if r["_table"] == "identity_merges"} == {
        (j.user, j.person_id), (j.merged, j.person_id),
    }  # fmt: skip
    assert export_user_data(gateway_url, secret_key, j.anon)[0]["subjects_covered"] == sorted(j.person)


def test_a_withdrawal_by_the_user_id_blocks_the_pre_login_anonymous_id(
    gateway_url: str, api_key: str, secret_key: str, clickhouse_url: str, loader
) -> None:
    j = journey(gateway_url, api_key, clickhouse_url)
    wait_for_person(clickhouse_url, "test-project", j.person_id, j.person)

    withdrawn = httpx.put(
        f"{gateway_url}/api/v1/consent/{j.user}", json={"analytics": False}, headers={"X-API-Key": api_key}
    )

    assert withdrawn.status_code == 200, withdrawn.text
    for subject in j.person:
        state = httpx.get(f"{gateway_url}/api/v1/consent/{subject}", headers={"X-API-Key": secret_key})
        assert state.json()["consent"]["analytics"] is False, subject
    blocked = post_batch(gateway_url, api_key, [page_view(anonymous_id=j.anon)])
    assert blocked == {"status": "ok", "processed": 0, "dropped_no_consent": 1}
    still_allowed = [page_view(anonymous_id=j.after_logout), page_view(user_id=j.other)]
    assert post_batch(gateway_url, api_key, still_allowed) == {"status": "ok", "processed": 2}
    expected = {(subject, None if subject == j.user else j.user) for subject in j.person}
    deadline = time.monotonic() + 60
    while (history := consent_history(clickhouse_url, j.person)) != expected:
        assert time.monotonic() < deadline, history
        time.sleep(0.2)


def consent_history(clickhouse_url: str, subjects: set[str]) -> set[tuple[str, str | None]]:
    """(subject, linked_from) of the analytics withdrawals the loader keeps for `subjects`."""
    with connect(clickhouse_url) as client:
        rows = client.query(
            "SELECT subject, linked_from FROM consent_history FINAL "
            "WHERE subject IN {s:Array(String)} AND consent['analytics'] = false",
            parameters={"s": sorted(subjects)},
        ).result_rows
    return set(rows)


def test_deleting_a_user_id_leaves_no_row_of_any_linked_id_and_the_audit_lists_them(
    gateway_url: str, api_key: str, secret_key: str, clickhouse_url: str, loader, privacy_worker
) -> None:
    j = journey(gateway_url, api_key, clickhouse_url)
    wait_for_person(clickhouse_url, "test-project", j.person_id, j.person)
    assert sum(rows_holding(clickhouse_url, {j.anon}).values()) > 0

    status = delete_user_data(gateway_url, secret_key, j.user)

    assert status["subjects_covered"] == sorted(j.person)
    assert status["rows_deleted"]["events"] == len(j.person_events)
    leftovers = rows_holding(clickhouse_url, j.person)
    assert set(leftovers.values()) == {0}, {column: n for column, n in leftovers.items() if n}
    strangers = [e["event_id"] for e in j.stranger_events]
    assert wait_until_stored(clickhouse_url, strangers) == dict.fromkeys(strangers, 1)
    others = linked_in_warehouse(clickhouse_url, "test-project", {j.after_logout, j.other})
    assert others == {j.after_logout: j.other}
    late = post_batch(gateway_url, api_key, [page_view(anonymous_id=j.anon)])
    assert late == {"status": "ok", "processed": 0, "dropped_no_consent": 1}


def test_deleting_an_anonymous_id_that_never_logged_in_covers_only_it(
    gateway_url: str, api_key: str, secret_key: str, clickhouse_url: str, loader, privacy_worker
) -> None:
    j = journey(gateway_url, api_key, clickhouse_url)
    lone = "anon-lone-" + uuid.uuid4().hex[:8]
    visits = [page_view(anonymous_id=lone) for _ in range(3)]
    assert post_batch(gateway_url, api_key, visits)["processed"] == 3
    wait_until_stored(clickhouse_url, [e["event_id"] for e in visits])

    status = delete_user_data(gateway_url, secret_key, lone)

    assert status["subjects_covered"] == [lone]
    assert status["rows_deleted"] == {"events": 3}
    assert set(rows_holding(clickhouse_url, {lone}).values()) == {0}
    kept = [e["event_id"] for e in j.events]
    assert wait_until_stored(clickhouse_url, kept) == dict.fromkeys(kept, 1)


@pytest.fixture
def quick_gateway(worker_env: dict[str, str], log_dir: Path, loader) -> str:
    """A gateway that keeps a person for 0.2 s only, so the test sees a login take effect without waiting for
    the default TTL."""
    port = services.free_port()
    env = {**worker_env, "PRAVIS_PERSON_CACHE_TTL_S": "0.2", "PRAVIS_EXPERIMENTS_REFRESH_S": "0.5"}
    process = services.Process(
        "gateway-person", [sys.executable, "-m", "pravis_gateway", "--port", str(port)], log_dir, env
    ).start()
    try:
        url = f"http://127.0.0.1:{port}"
        services.wait_for_http(url + "/readyz", process.popen)
        yield url
    finally:
        process.stop()


def test_a_person_hashed_experiment_keeps_the_variant_across_login(
    quick_gateway: str, data_dir: Path, clickhouse_url: str
) -> None:
    store = KeyStore(data_dir / "keys.json")
    project = "person-experiments"
    api_key, _ = store.create(project, "write")
    secret_key, _ = store.create(project, "secret")
    definitions = {
        hash_on: {
            "key": f"checkout-{hash_on}-{uuid.uuid4().hex[:6]}",
            "seed": "checkout",
            "status": "running",
            "variants": [{"key": "control", "weight": 0.5}, {"key": "one-tap", "weight": 0.5}],
            "hash_on": hash_on,
        }
        for hash_on in ("id", "person")
    }
    for definition in definitions.values():
        saved = httpx.put(
            f"{quick_gateway}/api/v1/experiments/{definition['key']}",
            json=definition,
            headers={"X-API-Key": secret_key},
        )
        assert saved.status_code == 201, saved.text

    def oracle(unit: str) -> str:
        return growthbook_assignment(definitions["person"], unit)["variant"]

    # A visitor whose anonymous id and user id land in different variants: the case hashing on the id splits.
    tag = uuid.uuid4().hex[:6]
    user, anon = next(
        (f"u-{tag}-{i}", f"anon-{tag}-{i}")
        for i in range(100)
        if oracle(f"u-{tag}-{i}") != oracle(f"anon-{tag}-{i}")
    )

    def feature(kind: str, **ids: str) -> httpx.Response:
        return httpx.get(
            f"{quick_gateway}/api/v1/feature/{definitions[kind]['key']}",
            params=ids,
            headers={"X-API-Key": api_key},
        )

    def variant(kind: str, **ids: str) -> str:
        response = feature(kind, **ids)
        assert response.status_code == 200, response.text
        return response.json()["variant"]

    deadline = time.monotonic() + 30
    while feature("person", anonymous_id=anon).status_code == 404:
        assert time.monotonic() < deadline, "the gateway never loaded the definitions"
        time.sleep(0.2)

    assert variant("person", anonymous_id=anon) == oracle(anon)
    login = [event("identify", user_id=user, anonymous_id=anon)]
    assert post_batch(quick_gateway, api_key, login) == {"status": "ok", "processed": 1}
    wait_for_person(clickhouse_url, project, user, {user, anon})

    assert variant("person", user_id=user, anonymous_id=anon) == oracle(user)
    deadline = time.monotonic() + 30
    while (before_login_id := variant("person", anonymous_id=anon)) != oracle(user):
        assert time.monotonic() < deadline, before_login_id
        time.sleep(0.1)
    assert variant("person", user_id=user) == oracle(user)
    assert variant("id", anonymous_id=anon) == oracle(anon)
    assert variant("id", user_id=user) == oracle(user)
