"""Which privacy.requests records the worker carries out: those a pending audit row vouches for."""

from datetime import UTC, datetime

import pytest
from pravis_rollups.privacy import AuditRow, refusal_reason
from pravis_schemas.messages import PrivacyRequest

REQUEST = PrivacyRequest(
    request_id="r1",
    kind="delete",
    project_id="shop",
    subject="u-1",
    requested_by="key-1",
    requested_at=datetime(2026, 5, 1, tzinfo=UTC),
)


def test_a_pending_row_of_the_same_project_subject_and_kind_vouches_for_the_request() -> None:
    other_project = AuditRow("other", "u-2", "delete", "done")
    assert refusal_reason(REQUEST, [other_project, AuditRow("shop", "u-1", "delete", "pending")]) is None


@pytest.mark.parametrize(
    ("audit", "reason"),
    [
        ([], "unknown_request"),
        ([AuditRow("other", "u-1", "delete", "pending")], "project_mismatch"),
        ([AuditRow("shop", "u-2", "delete", "pending")], "subject_mismatch"),
        ([AuditRow("shop", "u-1", "export", "pending")], "kind_mismatch"),
        ([AuditRow("shop", "u-1", "delete", "done")], "not_pending"),
    ],
)
def test_anything_else_is_refused_with_its_reason(audit: list[AuditRow], reason: str) -> None:
    assert refusal_reason(REQUEST, audit) == reason
