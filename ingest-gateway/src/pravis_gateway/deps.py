"""Request dependencies, as Annotated aliases so route signatures read like prose."""

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request

from pravis_gateway.keys import ApiKey
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


def verify_write_key(gateway: Gateway, key: str | None) -> ApiKey:
    if not key:
        raise HTTPException(401, "missing API key: send the X-API-Key header")
    found = gateway.keys.verify(key, "write")
    if found is None:
        raise HTTPException(401, "unknown or revoked API key")
    return found


def write_key(gateway: GatewayDep, key: PresentedKey) -> ApiKey:
    return verify_write_key(gateway, key)


WriteKey = Annotated[ApiKey, Depends(write_key)]


def secret_key(gateway: GatewayDep, x_api_key: Annotated[str | None, Header()] = None) -> ApiKey:
    """A project's secret server key: only the boutique's servers hold one, never a browser."""
    if not x_api_key:
        raise HTTPException(401, "missing API key: send a secret key in the X-API-Key header")
    found = gateway.keys.verify(x_api_key, "secret")
    if found is None:
        raise HTTPException(401, "unknown or revoked secret key (write keys cannot read or delete user data)")
    return found


SecretKey = Annotated[ApiKey, Depends(secret_key)]
