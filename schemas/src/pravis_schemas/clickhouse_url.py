"""PRAVIS_CLICKHOUSE_URL, read the same way by every worker: `http(s)://[user[:password]@]host[:port][/database]`.

User and password are percent-decoded (a password with `@`, `:` or `/` is written %40, %3A, %2F); the path
is the database. The gateway, the rollup workers, the dashboards and `pravis sql` all make their client with
`clickhouse_connect_from_url`, so they authenticate alike; `client_options` is the `get_client` keyword
arguments it passes; `redacted` is the URL to log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

DEFAULT_PORTS = {"http": 8123, "https": 8443}


def clickhouse_connect_from_url(url: str, *, database: str | None = None, **options: Any) -> Client:
    """A clickhouse-connect client for `url`; `database` overrides the URL's, `options` go to `get_client`
    (e.g. `autogenerate_session_id=False` for a client shared by threads)."""
    # Imported here, not at the top: clickhouse-connect (compiled, with lz4, zstd and urllib3) is a dependency
    # of the workers that query ClickHouse, not of `schemas`, which every client SDK install pulls in too.
    import clickhouse_connect

    return clickhouse_connect.get_client(**client_options(url, database=database), **options)


def client_options(url: str, *, database: str | None = None) -> dict[str, Any]:
    """`clickhouse_connect.get_client` keyword arguments for `url`; `database` overrides the URL's."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"ClickHouse URL must start with http:// or https://, not {parts.scheme or url!r}")
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or DEFAULT_PORTS[parts.scheme],
        "username": unquote(parts.username) if parts.username else "default",
        "password": unquote(parts.password) if parts.password else "",
        "database": database or database_of(url),
        "secure": parts.scheme == "https",
    }


def database_of(url: str) -> str:
    return unquote(urlsplit(url).path.strip("/")) or "default"


def redacted(url: str) -> str:
    """`url` with its password replaced by `***`, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{netloc}").geturl()
