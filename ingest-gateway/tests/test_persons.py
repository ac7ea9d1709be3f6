"""The person resolver of person-hashed experiments: a warehouse it cannot read is an error, never a guess."""

import asyncio

import pytest
from pravis_gateway.clickhouse import connect
from pravis_gateway.experiments.persons import PersonResolver, PersonUnavailable

from tests.support import services


def test_an_unreachable_warehouse_is_person_unavailable_and_nothing_is_cached() -> None:
    url = f"http://127.0.0.1:{services.free_port()}/pravis"
    resolver = PersonResolver(lambda: connect(url), ttl_s=60, max_ids=10)

    for _ in range(2):  # the failure is not remembered as "its own person"
        with pytest.raises(PersonUnavailable):
            asyncio.run(resolver.person_of("shop", "anon-1"))
