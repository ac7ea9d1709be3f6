"""Request dependencies, as Annotated aliases so route signatures read like prose."""

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from pravis_gateway.kafka import EventPublisher
from pravis_gateway.keys import ApiKey, KeyStore
from pravis_gateway.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_publisher(request: Request) -> EventPublisher:
    return request.app.state.publisher


def write_key(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> ApiKey:
    store: KeyStore = request.app.state.keys
    if not x_api_key:
        raise HTTPException(401, "missing X-API-Key header")
    key = store.verify(x_api_key, "write")
    if key is None:
        raise HTTPException(401, "unknown or revoked API key")
    return key


SettingsDep = Annotated[Settings, Depends(get_settings)]
Publisher = Annotated[EventPublisher, Depends(get_publisher)]
WriteKey = Annotated[ApiKey, Depends(write_key)]
