"""The person an id belongs to, for experiments that hash on the person (`hash_on: "person"`).

Looked up in the warehouse's identity graph (`person_overrides`) and kept in a TTL cache bounded in size, so a
busy feature endpoint asks ClickHouse about each id at most once per `identity_cache_ttl_s`. An id the graph
does not know is its own person, and that answer is cached too: a visitor who logs in is hashed on their
person at the latest one TTL after the loader stored the linking event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cachetools import TTLCache
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from pravis_gateway import clickhouse


class PersonUnavailable(Exception):
    """The identity graph could not be read; the caller must not guess (a guess logs a wrong exposure)."""


class PersonResolver:
    def __init__(self, warehouse: Callable[[], Client], ttl_s: float, max_ids: int) -> None:
        self._warehouse = warehouse
        self._cache: TTLCache[tuple[str, str], str] = TTLCache(maxsize=max_ids, ttl=ttl_s)

    async def person_of(self, project_id: str, distinct_id: str) -> str:
        key = (project_id, distinct_id)
        if (person := self._cache.get(key)) is not None:
            return person
        try:
            person = await asyncio.to_thread(self._lookup, project_id, distinct_id)
        except ClickHouseError as exc:
            raise PersonUnavailable(str(exc)) from exc
        self._cache[key] = person
        return person

    def _lookup(self, project_id: str, distinct_id: str) -> str:
        return clickhouse.person_of(self._warehouse(), project_id, distinct_id)
