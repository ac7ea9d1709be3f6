"""Global Privacy Control: a request carrying `Sec-GPC: 1` opts its users out of the categories that
`PRAVIS_GPC_OPT_OUT_CATEGORIES` names (default `personalization`: what CCPA's "do not sell or share" covers
here).

The opt-out is an ordinary consent change (a `consent_change` event and a ConsentRecord with source "gpc"),
written once per subject while its state still allows one of those categories, not once per request. The
signal only ever withdraws: its absence or `Sec-GPC: 0` grants nothing. Pure: no I/O, clock passed in.
"""

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pravis_schemas import ConsentCategory

from pravis_gateway.consent import ConsentBook

GPC_SOURCE = "gpc"


def signalled(headers: Mapping[str, str]) -> bool:
    """Whether the request carries the GPC signal; the spec's only valid value is "1"."""
    return headers.get("sec-gpc", "").strip() == "1"


def subjects_of(raw_events: Iterable[Any]) -> list[tuple[str | None, str | None]]:
    """Distinct (user_id, anonymous_id) pairs a batch names; events that are not objects name none."""
    seen: dict[tuple[str | None, str | None], None] = {}
    for raw in raw_events:
        if not isinstance(raw, dict):
            continue
        user_id, anonymous_id = raw.get("user_id"), raw.get("anonymous_id")
        pair = (
            user_id if isinstance(user_id, str) and user_id else None,
            anonymous_id if isinstance(anonymous_id, str) and anonymous_id else None,
        )
        if pair != (None, None):
            seen[pair] = None
    return list(seen)


def opt_out_events(
    book: ConsentBook,
    project_id: str,
    subjects: Iterable[tuple[str | None, str | None]],
    categories: Iterable[ConsentCategory],
    now: datetime,
) -> list[dict[str, Any]]:
    """The `consent_change` events withdrawing `categories` from every subject that still has one of them."""
    categories = list(categories)
    events = []
    withdrawn: set[str] = set()
    for user_id, anonymous_id in subjects:
        # The change is recorded under the user_id when there is one, as every consent change is.
        subject = user_id or anonymous_id
        if subject in withdrawn or not any(
            book.allows(project_id, user_id, anonymous_id, c) for c in categories
        ):
            continue
        withdrawn.add(subject)
        identity = {"user_id": user_id} if user_id else {"anonymous_id": anonymous_id}
        events.append(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "consent_change",
                "timestamp": now.isoformat(),
                **identity,
                "consent": {category.value: False for category in categories},
                "source": GPC_SOURCE,
            }
        )
    return events
