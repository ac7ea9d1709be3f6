"""The `privacy_requests` row the gateway (pending) and the privacy worker (done) write."""

import re
from datetime import UTC, date, datetime
from pathlib import Path

from pravis_schemas.messages import PrivacyRequest
from pravis_schemas.privacy_audit import COLUMNS, done_row, pending_row

MIGRATIONS = Path(__file__).parents[2] / "batch-rollups/src/pravis_rollups/migrations"
REQUESTED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
FIELDS = {
    "request_id": "r1",
    "kind": "delete",
    "project_id": "p1",
    "subject": "u-7",
    "requested_by": "key-1",
    "requested_at": REQUESTED,
}
"""A request's own fields, which every row of it repeats."""
REQUEST = PrivacyRequest(**FIELDS)


def test_columns_are_columns_of_the_table() -> None:
    created = re.findall(r"^\s+(\w+) ", (MIGRATIONS / "0010_privacy.sql").read_text(), flags=re.M)
    added = re.findall(
        r"ALTER TABLE privacy_requests\s+ADD COLUMN IF NOT EXISTS (\w+) ",
        (MIGRATIONS / "0035_privacy_person.sql").read_text(),
    )
    table = created + added
    assert set(COLUMNS) <= set(table)
    assert set(table) - set(COLUMNS) == {"error"}


def test_pending_row_vouches_for_the_request_with_nothing_done() -> None:
    assert dict(zip(COLUMNS, pending_row(REQUEST), strict=True)) == {
        **FIELDS,
        "subjects_covered": [],
        "status": "pending",
        "completed_at": None,
        "rows_deleted": {},
        "dates_recomputed": [],
        "updated_at": REQUESTED,
    }


def test_done_row_carries_what_was_removed() -> None:
    done = datetime(2026, 11, 2, 9, 31, tzinfo=UTC)
    row = done_row(REQUEST, done, ["anon-3", "u-7"], {"events": 3}, [date(2026, 11, 1)])
    assert dict(zip(COLUMNS, row, strict=True)) == {
        **FIELDS,
        "subjects_covered": ["anon-3", "u-7"],
        "status": "done",
        "completed_at": done,
        "rows_deleted": {"events": 3},
        "dates_recomputed": [date(2026, 11, 1)],
        "updated_at": done,
    }
