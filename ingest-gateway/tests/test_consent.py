from datetime import UTC, datetime

from pravis_gateway.consent import ConsentBook
from pravis_schemas import ConsentCategory
from pravis_schemas.messages import ConsentRecord

NOW = datetime(2026, 5, 1, tzinfo=UTC)
ANALYTICS, FEEDBACK = ConsentCategory.ANALYTICS, ConsentCategory.FEEDBACK


def record(subject: str, project: str = "shop", **consent: bool) -> ConsentRecord:
    return ConsentRecord(project_id=project, subject=subject, consent=consent, changed_at=NOW)


def test_opt_out_allows_until_withdrawn_and_changes_merge() -> None:
    book = ConsentBook("opt_out")
    assert book.allows("shop", "u", None, ANALYTICS)

    book.apply(record("u", analytics=False))
    book.apply(record("u", feedback=False))
    book.apply(record("u", feedback=True))

    assert not book.allows("shop", "u", None, ANALYTICS)
    assert book.allows("shop", "u", None, FEEDBACK)
    assert book.allows("other-project", "u", None, ANALYTICS)


def test_opt_in_project_allows_only_granted_and_user_id_wins_over_anonymous_id() -> None:
    book = ConsentBook("opt_out", {"eu": "opt_in"})
    book.apply(record("anon-1", project="eu", analytics=True))

    assert book.allows("eu", None, "anon-1", ANALYTICS)
    assert book.allows("eu", "u-1", "anon-1", ANALYTICS)
    book.apply(record("u-1", project="eu", analytics=False))
    assert not book.allows("eu", "u-1", "anon-1", ANALYTICS)
    assert not book.allows("eu", "u-2", None, ANALYTICS)


def test_pending_changes_take_precedence_and_state_fills_defaults() -> None:
    book = ConsentBook("opt_in")
    book.apply(record("u", analytics=True))

    assert not book.allows("shop", "u", None, ANALYTICS, pending={("shop", "u"): {ANALYTICS: False}})
    assert book.state("shop", "u") == {
        ConsentCategory.ANALYTICS: True,
        ConsentCategory.PERFORMANCE: False,
        ConsentCategory.FEEDBACK: False,
        ConsentCategory.PERSONALIZATION: False,
    }
