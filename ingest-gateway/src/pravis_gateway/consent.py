"""Consent state of every user of every project, as rebuilt from the `consent` topic (pure, no I/O).

Under `opt_out` a category is allowed until the user withdraws it; under `opt_in` nothing is allowed until
the user grants it. A user known only by anonymous_id can consent under that id; once identified, a record
under the user_id takes precedence.
"""

from collections.abc import Mapping
from typing import Literal

from pravis_schemas import ConsentCategory
from pravis_schemas.messages import ConsentRecord

Policy = Literal["opt_in", "opt_out"]
Subject = tuple[str, str]


class ConsentBook:
    def __init__(
        self, default_policy: Policy = "opt_out", project_policies: Mapping[str, Policy] | None = None
    ):
        self.default_policy = default_policy
        self.project_policies = dict(project_policies or {})
        self._granted: dict[Subject, dict[ConsentCategory, bool]] = {}

    def policy(self, project_id: str) -> Policy:
        return self.project_policies.get(project_id, self.default_policy)

    def apply(self, record: ConsentRecord) -> None:
        self._granted.setdefault((record.project_id, record.subject), {}).update(record.consent)

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
