"""End to end: the Python SDK against the real gateway and loader, checked with SQL in ClickHouse."""

import subprocess
import sys
import time
import uuid

import httpx
import pytest
from fastapi import FastAPI, Response
from pravis_rollups.clickhouse import connect
from pravis_sdk import AsyncClient, Client, PravisMiddleware, RetryPolicy

from tests.helpers import (
    journey_rows,
    persons_of,
    users_with_history,
    wait_until_equal,
    wait_until_stored,
)
from tests.sdk_site import Site


@pytest.fixture
def site(gateway_url: str):
    with Site(gateway_url) as s:
        yield s


def test_batches_at_flush_at_and_on_flush_arrive_once(
    site: Site, api_key: str, loader, clickhouse_url
) -> None:
    with Client(api_key, site.url, flush_at=5, flush_interval=60) as client:
        first = [client.track("button_click", {"n": i}, button_id="buy", user_id="u-e2e") for i in range(5)]
        # Wait for the client to settle the batch, not only for the site to see it: events queued while the
        # answer is on its way back are sent with the backlog at once, as they should be.
        deadline = time.monotonic() + 10
        while client.stats().accepted < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        second = [client.track("feature_use", feature_name="wishlist", user_id="u-e2e") for _ in range(3)]
        time.sleep(0.3)
        assert len(site.posts) == 1  # 3 < flush_at: held until the flush
        assert client.flush(10)

    assert [post.event_ids for post in site.posts] == [first, second]
    ids = first + second
    assert wait_until_stored(clickhouse_url, ids) == dict.fromkeys(ids, 1)
    assert client.stats().accepted == 8 and client.stats().dropped == 0


def test_503_is_retried_and_a_lost_response_still_counts_once(
    site: Site, api_key, loader, clickhouse_url
) -> None:
    site.script = ["503", "forward_then_503", "forward"]
    policy = RetryPolicy(max_retries=5, base_s=0.05, cap_s=0.2)
    with Client(api_key, site.url, flush_at=100, retry_policy=policy) as client:
        ids = [
            client.track(
                "voice_request",
                user_id="u-e2e",
                interaction_id=f"i-{n}",
                request_duration_ms=120.0,
                success=True,
                model_used="whisper-small",
                intent="Track  ORDER",
            )
            for n in range(4)
        ]
        slept: list[float] = []
        sleep = client._sleep

        def recording(seconds: float) -> bool:
            slept.append(seconds)
            return sleep(seconds)

        client._sleep = recording  # the waits asked for, checked below instead of a stopwatch
        assert client.flush(30)

    assert [post.answered for post in site.posts] == [503, 503, 200]
    assert all(post.event_ids == ids for post in site.posts)  # the same events, same ids, each time
    # Retry-After: 1, twice; each wait at least that, plus at most the policy's 10 % jitter.
    assert len(slept) == 2 and all(1.0 <= waited <= 1.1 for waited in slept), slept
    assert wait_until_stored(clickhouse_url, ids) == dict.fromkeys(ids, 1)
    with connect(clickhouse_url) as ch:
        intents = ch.query(
            "SELECT DISTINCT intent FROM events FINAL WHERE event_id IN {ids:Array(UUID)}",
            parameters={"ids": ids},
        ).result_rows
    assert intents == [("track order",)]


def test_invalid_events_are_reported_not_retried(site: Site, api_key, loader, clickhouse_url) -> None:
    errors = []
    with Client(api_key, site.url, flush_at=100, on_error=errors.append) as client:
        good = client.track("feedback", rating=4, user_id="u-e2e")
        client.track("feedback", rating=9, user_id="u-e2e")
        client.flush(10)

    assert len(site.posts) == 1
    assert client.stats().rejected == 1 and client.stats().accepted == 1
    assert errors[0].kind == "rejected" and "rating" in errors[0].reason
    assert wait_until_stored(clickhouse_url, [good]) == {good: 1}


def test_bad_key_is_dropped_and_reported(site: Site, loader) -> None:
    with Client("pvw_not-a-real-key", site.url) as client:
        client.track("custom_ping", user_id="u-e2e")
        client.flush(10)
        assert client.stats().dropped_by_reason == {"http_401": 1}
    assert len(site.posts) == 1


async def test_async_client_with_gzip_arrives_once(site: Site, api_key, loader, clickhouse_url) -> None:
    async with AsyncClient(api_key, site.url, gzip=True) as client:
        ids = [
            client.track(
                "tts", user_id="u-e2e", interaction_id="i-tts", request_duration_ms=50.5, success=True
            )
            for _ in range(3)
        ]
        assert await client.flush(10)

    assert site.posts[0].headers.get("content-encoding") == "gzip"
    assert site.posts[0].answered == 200, "gateway refused a gzip body"
    assert wait_until_stored(clickhouse_url, ids) == dict.fromkeys(ids, 1)


async def test_fastapi_middleware_rows_in_clickhouse(api_key, gateway_url, loader, clickhouse_url) -> None:
    client = Client(api_key, gateway_url, flush_at=1000)
    app = FastAPI()
    app.add_middleware(PravisMiddleware, client=client, user_id=lambda scope: "u-api")

    @app.get("/products/{product_id}")
    async def product(product_id: int, response: Response) -> dict:
        response.headers["X-Cache"] = "HIT" if product_id % 2 else "MISS"
        return {"id": product_id}

    @app.post("/checkout")
    async def checkout() -> dict:
        raise RuntimeError("payment service down")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://boutique") as http:
        for product_id in (1, 2, 3):
            assert (await http.get(f"/products/{product_id}")).status_code == 200
        assert (await http.post("/checkout")).status_code == 500
    assert client.flush(10)
    client.shutdown()
    assert client.stats().accepted == 4

    deadline = time.monotonic() + 60
    rows: list = []
    while time.monotonic() < deadline:
        try:
            with connect(clickhouse_url) as ch:
                rows = ch.query(
                    "SELECT endpoint, method, status, cache_hit, error_type, duration_ms > 0, user_id "
                    "FROM events FINAL WHERE event_type = 'api_request' AND user_id = 'u-api' "
                    "ORDER BY endpoint, cache_hit"
                ).result_rows
        except Exception as exc:
            if "UNKNOWN_TABLE" not in str(exc):
                raise
        if len(rows) == 4:
            break
        time.sleep(0.2)
    assert rows == [
        ("/checkout", "POST", 500, None, "RuntimeError", True, "u-api"),
        ("/products/{product_id}", "GET", 200, False, None, True, "u-api"),
        ("/products/{product_id}", "GET", 200, True, None, True, "u-api"),
        ("/products/{product_id}", "GET", 200, True, None, True, "u-api"),
    ]


def test_events_still_queued_at_interpreter_exit_are_sent(
    site: Site, api_key, loader, clickhouse_url
) -> None:
    script = (
        "import sys\n"
        "from pravis_sdk import Client\n"
        "client = Client(sys.argv[1], sys.argv[2], flush_at=100, flush_interval=600)\n"
        "print(client.track('custom_exit', user_id='u-exit'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, api_key, site.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    event_id = out.stdout.strip()

    assert [post.event_ids for post in site.posts] == [[event_id]]
    assert wait_until_stored(clickhouse_url, [event_id]) == {event_id: 1}


def test_login_logout_and_alias_journey_builds_the_identity_graph(
    site: Site, api_key: str, loader, clickhouse_url: str
) -> None:
    run = uuid.uuid4().hex[:8]
    first_user, second_user, relayed_user = f"u-first-{run}", f"u-second-{run}", f"u-relayed-{run}"
    cookie, old_anonymous = f"anon-cookie-{run}", f"anon-old-{run}"
    with Client(api_key, site.url, flush_at=100) as client:
        device = [client.anonymous_id]
        sent = [
            client.page("https://boutique.example/shoes"),
            client.identify(first_user, {"plan": "pro"}),
            client.track("feature_use", feature_name="wishlist"),
        ]
        client.identify(None)
        device.append(client.anonymous_id)
        sent += [
            client.page("https://boutique.example/"),
            client.identify(second_user),
            client.identify(relayed_user, anonymous_id=cookie),
            client.alias(old_anonymous, first_user),
        ]
        assert client.flush(10)
    assert client.stats().accepted == len(sent)

    # What each call should have sent, spelled out from the journey above, not read back from the SDK: one
    # session across the login, a new one after the logout; the relayed login and the alias carry none.
    expected = [
        ("page_view", None, device[0], 0, None),
        ("identify", first_user, device[0], 0, None),
        ("feature_use", first_user, None, 0, None),
        ("page_view", None, device[1], 1, None),
        ("identify", second_user, device[1], 1, None),
        ("identify", relayed_user, cookie, None, None),
        ("alias", first_user, None, None, old_anonymous),
    ]
    assert wait_until_stored(clickhouse_url, sent) == dict.fromkeys(sent, 1)
    assert journey_rows(clickhouse_url, sent) == expected

    # Rule 1: each anonymous id belongs to the user it was explicitly linked to; the device's second
    # anonymous id (after the logout) to the second user only.
    persons = {
        device[0]: first_user,
        device[1]: second_user,
        cookie: relayed_user,
        old_anonymous: first_user,
    }
    ids = [*persons, first_user, second_user, relayed_user]
    assert wait_until_equal(lambda: persons_of(clickhouse_url, ids), persons) == persons


def test_alias_of_two_users_with_histories_is_reported_rejected_the_other_kept(
    site: Site, api_key: str, loader, clickhouse_url: str
) -> None:
    run = uuid.uuid4().hex[:8]
    kept, merged, anonymous = f"u-kept-{run}", f"u-merged-{run}", f"anon-{run}"
    errors: list = []
    with Client(api_key, site.url, flush_at=100, on_error=errors.append) as client:
        users = [kept, merged]
        for user in users:
            client.track("feature_use", feature_name="wishlist", user_id=user)
        assert client.flush(10)
        # Rule 4 looks at what the warehouse holds: both histories must be there before the alias is sent.
        assert wait_until_equal(lambda: users_with_history(clickhouse_url, users), set(users)) == set(users)
        refused = client.alias(merged, kept)
        accepted = client.alias(anonymous, kept)
        assert client.flush(10)

    assert (client.stats().accepted, client.stats().rejected) == (3, 1)
    assert [(e.kind, [event["event_id"] for event in e.events]) for e in errors] == [("rejected", [refused])]
    assert errors[0].reason.startswith("alias_merges_identified_users")
    assert wait_until_stored(clickhouse_url, [accepted]) == {accepted: 1}
    ids = [kept, merged, anonymous]
    assert wait_until_equal(lambda: persons_of(clickhouse_url, ids), {anonymous: kept}) == {anonymous: kept}


async def test_an_asgi_app_under_load_reports_its_resources(
    api_key, gateway_url, loader, clickhouse_url
) -> None:
    """A FastAPI app under concurrent load, some handlers blocking the event loop: the middleware's sampler
    sends `resource_sample` events that land in ClickHouse with this process's figures (psutil's, read here
    independently), the requests in flight and the loop's lag."""
    import asyncio
    import os
    import socket

    import psutil

    client = Client(api_key, gateway_url, flush_at=1000)
    app = FastAPI()
    service = f"shop-api-{uuid.uuid4().hex[:6]}"
    app.add_middleware(PravisMiddleware, client=client, service=service, resource_interval_s=0.1)

    @app.get("/slow")
    async def slow() -> dict:
        await asyncio.sleep(0.02)
        return {}

    @app.get("/blocking")
    async def blocking() -> dict:
        until = time.perf_counter() + 0.03
        while time.perf_counter() < until:  # CPU work that holds the event loop, as a sync call in a handler
            pass
        return {}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://boutique") as http:
        deadline, requests = time.monotonic() + 60, 0
        while client.stats().enqueued - requests < 6 and time.monotonic() < deadline:  # the rest are samples
            answers = await asyncio.gather(*(http.get("/slow") for _ in range(20)), http.get("/blocking"))
            assert all(a.status_code == 200 for a in answers)
            requests += len(answers)
        assert client.flush(10)
    client.shutdown()

    deadline = time.monotonic() + 60
    rows: list = []
    while time.monotonic() < deadline and len(rows) < 5:
        with connect(clickhouse_url) as ch:
            rows = ch.query(
                "SELECT host, pid, cpu_percent, rss_bytes, open_fds, threads, loop_lag_ms, in_flight, "
                "user_id, anonymous_id FROM events FINAL "
                "WHERE event_type = 'resource_sample' AND service = {s:String}",
                parameters={"s": service},
            ).result_rows
        time.sleep(0.2)

    me = psutil.Process(os.getpid())
    assert len(rows) >= 5
    assert {(r[0], r[1], r[8], r[9]) for r in rows} == {
        (socket.gethostname(), os.getpid(), None, f"process:{service}@{socket.gethostname()}")
    }
    assert all(0 < r[3] <= me.memory_info().rss * 2 and r[4] > 0 and r[5] >= 1 for r in rows)
    assert max(r[2] for r in rows) > 0  # the process was busy serving
    assert max(r[7] for r in rows) > 0  # samples taken while requests awaited
    assert max(r[6] for r in rows) > 0  # blocking handlers made the loop late
