"""The person of an id for person-hashed experiments: rule 3 of docs/identity.md on the warehouse's facts, and
a warehouse that cannot be read is an error, never a guess."""

import asyncio

import pytest
from pravis_gateway.clickhouse import connect, person_facts
from pravis_gateway.experiments.persons import PersonFacts, PersonResolver, PersonUnavailable, person_of_facts

from tests.support import services


def test_an_unreachable_warehouse_is_person_unavailable_and_nothing_is_cached() -> None:
    url = f"http://127.0.0.1:{services.free_port()}/pravis"
    resolver = PersonResolver(lambda p, i: person_facts(connect(url), p, i), ttl_s=60, max_ids=10)

    for _ in range(2):  # the failure is not remembered as "its own person"
        with pytest.raises(PersonUnavailable):
            asyncio.run(resolver.person_of("shop", "anon-1"))


@pytest.mark.parametrize(
    ("distinct_id", "facts", "person"),
    [
        ("anon-new", PersonFacts(False, "", {}), "anon-new"),
        ("anon-X", PersonFacts(False, "u-9", {}), "u-9"),
        ("anon-X", PersonFacts(False, "u-9", {"u-9": "u-11"}), "u-11"),
        ("u-9", PersonFacts(True, "", {}), "u-9"),
        ("u-9", PersonFacts(True, "", {"u-9": "u-11"}), "u-11"),
        # A user id once named as an alias's previous id is linked, but being identified it is its own user.
        ("u-9", PersonFacts(True, "u-12", {"u-12": "u-10"}), "u-9"),
        # A user who left its component (its alias was deleted) has a row naming itself.
        ("u-9", PersonFacts(True, "", {"u-9": "u-9"}), "u-9"),
    ],
)
def test_rule_3(distinct_id: str, facts: PersonFacts, person: str) -> None:
    assert person_of_facts(distinct_id, facts) == person
