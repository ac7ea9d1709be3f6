"""Request dependencies, as Annotated aliases so route signatures read like prose."""

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request

from pravis_gateway.keys import ApiKey, KeyKind
from pravis_gateway.state import Gateway


def get_gateway(request: Request) -> Gateway:
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def presented_key(
    x_api_key: Annotated[str | None, Header(description="Project write key")] = None,
    api_key: Annotated[
        str | None, Query(description="Write key for sendBeacon, which cannot set headers")
    ] = None,
) -> str | None:
    return x_api_key or api_key


PresentedKey = Annotated[str | None, Depends(presented_key)]


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


def write_key(gateway: GatewayDep, key: PresentedKey) -> ApiKey:
    return verify_write_key(gateway, key)


WriteKey = Annotated[ApiKey, Depends(write_key)]


def secret_key(
    gateway: GatewayDep,
    x_api_key: Annotated[str | None, Header(description="Project secret key (pvs_...)")] = None,
) -> ApiKey:
    """A project's secret server key: only the boutique's servers hold one, never a browser."""
    return verify_key(gateway, x_api_key, "secret")


SecretKey = Annotated[ApiKey, Depends(secret_key)]
