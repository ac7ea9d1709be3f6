"""Reading the stream tier's live API: answers of the documented shape become the Live page, any other shape
a 502 that says which answer and which fields did not fit (never a KeyError)."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from pravis_dashboards.app import create_app
from pravis_dashboards.live import IncompatibleLiveAnswer, LiveApi
from pravis_dashboards.settings import Settings

from .live_api_bodies import ALERTS_BODY, PROJECTS_BODY, SUMMARY_BODY, TIMESERIES_BODY

DOCUMENTED = {
    "/live/shop/summary": SUMMARY_BODY,
    "/live/shop/timeseries": TIMESERIES_BODY,
    "/live/shop/alerts": ALERTS_BODY,
    "/live/projects": PROJECTS_BODY,
}


class StreamTier(ThreadingHTTPServer):
    """A stand-in live API on loopback answering `bodies[path]` (404 for any other path)."""

    def __init__(self) -> None:
        self.bodies = dict(DOCUMENTED)
        super().__init__(("127.0.0.1", 0), Answer)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Answer(BaseHTTPRequestHandler):
    server: StreamTier

    def do_GET(self) -> None:
        body = self.server.bodies.get(self.path.split("?")[0])
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stream() -> Iterator[StreamTier]:
    server = StreamTier()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def live_page(stream: StreamTier, path: str = "/api/live/shop") -> httpx.Response:
    app = create_app(Settings(stream_url=stream.url, dashboards_auth=None))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dashboards"
    ) as client:
        return await client.get(path)


async def test_documented_answers_make_the_live_page(stream: StreamTier) -> None:
    body = (await live_page(stream)).json()
    assert (body["ok"], body["active_users"], body["events"], body["open_alerts"]) == (True, 4, 50, 1)
    assert body["minutes"] == ["09:59", "10:00"]
    assert (await live_page(stream, "/api/live/projects")).json() == {
        "ok": True,
        "projects": ["default", "shop"],
    }


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        pytest.param(
            "/live/shop/summary",
            SUMMARY_BODY.replace(b'"last_5m":4,', b""),
            "/live/shop/summary is not a LiveSummary: active_users.last_5m: Field required",
            id="missing-field",
        ),
        pytest.param(
            "/live/shop/timeseries",
            TIMESERIES_BODY.replace(b'"events":20', b'"events":"many"'),
            "/live/shop/timeseries is not a LiveTimeseries: minutes.0.events: Input should be a valid int",
            id="wrong-type",
        ),
        pytest.param(
            "/live/shop/alerts",
            ALERTS_BODY.replace(b'"severity":"critical"', b'"severity":"dire"'),
            "/live/shop/alerts is not a LiveAlerts: firing.0.severity: Input should be",
            id="unknown-severity",
        ),
        pytest.param(
            "/live/shop/summary",
            SUMMARY_BODY.replace(b'"project_id":"shop"', b'"project":"shop"'),
            "/live/shop/summary is not a LiveSummary: project_id: Field required; project: Extra inputs",
            id="renamed-key",
        ),
        pytest.param(
            "/live/shop/summary",
            b"<html>gateway timeout</html>",
            "/live/shop/summary is not a LiveSummary: body: ",
            id="not-json",
        ),
    ],
)
async def test_an_incompatible_answer_is_a_clear_error(
    stream: StreamTier, path: str, body: bytes, named: str
) -> None:
    stream.bodies[path] = body
    answer = await live_page(stream)
    assert answer.status_code == 502
    assert answer.json()["ok"] is False
    assert answer.json()["error"].startswith(f"incompatible live API answer: {named}")


async def test_an_error_status_is_reported_as_unavailable(stream: StreamTier) -> None:
    del stream.bodies["/live/shop/alerts"]
    answer = await live_page(stream)
    assert answer.status_code == 502
    assert answer.json()["error"].startswith("stream tier unavailable: Client error '404 Not Found'")


async def test_projects_of_another_shape_are_an_error(stream: StreamTier) -> None:
    stream.bodies["/live/projects"] = b'{"projects":"shop"}'
    api = LiveApi(stream.url, 3.0)
    with pytest.raises(IncompatibleLiveAnswer, match=r"/live/projects is not a LiveProjects: projects: "):
        await api.projects()
    await api.aclose()
