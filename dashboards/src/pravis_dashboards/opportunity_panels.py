"""The evidence of one improvement opportunity on the product page (pure: SQL and charts, no I/O).

The ranked list is a panel like any other (`panels.PANELS`, so Grafana has it too); each of its rows links
here with `?opportunity=feature:<name>` or `?opportunity=intent:<intent>`, which adds two panels for that
subject: its lowest-rated feedback (the weekly report's query, `pravis_schemas.feedback_sql`) and the failures
counted against it by error pattern (the fingerprints of the tech-ops page). The subject is a parameter of
their SQL, shown and downloaded like any panel's.
"""

from __future__ import annotations

from pravis_schemas.feedback_sql import LOWEST_RATED_COLUMNS
from pravis_schemas.opportunities import (
    ATTRIBUTION_WINDOW_S,
    Kind,
    failure_evidence_sql,
    feedback_evidence_sql,
    parse_subject,
)

from pravis_dashboards.panels import Chart, Panel

PAGE = "product"
PANEL_IDS = ("opportunity_feedback", "opportunity_failures")
QUERY_PARAMETER = "opportunity"


def subject_of(text: str | None) -> tuple[Kind, str] | None:
    """The subject of `?opportunity=`, None when absent; ValueError with the reason when malformed."""
    return None if not text else parse_subject(text)


def evidence_panels(kind: Kind, subject: str) -> list[Panel]:
    feedback_sql, feedback_parameters = feedback_evidence_sql(kind)
    failures_sql, failures_parameters = failure_evidence_sql(kind)
    about = f"{kind} {subject!r}"
    return [
        Panel(
            "opportunity_feedback",
            PAGE,
            f"Lowest-rated feedback about {about}",
            "Feedback whose context names the feature, or on an interaction of the voice intent; lowest "
            "rating first (as the weekly report lists them).",
            feedback_sql,
            Chart("table", "timestamp", tuple(c for c in LOWEST_RATED_COLUMNS if c not in ("timestamp",))),
            parameters={**feedback_parameters, "subject": subject},
        ),
        Panel(
            "opportunity_failures",
            PAGE,
            f"Failures counted against {about}",
            f"Errors, 5xx API requests and failed AI requests within {ATTRIBUTION_WINDOW_S} s after a use in "
            "the same session, by error pattern (the fingerprint of the tech-ops page's error patterns).",
            failures_sql,
            Chart(
                "table",
                "fingerprint",
                (
                    "failures",
                    "failed_uses",
                    "failure_kind",
                    "error_type",
                    "location",
                    "message",
                    "first_at",
                    "last_at",
                ),
            ),
            parameters={**failures_parameters, "subject": subject},
        ),
    ]
