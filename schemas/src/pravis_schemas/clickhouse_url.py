"""PRAVIS_CLICKHOUSE_URL, read the same way by every worker: `http(s)://[user[:password]@]host[:port][/database]`.

User and password are percent-decoded (a password with `@`, `:` or `/` is written %40, %3A, %2F); the path
is the database. `client_options` gives the keyword arguments of `clickhouse_connect.get_client`, so the
gateway, the rollup workers, the dashboards and `pravis sql` authenticate alike; `redacted` is the URL to log.
"""

from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"http": 8123, "https": 8443}


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
