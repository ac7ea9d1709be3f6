"""The dashboards' only ClickHouse access: run a panel's parameterized SQL, return columns and rows."""

from __future__ import annotations

import threading
from typing import Any

from clickhouse_connect.driver.client import Client
from pravis_schemas.clickhouse_url import clickhouse_connect_from_url


class Warehouse:
    """One clickhouse-connect client per thread (a client must not run two queries at once)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    def client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = clickhouse_connect_from_url(self.url, autogenerate_session_id=False)
            self._local.client = client
        return client

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        result = self.client().query(sql, parameters=parameters or {})
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:
            return False


class ViewQueries:
    """The queries of one request: the same SQL with the same parameters runs once and its rows are shared.
    The product page's funnel steps, its costliest query, feed its steps and time panels and the worst-step
    lookup (funnel_panels). It lives for one request, so what it keeps is bounded by the rows that request
    returns anyway; a failed query is not kept."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse
        self._results: dict[str, tuple[list[str], list[tuple]]] = {}

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        key = repr((sql, sorted((parameters or {}).items())))
        if key not in self._results:
            self._results[key] = self._warehouse.query(sql, parameters)
        return self._results[key]
