"""The answers the application makes around the routes, in the project's one error shape: 404 and 405 from
routing (405 with every method the path has), and a 500 for an unhandled exception, counted by route.

The app is driven in-process over ASGI; none of these answers reaches Kafka or the warehouse, so no lifespan
(and no broker) is needed.
"""

from collections.abc import AsyncIterator

import httpx
import pytest
from pravis_gateway import metrics
from pravis_gateway.app import create_app
from pravis_gateway.settings import Settings

BOOM = "/test-only/boom"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings())

    @app.get(BOOM)
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


async def test_an_unhandled_exception_is_a_counted_500_in_the_error_shape(client: httpx.AsyncClient) -> None:
    before = metrics.SERVER_ERRORS.labels(BOOM)._value.get()

    response = await client.get(BOOM)

    assert response.status_code == 500
    assert response.json() == {"status": "error", "error": "internal error; it has been logged"}
    assert metrics.SERVER_ERRORS.labels(BOOM)._value.get() == before + 1


async def test_405_names_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    before = metrics.REFUSALS.labels("method_not_allowed")._value.get()

    response = await client.request("PATCH", "/api/v1/consent/u-1")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PUT"
    assert response.json() == {"status": "error", "error": "Method Not Allowed"}
    assert metrics.REFUSALS.labels("method_not_allowed")._value.get() == before + 1


async def test_404_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"status": "error", "error": "Not Found"}
