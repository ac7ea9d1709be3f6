"""Consent state of every user of every project, as rebuilt from the `consent` topic (pure, no I/O).

Under `opt_out` a category is allowed until the user withdraws it; under `opt_in` nothing is allowed until
the user grants it. A user known only by anonymous_id can consent under that id; once identified, a record
under the user_id takes precedence.

A deletion request withdraws every category of its subject. A later change can never silently undo it: a grant
for an erased subject is admitted only when it was made after the deletion and says `explicit: true` (the user
acted just now, e.g. clicked a banner after registering again), and it is recorded naming the deletion it
follows. A stale queue replaying a grant from before the deletion, or a site re-applying a stored choice at
every page load, is refused. The write key may record such a grant: it is what a browser banner does, and the
history keeps both the withdrawal and the grant.

A withdrawal follows the person (docs/identity.md): the gateway records it for every other id the identity
graph links to its subject as well (`extend_withdrawal`, naming the subject in `linked_from`), so the
visitor's pre-login anonymous id is refused too, in every gateway process, which all learn it from the
`consent` topic.
A grant applies to the id it names only: it never widens what another id of the person agreed to.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pravis_schemas import ConsentCategory
from pravis_schemas.messages import ConsentRecord

Policy = Literal["opt_in", "opt_out"]
Subject = tuple[str, str]


PREDATES_ERASURE = "consent_predates_erasure"
NOT_EXPLICIT_AFTER_ERASURE = "consent_after_erasure_not_explicit"
ERASURE_REFUSALS = frozenset({PREDATES_ERASURE, NOT_EXPLICIT_AFTER_ERASURE})


@dataclass(frozen=True)
class Erasure:
    request_id: str
    at: datetime


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


class ConsentBook:
    def __init__(
        self, default_policy: Policy = "opt_out", project_policies: Mapping[str, Policy] | None = None
    ):
        self.default_policy = default_policy
        self.project_policies = dict(project_policies or {})
        self._granted: dict[Subject, dict[ConsentCategory, bool]] = {}
        self._erasures: dict[Subject, Erasure] = {}

    def policy(self, project_id: str) -> Policy:
        return self.project_policies.get(project_id, self.default_policy)

    def apply(self, record: ConsentRecord) -> None:
        key = (record.project_id, record.subject)
        self._granted.setdefault(key, {}).update(record.consent)
        if record.erasure_request_id:
            self._erasures[key] = Erasure(record.erasure_request_id, record.changed_at)

    def erasure(self, project_id: str, subject: str) -> Erasure | None:
        """The latest deletion request of this subject, if any."""
        return self._erasures.get((project_id, subject))

    def admit(self, record: ConsentRecord) -> ConsentRecord | Refusal:
        """The change as it is to be recorded (naming the deletion it follows, if any), or why it is not."""
        erasure = self.erasure(record.project_id, record.subject)
        if erasure is None:
            return record
        if any(record.consent.values()):
            if record.changed_at <= erasure.at:
                return Refusal(
                    PREDATES_ERASURE,
                    f"this grant was made before deletion request {erasure.request_id} and cannot undo it",
                )
            if not record.explicit:
                return Refusal(
                    NOT_EXPLICIT_AFTER_ERASURE,
                    f"the subject's data was deleted (request {erasure.request_id}): a new grant must be "
                    "made by the user just now and say explicit: true",
                )
        return record.model_copy(update={"follows_erasure": erasure.request_id})

    def extend_withdrawal(self, record: ConsentRecord, linked: Iterable[str]) -> list[ConsentRecord]:
        """The withdrawals of `record` as recorded for each other id in `linked` (the ids of its subject's
        person); none when it withdraws nothing."""
        withdrawn = {category: False for category, granted in record.consent.items() if not granted}
        if not withdrawn:
            return []
        copies = []
        for subject in sorted(set(linked) - {record.subject}):
            erasure = self.erasure(record.project_id, subject)
            update = {
                "subject": subject,
                "consent": withdrawn,
                "linked_from": record.subject,
                "follows_erasure": erasure.request_id if erasure else None,
            }
            copies.append(record.model_copy(update=update))
        return copies

    def state(self, project_id: str, subject: str) -> dict[ConsentCategory, bool]:
        default = self.policy(project_id) == "opt_out"
        known = self._granted.get((project_id, subject), {})
        return {category: known.get(category, default) for category in ConsentCategory}

    def allows(
        self,
        project_id: str,
        user_id: str | None,
        anonymous_id: str | None,
        category: ConsentCategory,
        pending: Mapping[Subject, Mapping[ConsentCategory, bool]] | None = None,
    ) -> bool:
        """Whether an event of `category` from this user may be kept; `pending`: changes not applied yet."""
        for subject in (user_id, anonymous_id):
            if not subject:
                continue
            key = (project_id, subject)
            for granted in ((pending or {}).get(key, {}), self._granted.get(key, {})):
                if category in granted:
                    return granted[category]
        return self.policy(project_id) == "opt_out"

    def __len__(self) -> int:
        return len(self._granted)
