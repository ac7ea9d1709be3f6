"""ASGI and WSGI middleware emit `api_request` events; `ai_call` times AI requests."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Response
from flask import Flask
from pravis_sdk import Client, PravisMiddleware, PravisWSGIMiddleware, current_ai_call, instrument_flask
from pravis_sdk.asgi import UNMATCHED_ROUTE, cache_hit_from
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route


@pytest.fixture
def client(fake_gateway):
    with Client("pvw_test", "http://gateway.test", transport=fake_gateway.transport(), flush_at=1000) as c:
        yield c


def sent(client: Client, fake_gateway) -> list[dict]:
    assert client.flush(5)
    return fake_gateway.events


def fastapi_app(client: Client) -> FastAPI:
    app = FastAPI()
    app.add_middleware(PravisMiddleware, client=client, user_id=lambda scope: "u-1", exclude=["/healthz"])

    @app.get("/products/{product_id}")
    async def product(product_id: int, response: Response) -> dict:
        response.headers["X-Cache"] = "HIT" if product_id == 1 else "MISS"
        return {"id": product_id}

    @app.post("/orders")
    async def order() -> dict:
        raise HTTPException(409, "sold out")

    @app.get("/boom")
    async def boom() -> dict:
        raise KeyError("no")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {}

    sub = FastAPI()

    @sub.get("/items/{item_id}")
    async def item(item_id: str) -> dict:
        return {}

    app.mount("/v2", sub)
    return app


async def test_asgi_middleware_reports_route_templates_status_cache_and_errors(client, fake_gateway) -> None:
    app = fastapi_app(client)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.get("/products/1")).status_code == 200
        await http.get("/products/2")
        await http.post("/orders")
        assert (await http.get("/boom")).status_code == 500
        await http.get("/nowhere/42")
        await http.get("/v2/items/abc")
        await http.get("/healthz")

    events = await asyncio.to_thread(sent, client, fake_gateway)
    rows = [
        (e["endpoint"], e["method"], e["status"], e.get("cache_hit"), e.get("error_type")) for e in events
    ]
    assert rows == [
        ("/products/{product_id}", "GET", 200, True, None),
        ("/products/{product_id}", "GET", 200, False, None),
        ("/orders", "POST", 409, None, "http_409"),
        ("/boom", "GET", 500, None, "KeyError"),
        (UNMATCHED_ROUTE, "GET", 404, None, "http_404"),
        ("/v2/items/{item_id}", "GET", 200, None, None),
    ]
    assert all(e["event_type"] == "api_request" and e["user_id"] == "u-1" for e in events)
    assert all(0 <= e["duration_ms"] < 5000 for e in events)


async def test_asgi_middleware_on_plain_starlette(client, fake_gateway) -> None:
    async def hello(request):
        return PlainTextResponse("hi", headers={"X-Cache": "hit from edge"})

    app = Starlette(routes=[Mount("/api", routes=[Route("/hello/{name}", hello)])])
    app.add_middleware(PravisMiddleware, client=client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
        await http.get("/api/hello/ann")

    (event,) = await asyncio.to_thread(sent, client, fake_gateway)
    assert (event["endpoint"], event["cache_hit"]) == ("/api/hello/{name}", True)


def test_flask_app_reports_url_rules_and_exception_types(client, fake_gateway) -> None:
    app = Flask(__name__)

    @app.get("/products/<int:product_id>")
    def product(product_id: int):
        return {"id": product_id}, 200, {"X-Cache": "MISS"}

    @app.get("/fail")
    def fail():
        raise ValueError("bad")

    instrument_flask(app, client, cache_header="X-Cache")
    http = app.test_client()
    for path in ("/products/3", "/fail", "/missing"):
        http.get(path).close()  # a WSGI server closes every response; the event is emitted then

    rows = [
        (e["endpoint"], e["status"], e.get("cache_hit"), e.get("error_type"))
        for e in sent(client, fake_gateway)
    ]
    assert rows == [
        ("/products/<int:product_id>", 200, False, None),
        ("/fail", 500, None, "ValueError"),
        (UNMATCHED_ROUTE, 404, None, "http_404"),
    ]


def test_plain_wsgi_app_with_a_route_function(client, fake_gateway) -> None:
    def app(environ, start_response):
        start_response("201 Created", [("X-Cache", "HIT")])
        return [b"made"]

    wrapped = PravisWSGIMiddleware(app, client, route=lambda environ: "/things")
    captured = {}
    environ = {"REQUEST_METHOD": "put", "PATH_INFO": "/things"}
    body = wrapped(environ, lambda status, headers, exc_info=None: captured.setdefault("status", status))
    assert b"".join(body) == b"made"
    body.close()

    (event,) = sent(client, fake_gateway)
    assert (event["endpoint"], event["method"], event["status"], event["cache_hit"]) == (
        "/things",
        "PUT",
        201,
        True,
    )


@pytest.mark.parametrize(
    ("value", "hit"), [(None, None), ("HIT", True), ("hit from cdn", True), ("MISS", False), ("", False)]
)
def test_cache_header_values(value, hit) -> None:
    assert cache_hit_from(value) is hit


def test_ai_call_context_manager_times_and_reports_success(client, fake_gateway) -> None:
    with client.ai_call(
        "voice_request", model="whisper-small", intent="find red shoes", user_id="u-9"
    ) as call:
        call.set(request_size_bytes=1200, response_size_bytes=300)
    client.feedback(5, interaction_id=call.interaction_id, user_id="u-9", comment="great")

    voice, feedback = sent(client, fake_gateway)
    assert voice["event_type"] == "voice_request" and voice["success"] is True
    assert voice["model_used"] == "whisper-small" and voice["intent"] == "find red shoes"
    assert (voice["request_size_bytes"], voice["response_size_bytes"]) == (1200, 300)
    assert voice["request_duration_ms"] >= 0 and "error_type" not in voice
    assert feedback["interaction_id"] == voice["interaction_id"] == call.interaction_id
    assert feedback["rating"] == 5


def test_ai_call_reports_the_exception_and_reraises(client, fake_gateway) -> None:
    with pytest.raises(TimeoutError), client.ai_call("transcription", model="whisper-small", user_id="u-9"):
        raise TimeoutError

    (event,) = sent(client, fake_gateway)
    assert (event["success"], event["error_type"]) == (False, "TimeoutError")


async def test_ai_call_decorates_sync_and_async_functions(client, fake_gateway) -> None:
    @client.ai_call("tts", model="piper", user_id="u-9")
    def speak(text: str) -> bytes:
        audio = text.encode() * 10
        current_ai_call().set(request_size_bytes=len(text), response_size_bytes=len(audio))
        return audio

    @client.ai_call("conversation", model="llm", user_id="u-9")
    async def converse() -> str:
        current_ai_call().set(completed=True, turn_count=3)
        current_ai_call().fail("refused")
        return "no"

    assert speak("hello") == b"hello" * 10
    speak("hi")
    assert await converse() == "no"

    tts1, tts2, conv = await asyncio.to_thread(sent, client, fake_gateway)
    assert (tts1["request_size_bytes"], tts1["response_size_bytes"]) == (5, 50)
    assert tts1["interaction_id"] != tts2["interaction_id"]
    assert (conv["completed"], conv["turn_count"], conv["success"], conv["error_type"]) == (
        True,
        3,
        False,
        "refused",
    )


def test_ai_call_refuses_non_ai_event_types(client) -> None:
    with pytest.raises(ValueError):
        client.ai_call("page_view")


def test_wsgi_middleware_samples_the_process_resources_in_a_thread(client, fake_gateway):
    import os
    import socket
    import time

    import psutil

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wrapped = PravisWSGIMiddleware(app, client, service="flask-shop", resource_interval_s=0.05)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "pravis.route": "/"}
    body = wrapped(environ, lambda status, headers, exc_info=None: None)
    b"".join(body)
    body.close()
    deadline = time.monotonic() + 10
    while client.stats().enqueued < 4 and time.monotonic() < deadline:  # the request and three samples
        time.sleep(0.01)

    events = sent(client, fake_gateway)
    samples = [e for e in events if e["event_type"] == "resource_sample"]
    assert len(samples) >= 3 and "api_request" in {e["event_type"] for e in events}
    for sample in samples:
        assert (sample["host"], sample["service"], sample["pid"]) == (
            socket.gethostname(),
            "flask-shop",
            os.getpid(),
        )
        assert (
            sample["anonymous_id"] == f"process:flask-shop@{socket.gethostname()}" and "user_id" not in sample
        )
        assert "loop_lag_ms" not in sample  # no event loop under WSGI
        assert 0 < sample["rss_bytes"] <= psutil.Process().memory_info().rss * 2
        assert sample["threads"] >= 2 and sample["open_fds"] > 0  # this thread and the sampler's
    assert samples[-1]["in_flight"] == 0  # the request was closed before the third sample


def test_resources_can_be_turned_off(client, fake_gateway):
    wrapped = PravisWSGIMiddleware(lambda e, s: [s("200 OK", []) or b""], client, resources=False)
    body = wrapped({"REQUEST_METHOD": "GET"}, lambda status, headers, exc_info=None: None)
    b"".join(body)
    body.close()

    assert wrapped.sampler is None
    assert [e["event_type"] for e in sent(client, fake_gateway)] == ["api_request"]
