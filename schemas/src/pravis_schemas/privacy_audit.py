"""The row of the `privacy_requests` audit table, which the gateway and the privacy worker both write.

The gateway writes a deletion request as `pending` before it publishes it on `privacy.requests`; the privacy
worker acts only on a request such a row vouches for, and writes it again as `done` with what it removed. The
table keeps one row per state change (a ReplacingMergeTree on `updated_at`, batch-rollups migration 0010), so
a request's newest row, read with FINAL, is its state. The done row lists the ids the deletion covered
(`subjects_covered`: the subject and every id linked to its person, as the identity graph had them when the
worker carried the request out; migration 0035). Pure: rows in `COLUMNS` order, for
`client.insert(TABLE, rows, column_names=COLUMNS)`.
"""

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pravis_schemas.messages import PrivacyRequest

TABLE = "privacy_requests"
COLUMNS = (
    "request_id", "kind", "project_id", "subject", "subjects_covered", "requested_by", "requested_at",
    "status", "completed_at", "rows_deleted", "dates_recomputed", "updated_at",
)  # fmt: skip


class RequestStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"


def pending_row(request: PrivacyRequest) -> list[Any]:
    """The gateway's row for a request it has just accepted (nothing deleted yet)."""
    return _row(request, RequestStatus.PENDING, request.requested_at)


def done_row(
    request: PrivacyRequest,
    completed_at: datetime,
    subjects_covered: Sequence[str],
    rows_deleted: Mapping[str, int],
    dates_recomputed: Sequence[date],
) -> list[Any]:
    """The privacy worker's row once the rows of every id of the person are deleted and their dates' rollups
    recomputed."""
    done = RequestStatus.DONE
    return _row(request, done, completed_at, completed_at, subjects_covered, rows_deleted, dates_recomputed)


def _row(
    request: PrivacyRequest,
    status: RequestStatus,
    updated_at: datetime,
    completed_at: datetime | None = None,
    subjects_covered: Sequence[str] = (),
    rows_deleted: Mapping[str, int] | None = None,
    dates_recomputed: Sequence[date] = (),
) -> list[Any]:
    return [
        request.request_id,
        request.kind,
        request.project_id,
        request.subject,
        list(subjects_covered),
        request.requested_by,
        request.requested_at,
        status.value,
        completed_at,
        dict(rows_deleted or {}),
        list(dates_recomputed),
        updated_at,
    ]
