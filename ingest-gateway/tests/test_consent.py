from datetime import UTC, datetime

from pravis_gateway import gpc
from pravis_gateway.consent import ConsentBook, Refusal
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


ERASED_AT = datetime(2026, 5, 2, tzinfo=UTC)
LATER = datetime(2026, 5, 3, tzinfo=UTC)


def erased_book() -> ConsentBook:
    book = ConsentBook("opt_out")
    book.apply(
        ConsentRecord(
            project_id="shop",
            subject="u",
            consent=dict.fromkeys(ConsentCategory, False),
            changed_at=ERASED_AT,
            erasure_request_id="req-1",
        )
    )
    return book


def change(changed_at: datetime, explicit: bool | None = None, **consent: bool) -> ConsentRecord:
    return ConsentRecord(
        project_id="shop", subject="u", consent=consent, changed_at=changed_at, explicit=explicit
    )


def test_a_subject_never_erased_changes_as_before() -> None:
    grant = record("u", analytics=True)
    assert ConsentBook("opt_out").admit(grant) is grant


def test_an_explicit_grant_after_an_erasure_is_recorded_naming_it() -> None:
    book = erased_book()
    admitted = book.admit(change(LATER, explicit=True, analytics=True))

    assert isinstance(admitted, ConsentRecord)
    assert (admitted.follows_erasure, admitted.explicit) == ("req-1", True)
    assert admitted.consent == {ANALYTICS: True}
    book.apply(admitted)
    assert book.state("shop", "u") == {
        ConsentCategory.ANALYTICS: True,
        ConsentCategory.PERFORMANCE: False,
        ConsentCategory.FEEDBACK: False,
        ConsentCategory.PERSONALIZATION: False,
    }


def test_a_grant_after_an_erasure_that_is_stale_or_not_explicit_is_refused() -> None:
    book = erased_book()

    stale = book.admit(change(ERASED_AT, explicit=True, analytics=True))
    replayed = book.admit(change(LATER, analytics=True, feedback=False))

    assert isinstance(stale, Refusal) and stale.reason == "consent_predates_erasure"
    assert isinstance(replayed, Refusal) and replayed.reason == "consent_after_erasure_not_explicit"
    assert "req-1" in stale.message and "explicit: true" in replayed.message


def test_a_withdrawal_after_an_erasure_needs_nothing_but_names_it() -> None:
    admitted = erased_book().admit(change(ERASED_AT, feedback=False))

    assert isinstance(admitted, ConsentRecord) and admitted.follows_erasure == "req-1"


def test_gpc_withdraws_once_per_subject_and_only_the_mapped_categories() -> None:
    book = ConsentBook("opt_out")
    personalization = ConsentCategory.PERSONALIZATION
    book.apply(record("already", personalization=False))
    batch = [
        {"user_id": "u-1", "anonymous_id": "a-1"},
        {"user_id": "u-1", "anonymous_id": "a-1"},
        {"user_id": "u-1"},
        {"anonymous_id": "a-2"},
        {"user_id": "already"},
        ["not", "an", "event"],
        {"user_id": 7},
    ]

    events = gpc.opt_out_events(book, "shop", gpc.subjects_of(batch), [personalization], NOW)

    assert [(e.get("user_id"), e.get("anonymous_id")) for e in events] == [("u-1", None), (None, "a-2")]
    assert all(e["consent"] == {personalization: False} and e["source"] == "gpc" for e in events)
    assert gpc.opt_out_events(book, "shop", [("u-1", None)], [], NOW) == []


def test_only_sec_gpc_1_is_the_signal() -> None:
    assert gpc.signalled({"sec-gpc": "1"})
    assert not gpc.signalled({"sec-gpc": "0"}) and not gpc.signalled({})


def test_a_withdrawal_is_copied_to_every_other_id_of_the_person_and_a_grant_is_not() -> None:
    book = erased_book()
    mixed = record("u-9", analytics=False, feedback=True)

    copies = book.extend_withdrawal(mixed, ["anon-x", "u-9", "u", "anon-x"])

    assert [(c.subject, c.consent, c.linked_from, c.follows_erasure) for c in copies] == [
        ("anon-x", {ANALYTICS: False}, "u-9", None),
        ("u", {ANALYTICS: False}, "u-9", "req-1"),
    ]
    assert all(c.changed_at == NOW and c.project_id == "shop" for c in copies)
    assert book.extend_withdrawal(record("u-9", analytics=True), ["anon-x", "u-9"]) == []
    assert book.extend_withdrawal(mixed, ["u-9"]) == []
    for copy in copies:
        book.apply(copy)
    assert not book.allows("shop", None, "anon-x", ANALYTICS)
    assert book.allows("shop", None, "anon-x", FEEDBACK)
