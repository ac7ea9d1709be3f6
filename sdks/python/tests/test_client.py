"""The thread client: batching triggers, bounded queue, flush/shutdown, retries, thread safety."""

import threading
import time

import pytest
from pravis_sdk import Client, DeliveryError, RetryPolicy
from pravis_sdk.policy import MAX_EVENT_BYTES

FAST_RETRY = RetryPolicy(max_retries=3, base_s=0.01, cap_s=0.05)


def make_client(fake_gateway, **options) -> Client:
    options = {"flush_interval": 60.0, "retry_policy": FAST_RETRY, **options}
    return Client("pvw_test", "http://gateway.test", transport=fake_gateway.transport(), **options)


def wait_for(condition, timeout_s: float = 30.0) -> None:
    """Poll `condition`; the deadline only bounds a hang, it is no claim about speed."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def record_sleeps(client) -> list[float]:
    """The waits the client asks for, recorded: retries are checked against them, not against a stopwatch."""
    asked: list[float] = []
    sleep = client._sleep

    def recording(seconds: float) -> bool:
        asked.append(seconds)
        return sleep(seconds)

    client._sleep = recording
    return asked


def test_sends_a_batch_when_flush_at_events_are_queued(fake_gateway) -> None:
    with make_client(fake_gateway, flush_at=3) as client:
        ids = [client.track("button_click", button_id=f"b{i}") for i in range(2)]
        time.sleep(0.2)
        assert fake_gateway.requests == []
        ids.append(client.track("button_click", button_id="b2"))
        wait_for(lambda: len(fake_gateway.events) == 3)

    assert [e["event_id"] for e in fake_gateway.events] == ids
    assert fake_gateway.headers[0]["x-api-key"] == "pvw_test"
    assert fake_gateway.requests[0]["sent_at"].endswith("+00:00")


def test_sends_what_is_queued_when_the_interval_passes(fake_gateway) -> None:
    with make_client(fake_gateway, flush_at=100, flush_interval=0.3) as client:
        client.track("page_view", page_url="https://boutique.example/")
        wait_for(lambda: len(fake_gateway.events) == 1)
        assert client.stats().accepted == 1 and len(fake_gateway.requests) == 1


def test_flush_blocks_until_the_gateway_answered(fake_gateway) -> None:
    with make_client(fake_gateway, flush_at=100) as client:
        for i in range(25):
            client.track("feature_use", feature_name=f"f{i}")

        assert client.flush(timeout=5)
        assert len(fake_gateway.events) == 25
        assert client.stats().accepted == 25 and client.stats().queued == 0


def test_a_backlog_is_sent_in_batches_of_at_most_100(fake_gateway) -> None:
    with make_client(fake_gateway, flush_at=1000, max_queue_size=1000) as client:
        for _ in range(250):
            client.track("custom_ping")
        client.flush(5)

    assert [len(batch["events"]) for batch in fake_gateway.requests] == [100, 100, 50]


def test_full_queue_drops_new_events_counts_and_reports_them(fake_gateway, caplog) -> None:
    errors: list[DeliveryError] = []
    with make_client(fake_gateway, flush_at=100, max_queue_size=5, on_error=errors.append) as client:
        ids = [client.track("custom_ping", {"n": i}) for i in range(8)]

        assert ids[5:] == [None, None, None]
        stats = client.stats()
        assert stats.dropped == 3 and stats.dropped_by_reason == {"queue_full": 3}
        assert [e.events[0]["properties"]["n"] for e in errors] == [5, 6, 7]
        assert {e.kind for e in errors} == {"dropped"}
        assert "queue full" in caplog.text
        client.flush(5)
    assert len(fake_gateway.events) == 5


def test_oversize_event_is_dropped_before_queueing(fake_gateway) -> None:
    errors: list[DeliveryError] = []
    with make_client(fake_gateway, on_error=errors.append) as client:
        assert client.track("custom_blob", {"blob": "x" * MAX_EVENT_BYTES}) is None
        assert client.stats().dropped_by_reason == {"too_large": 1}
    assert "limit is 32768" in errors[0].reason


def test_503_with_retry_after_is_retried_after_the_wait_and_arrives_once(fake_gateway) -> None:
    fake_gateway.script = [(503, {"Retry-After": "0.3"}), (429, {"Retry-After": "0.2"})]
    with make_client(fake_gateway, flush_at=1) as client:
        slept = record_sleeps(client)
        event_id = client.track("page_view", page_url="https://boutique.example/")
        assert client.flush(30)

    # Never sooner than Retry-After, plus at most the policy's 10 % jitter.
    assert len(slept) == 2
    for asked, waited in zip((0.3, 0.2), slept, strict=True):
        assert asked <= waited <= asked * 1.1

    assert len(fake_gateway.requests) == 3
    assert {e["event_id"] for batch in fake_gateway.requests for e in batch["events"]} == {event_id}
    assert client.stats().accepted == 1


def test_401_is_not_retried_and_is_reported(fake_gateway) -> None:
    fake_gateway.script = [(401, {})]
    errors: list[DeliveryError] = []
    with make_client(fake_gateway, on_error=errors.append) as client:
        client.track("page_view", page_url="https://boutique.example/")
        client.flush(5)
        assert client.stats().dropped_by_reason == {"http_401": 1}

    assert len(fake_gateway.requests) == 1
    assert errors[0].kind == "dropped" and "HTTP 401" in errors[0].reason


def test_shutdown_sends_what_is_left(fake_gateway) -> None:
    client = make_client(fake_gateway, flush_at=100)
    for _ in range(7):
        client.track("custom_ping")

    client.shutdown()

    assert len(fake_gateway.events) == 7


def test_shutdown_gives_up_on_a_gateway_that_stays_down_and_reports_it(fake_gateway) -> None:
    fake_gateway.script = [(503, {"Retry-After": "3600"})] * 5
    client = make_client(fake_gateway, flush_at=100, shutdown_timeout=0.5)
    client.track("custom_ping")

    # Retry-After is an hour: that shutdown returns at all (pytest's timeout bounds a hang) is the claim.
    client.shutdown()

    assert len(fake_gateway.requests) == 1
    assert client.stats().dropped_by_reason == {"shutdown": 1}


def test_many_threads_tracking_at_once_lose_and_duplicate_nothing(fake_gateway) -> None:
    with make_client(fake_gateway, flush_at=10, max_queue_size=10_000) as client:

        def worker(n: int) -> list[str]:
            return [client.track("custom_ping", {"thread": n}) for _ in range(200)]

        results: list[list[str]] = []
        threads = [threading.Thread(target=lambda n=n: results.append(worker(n))) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client.flush(10)

    sent = [e["event_id"] for e in fake_gateway.events]
    assert len(sent) == 1600 and set(sent) == {i for ids in results for i in ids}


def test_gzip_bodies_carry_content_encoding(fake_gateway) -> None:
    with make_client(fake_gateway, gzip=True) as client:
        client.track("custom_ping")
        client.flush(5)

    assert fake_gateway.headers[0]["content-encoding"] == "gzip"
    assert len(fake_gateway.events) == 1


def test_default_identity_and_session(fake_gateway) -> None:
    with make_client(fake_gateway, app_version="2.1.0") as client:
        client.track("custom_a")
        client.identify("u-42")
        client.track("custom_b")
        client.track("custom_c", user_id="u-7", session_id="s-7")
        client.flush(5)

    a, login, b, c = fake_gateway.events
    assert "anonymous_id" in a and "user_id" not in a and a["app_version"] == "2.1.0"
    assert login["event_type"] == "identify"
    assert b["user_id"] == "u-42" and "anonymous_id" not in b
    assert a["session_id"] == login["session_id"] == b["session_id"]  # a session spans the login
    assert (c["user_id"], c["session_id"]) == ("u-7", "s-7")


def test_identify_links_the_anonymous_id_so_far_with_traits(fake_gateway) -> None:
    with make_client(fake_gateway) as client:
        anonymous = client.anonymous_id
        event_id = client.identify("u-42", {"plan": "pro"})
        assert client.identify("u-42") is None  # already this user, no traits: nothing new to say
        client.identify("u-42", {"plan": "team"})
        client.flush(5)

    first, again = fake_gateway.events
    assert first["event_id"] == event_id
    assert (first["event_type"], first["user_id"], first["anonymous_id"], first["properties"]) == (
        "identify",
        "u-42",
        anonymous,
        {"plan": "pro"},
    )
    assert (again["anonymous_id"], again["properties"]) == (anonymous, {"plan": "team"})


def test_logout_and_a_second_user_on_the_same_client(fake_gateway) -> None:
    with make_client(fake_gateway) as client:
        anonymous = [client.anonymous_id]
        client.identify("u-42")
        client.track("custom_a")
        assert client.identify(None) is None
        anonymous.append(client.anonymous_id)
        client.track("custom_b")
        client.identify("u-43")
        client.identify("u-44")  # no logout in between: one happens anyway
        anonymous.append(client.anonymous_id)
        client.reset()
        anonymous.append(client.anonymous_id)
        client.track("custom_c")
        client.flush(5)

    assert len(set(anonymous)) == 4
    rows = [(e["event_type"], e.get("user_id"), e.get("anonymous_id")) for e in fake_gateway.events]
    assert rows == [
        ("identify", "u-42", anonymous[0]),
        ("custom_a", "u-42", None),
        ("custom_b", None, anonymous[1]),
        ("identify", "u-43", anonymous[1]),
        ("identify", "u-44", anonymous[2]),
        ("custom_c", None, anonymous[3]),
    ]
    sessions = [e["session_id"] for e in fake_gateway.events]
    assert sessions[0] == sessions[1] != sessions[2] == sessions[3] != sessions[4] != sessions[5]


def test_identify_for_another_visitor_leaves_the_client_identity_alone(fake_gateway) -> None:
    with make_client(fake_gateway) as client:
        own = client.anonymous_id
        client.identify("u-42", anonymous_id="anon-cookie")
        client.track("custom_a")
        with pytest.raises(ValueError):
            client.identify(None, anonymous_id="anon-cookie")
        client.flush(5)

    relayed, later = fake_gateway.events
    assert (relayed["user_id"], relayed["anonymous_id"], "session_id" in relayed) == (
        "u-42",
        "anon-cookie",
        False,
    )
    assert (later.get("user_id"), later["anonymous_id"]) == (None, own)


def test_alias_sends_only_the_two_ids_it_links(fake_gateway) -> None:
    with make_client(fake_gateway) as client:
        client.identify("u-42")
        event_id = client.alias("u-old", "u-42")
        for previous, user in [("u-1", "u-1"), ("", "u-1"), ("u-1", "")]:
            with pytest.raises(ValueError):
                client.alias(previous, user)
        client.flush(5)

    alias = fake_gateway.events[1]
    assert (alias["event_id"], alias["event_type"], alias["user_id"], alias["previous_id"]) == (
        event_id,
        "alias",
        "u-42",
        "u-old",
    )
    assert "anonymous_id" not in alias and "session_id" not in alias
    assert client.user_id == "u-42"


def test_disabled_client_sends_nothing(fake_gateway) -> None:
    with make_client(fake_gateway, disabled=True) as client:
        assert client.track("custom_ping") is None
        client.flush(1)
    assert fake_gateway.requests == []


@pytest.mark.parametrize("bad", [{}, {"marketing": True}])
def test_consent_categories_are_checked(fake_gateway, bad) -> None:
    with make_client(fake_gateway) as client, pytest.raises(ValueError):
        client.set_consent(bad)


def test_consent_says_explicit_only_when_asked(fake_gateway) -> None:
    with make_client(fake_gateway) as client:
        client.set_consent({"analytics": False}, source="banner")
        client.set_consent({"analytics": True}, explicit=True)
        client.flush(5)
    stored, granted = fake_gateway.events
    assert "explicit" not in stored and stored["source"] == "banner"
    assert (granted["consent"], granted["explicit"]) == ({"analytics": True}, True)
