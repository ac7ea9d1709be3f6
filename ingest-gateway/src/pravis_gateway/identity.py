"""Rule 4 of docs/identity.md (pure, no I/O): an `alias` may not merge two identified users who each have a
history of their own, unless forced with the secret key.

The route asks the warehouse about the ids of a batch's aliases (`pravis_gateway.clickhouse.identity_facts`)
before the batch is processed, and `process_batch` refuses the aliases this module names. The history is what
the warehouse holds when the alias arrives: events still on their way through Kafka do not count yet.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALIAS_MERGES_IDENTIFIED_USERS = "alias_merges_identified_users"

AliasPair = tuple[str, str]
"""(user_id, previous_id) of an alias."""


@dataclass(frozen=True)
class IdentityFacts:
    """What the warehouse knows of some ids: which have a history as a user, and the person of merged ones."""

    with_history: frozenset[str] = frozenset()
    person: Mapping[str, str] = field(default_factory=dict)

    def person_of(self, user_id: str) -> str:
        return self.person.get(user_id, user_id)


def aliases_in(raw_events: Iterable[Any]) -> set[AliasPair]:
    """The (user_id, previous_id) pairs of the alias events among raw posted events; only these need the
    warehouse. Malformed ones are left to validation, which refuses them with its own reason."""
    return {
        (raw["user_id"], raw["previous_id"])
        for raw in raw_events
        if isinstance(raw, dict)
        and raw.get("event_type") == "alias"
        and isinstance(raw.get("user_id"), str)
        and isinstance(raw.get("previous_id"), str)
    }


def ids_of(pairs: Iterable[AliasPair]) -> list[str]:
    return sorted({id_ for pair in pairs for id_ in pair})


def refusals(pairs: Iterable[AliasPair], facts: IdentityFacts) -> dict[AliasPair, str]:
    """The message refusing each alias that would merge two users who each have a history and are not already
    one person."""
    return {
        (user_id, previous_id): (
            f"{ALIAS_MERGES_IDENTIFIED_USERS}: {previous_id!r} and {user_id!r} are both identified users "
            "with events of their own; merging them needs the secret key and force "
            "(POST /api/v1/identity/alias)"
        )
        for user_id, previous_id in pairs
        if {user_id, previous_id} <= facts.with_history
        and facts.person_of(user_id) != facts.person_of(previous_id)
    }
