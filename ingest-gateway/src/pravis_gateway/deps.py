"""Request dependencies, as Annotated aliases so route signatures read like prose.

Every dependency is `async def`: FastAPI runs a plain `def` one in a worker thread, and that hand-off cost the
ingest route more than its key check (none of them blocks: the key store reads its file only when it changed).

Keys are declared as OpenAPI security schemes (`WriteKey`, `WriteKeyQuery`, `SecretKey`), so the document says
which key each operation needs and clients and checkers can tell; they are verified here, not by FastAPI, so
every refusal is the project's 401.
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, APIKeyQuery

from pravis_gateway.keys import ApiKey, KeyKind
from pravis_gateway.state import Gateway


def get_gateway(request: Request) -> Gateway:
    return request.app.state.gateway


async def gateway_dependency(request: Request) -> Gateway:
    return get_gateway(request)


GatewayDep = Annotated[Gateway, Depends(gateway_dependency)]


WRITE_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", scheme_name="WriteKey", description="A project's write key", auto_error=False
)
WRITE_KEY_QUERY = APIKeyQuery(
    name="api_key",
    scheme_name="WriteKeyQuery",
    description="The write key for navigator.sendBeacon, which cannot set headers",
    auto_error=False,
)
SECRET_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    scheme_name="SecretKey",
    description="A project's secret key (pvs_...): only the boutique's servers hold one, never a browser",
    auto_error=False,
)


async def presented_key(
    x_api_key: Annotated[str | None, Depends(WRITE_KEY_HEADER)],
    api_key: Annotated[str | None, Depends(WRITE_KEY_QUERY)],
) -> str | None:
    return x_api_key or api_key


PresentedKey = Annotated[str | None, Depends(presented_key)]


def presented_key_of(request: Request) -> str | None:
    """`PresentedKey` read straight from the request, for a route that declares the schemes itself."""
    return request.headers.get(WRITE_KEY_HEADER.model.name) or request.query_params.get(
        WRITE_KEY_QUERY.model.name
    )


def verify_key(gateway: Gateway, key: str | None, kind: KeyKind) -> ApiKey:
    """The active key of `kind`, else 401: write keys (SDKs) send events, secret keys (servers) also read and
    delete user data and manage experiments."""
    if not key:
        raise HTTPException(401, f"missing API key: send a {kind} key in the X-API-Key header")
    # Keys are ASCII tokens; anything else (a lone surrogate from a JSON body) cannot match or be hashed.
    found = gateway.keys.verify(key, kind) if key.isascii() else None
    if found is None:
        raise HTTPException(401, f"unknown or revoked {kind} key")
    return found


def verify_write_key(gateway: Gateway, key: str | None) -> ApiKey:
    return verify_key(gateway, key, "write")


async def write_key(gateway: GatewayDep, key: PresentedKey) -> ApiKey:
    return verify_write_key(gateway, key)


WriteKey = Annotated[ApiKey, Depends(write_key)]


async def secret_key(
    gateway: GatewayDep, x_api_key: Annotated[str | None, Depends(SECRET_KEY_HEADER)]
) -> ApiKey:
    """A project's secret server key: only the boutique's servers hold one, never a browser."""
    return verify_key(gateway, x_api_key, "secret")


SecretKey = Annotated[ApiKey, Depends(secret_key)]
