"""The person an id belongs to, for experiments that hash on the person (`hash_on: "person"`).

Rule 3 of docs/identity.md applied to the facts the warehouse holds about one id (`person_of_facts`, pure),
read by primary key from the identity tables (`pravis_gateway.clickhouse.person_facts`) and kept in a TTL
cache bounded in size, so a busy feature endpoint asks ClickHouse about each id at most once per
`person_cache_ttl_s`. An id the graph does not know is its own person, and that answer is cached too: a
visitor who logs in is hashed on their person at the latest one TTL after the loader stored the linking
event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import NamedTuple

from cachetools import TTLCache
from clickhouse_connect.driver.exceptions import ClickHouseError


class PersonFacts(NamedTuple):
    """What the identity tables say about one id."""

    identified: bool
    """It appeared as a user_id (`identity_users`)."""
    owner: str
    """The user it belongs to by rule 1 (`identity_links`), '' when it is linked to none."""
    merged: Mapping[str, str]
    """The person of the id and of its owner where an alias merged them (`identity_merges`)."""


def person_of_facts(distinct_id: str, facts: PersonFacts) -> str:
    """Rule 3: an identified id is its component's person (itself unless merged); any other id the person of
    the user it belongs to, else itself."""
    user = distinct_id if facts.identified or not facts.owner else facts.owner
    return facts.merged.get(user, user)


class PersonUnavailable(Exception):
    """The identity graph could not be read; the caller must not guess (a guess logs a wrong exposure)."""


class PersonResolver:
    def __init__(self, facts: Callable[[str, str], PersonFacts], ttl_s: float, max_ids: int) -> None:
        """`facts(project_id, distinct_id)` reads the warehouse (in a worker thread)."""
        self._facts = facts
        self._cache: TTLCache[tuple[str, str], str] = TTLCache(maxsize=max_ids, ttl=ttl_s)

    async def person_of(self, project_id: str, distinct_id: str) -> str:
        key = (project_id, distinct_id)
        if (person := self._cache.get(key)) is not None:
            return person
        try:
            facts = await asyncio.to_thread(self._facts, project_id, distinct_id)
        except ClickHouseError as exc:
            raise PersonUnavailable(str(exc)) from exc
        person = self._cache[key] = person_of_facts(distinct_id, facts)
        return person
