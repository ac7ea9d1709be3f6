"""The identity graph through the real loader (docs/identity.md): one journey loaded in posted order and
again shuffled, with duplicates and late events in separate batches, must give every id the person an
independent model of the rules gives it, and the same graph both times."""

import asyncio
import random
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from pravis_rollups import clickhouse
from pravis_schemas import topics
from pravis_schemas.identity import LINKED_IDS_SQL

from tests.support import services

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)


def journey() -> list[dict]:
    """(event_type, minute, ids) steps: anonymous browsing, login, logout, a second user on the same device,
    a late pre-login event, implicit and explicit links to several users, aliases (one chain closes a
    cycle, one names a user whose own events come later)."""
    steps = [
        ("page_view", 1, {"anonymous_id": "anon-X"}),
        ("feature_use", 2, {"anonymous_id": "anon-X"}),
        ("identify", 3, {"anonymous_id": "anon-X", "user_id": "u-9"}),
        ("page_view", 4, {"anonymous_id": "anon-X", "user_id": "u-9"}),
        ("page_view", 5, {"anonymous_id": "anon-Y"}),
        ("identify", 6, {"anonymous_id": "anon-Y", "user_id": "u-10"}),
        ("feature_use", 7, {"anonymous_id": "anon-Y", "user_id": "u-10"}),
        ("page_view", 0, {"anonymous_id": "anon-X"}),  # late: before the login, sent last
        ("page_view", 8, {"anonymous_id": "anon-Z", "user_id": "u-10"}),  # implicit link...
        ("identify", 9, {"anonymous_id": "anon-Z", "user_id": "u-12"}),  # ...an explicit one wins
        ("page_view", 10, {"anonymous_id": "anon-W", "user_id": "u-13"}),  # same time: smaller user id
        ("page_view", 10, {"anonymous_id": "anon-W", "user_id": "u-10"}),
        ("page_view", 11, {"user_id": "u-11"}),
        ("alias", 12, {"user_id": "u-11", "previous_id": "u-9"}),
        ("page_view", 13, {"anonymous_id": "anon-V", "user_id": "u-13"}),
        ("alias", 14, {"user_id": "u-14", "previous_id": "anon-V"}),
        ("page_view", 15, {"user_id": "u-20"}),
        ("page_view", 15, {"user_id": "u-21"}),
        ("page_view", 15, {"user_id": "u-22"}),
        ("alias", 16, {"user_id": "u-20", "previous_id": "u-21"}),
        ("alias", 16, {"user_id": "u-21", "previous_id": "u-22"}),
        ("alias", 16, {"user_id": "u-22", "previous_id": "u-20"}),
        ("alias", 17, {"user_id": "u-30", "previous_id": "u-31"}),
        ("page_view", 18, {"user_id": "u-31"}),
        ("page_view", 19, {"anonymous_id": "anon-Q"}),
    ]
    return [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "timestamp": (START + timedelta(minutes=minute)).isoformat(),
            "received_at": START.isoformat(),
            "properties": {},
            **ids,
        }
        for event_type, minute, ids in steps
    ]


def model_persons(events: list[dict]) -> dict[str, str]:
    """The rules of docs/identity.md, written out plainly over the whole set of events."""
    identified = {e["user_id"] for e in events if e.get("user_id")}
    candidates: dict[str, list[tuple[int, str, str]]] = {}
    for e in events:
        user = e.get("user_id")
        explicit = e["event_type"] in ("identify", "alias")
        if user and e.get("anonymous_id") and e["anonymous_id"] != user:
            candidates.setdefault(e["anonymous_id"], []).append((0 if explicit else 1, e["timestamp"], user))
        if e["event_type"] == "alias":
            candidates.setdefault(e["previous_id"], []).append((0, e["timestamp"], user))
    merged: dict[str, set[str]] = {user: {user} for user in identified}
    for e in events:
        if e["event_type"] == "alias" and e["previous_id"] in identified:
            group = merged[e["user_id"]] | merged[e["previous_id"]]
            for member in group:
                merged[member] = group
    person = {user: min(merged[user]) for user in identified}
    for linked, links in candidates.items():
        if linked not in identified:
            person[linked] = person[min(links)[2]]
    for e in events:
        anonymous = e.get("anonymous_id")
        if anonymous and anonymous not in person:
            person[anonymous] = anonymous
    return person


def graph(url: str, project: str, ids: list[str]) -> dict[str, str]:
    with clickhouse.connect(url) as client:
        overrides = dict(
            client.query(
                "SELECT distinct_id, person_id FROM person_overrides WHERE project_id = {p:String}",
                parameters={"p": project},
            ).result_rows
        )
    return {id_: overrides.get(id_, id_) for id_ in ids}


def publish(bootstrap: str, events: list[dict], project: str) -> None:
    """Each event as its own `events` record, as the gateway writes one user's batch."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for e in events:
                await producer.send(topics.EVENTS, orjson.dumps({**e, "project_id": project}))
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(send())


def loaded(url: str, project: str) -> int:
    with clickhouse.connect(url) as client:
        return client.query(
            "SELECT uniqExact(event_id) FROM events WHERE project_id = {p:String}", parameters={"p": project}
        ).result_rows[0][0]


def test_shuffled_replayed_and_late_events_give_the_modelled_graph(
    kafka_bootstrap: str, clickhouse_url: str, loader: services.Process
) -> None:
    events = journey()
    expected = model_persons(events)
    assert expected["anon-X"] == expected["u-9"] == "u-11" and expected["anon-Z"] == "u-12"
    assert expected["anon-W"] == "u-10" and expected["u-22"] == "u-20" and expected["u-31"] == "u-30"
    assert expected["anon-V"] == "u-14" and expected["anon-Q"] == "anon-Q"
    ids = sorted(expected)
    in_order, shuffled = f"ordered-{secrets.token_hex(3)}", f"shuffled-{secrets.token_hex(3)}"

    rng = random.Random(21)
    # Aliases first and the events that identify their previous ids after them, each part in a batch of its
    # own, with copies of a few events as a redelivery makes them.
    first = [e for e in events if e["event_type"] == "alias"] + rng.sample(events, 5)
    rest = [e for e in events if e["event_type"] != "alias"]
    rng.shuffle(rest)
    batches = [first, rest[: len(rest) // 2], rest[len(rest) // 2 :] + rng.sample(events, 5)]

    publish(kafka_bootstrap, events, in_order)
    seen: set[str] = set()
    for batch in batches:
        publish(kafka_bootstrap, batch, shuffled)
        seen |= {e["event_id"] for e in batch}
        count = len(seen)
        # One batch at a time, so the loader refreshes between them as it would between late deliveries.
        services.wait_for(lambda: loaded(clickhouse_url, shuffled) == count, what="batch loaded")  # noqa: B023

    services.wait_for(
        lambda: graph(clickhouse_url, in_order, ids) == expected == graph(clickhouse_url, shuffled, ids),
        what="both graphs equal to the model",
    )
    # Every id of the journey asks for its person's ids, as export, deletion and a withdrawal do.
    with clickhouse.connect(clickhouse_url) as client:
        linked = {
            subject: [
                row[0]
                for row in client.query(
                    LINKED_IDS_SQL, parameters={"project": shuffled, "subject": subject}
                ).result_rows
            ]
            for subject in ids
        }
    assert linked == {
        subject: sorted({i for i in ids if expected[i] == expected[subject]} | {expected[subject]})
        for subject in ids
    }
    assert linked["anon-Q"] == ["anon-Q"]


def refreshes(worker_env: dict[str, str], reason: str) -> float:
    """The loader's count of identity refreshes asked for by `reason`."""
    metrics = httpx.get(f"http://127.0.0.1:{worker_env['PRAVIS_LOADER_HEALTH_PORT']}/metrics").text
    series = f'pravis_loader_identity_refreshes_total{{reason="{reason}"}} '
    return next((float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(series)), 0.0)


def test_an_event_identifying_a_recent_aliases_previous_id_merges_without_waiting_for_the_recheck(
    kafka_bootstrap: str, clickhouse_url: str, worker_env: dict[str, str], loader: services.Process
) -> None:
    """The alias arrives first and names u-B, which no event has carried as a user id: not an edge yet. A
    later batch with no alias in it carries u-B as a user id; the loader must see that this batch changes the
    merges and refresh within a second or so, not at the recheck a minute after its last refresh."""
    project = f"pending-{secrets.token_hex(3)}"
    now = datetime.now(UTC).replace(microsecond=0)

    def at(minute: int, event_type: str, **ids: str) -> dict:
        return {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "timestamp": (now - timedelta(minutes=10 - minute)).isoformat(),
            "received_at": now.isoformat(),
            "properties": {},
            **ids,
        }

    followed_up = refreshes(worker_env, "new pending id")
    publish(
        kafka_bootstrap,
        [at(1, "page_view", user_id="u-B2"), at(2, "alias", user_id="u-B2", previous_id="u-B")],
        project,
    )
    services.wait_for(lambda: loaded(clickhouse_url, project) == 2, what="the alias loaded")
    # The refresh after the alias found u-B pending, and the one that follows a new pending id has run: from
    # here on nothing asks for a refresh but the recheck a minute later, or a batch carrying u-B.
    services.wait_for(
        lambda: refreshes(worker_env, "new pending id") > followed_up, what="the refreshes after the alias"
    )
    # u-B is not identified yet: the alias links it to u-B2 (rule 1), no merge of two users (rule 2) yet.
    assert graph(clickhouse_url, project, ["u-B", "u-B2"]) == {"u-B": "u-B2", "u-B2": "u-B2"}

    asked = refreshes(worker_env, "pending id")
    publish(kafka_bootstrap, [at(3, "page_view", user_id="u-B")], project)
    services.wait_for(
        lambda: graph(clickhouse_url, project, ["u-B", "u-B2"]) == {"u-B": "u-B", "u-B2": "u-B"},
        what="u-B2 merged into u-B (rule 2: the smaller user id)",
    )
    assert refreshes(worker_env, "pending id") > asked  # that batch asked for it, not the recheck
