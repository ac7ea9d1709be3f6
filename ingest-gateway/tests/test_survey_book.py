"""Frequency caps count every id of a person (docs/identity.md): simulated persons visit under anonymous ids,
some log in later, and `SurveyBook.for_user`, given only the id of the visit, must match an independent model
that applies the cap rules to everything the person's ids did (as linked by the warehouse's last load),
whether the warehouse showed it already or only this gateway accepted it."""

import random
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from pravis_gateway.surveys.book import SurveyBook, WarehouseView
from pravis_gateway.surveys.store import SurveyStore
from pravis_rollups import clickhouse
from pravis_schemas.surveys import FrequencyCap, StoredSurvey, SurveyDefinition, SurveyHistory

PROJECT = "p"
MAX_DISMISSALS, GAP_DAYS = 2, 3
SURVEY = StoredSurvey(
    project_id=PROJECT,
    version=1,
    created_at="x",
    definition=SurveyDefinition.model_validate(
        {
            "key": "ux",
            "status": "running",
            "questions": [{"id": "nps", "type": "nps", "text": "?"}],
            "cap": {"max_dismissals": MAX_DISMISSALS, "days_between_surveys": GAP_DAYS},
        }
    ),
)


def model_sees(log: list[tuple[str, str, datetime]], now: datetime) -> bool:
    """The cap rules over the (kind, id, time) events of every id of one person."""
    if any(kind == "answered" for kind, _, _ in log):
        return False
    if sum(kind == "dismissed" for kind, _, _ in log) >= MAX_DISMISSALS:
        return False
    return all(now - at >= timedelta(days=GAP_DAYS) for kind, _, at in log if kind == "shown")


def warehouse_view(events: list[tuple[str, str, datetime]], person_of: dict[str, str]):
    """What `SurveyStore.refresh` loads: per person the newest answer and shown time and the dismissals, and
    the person of each id that is not its own."""
    history: dict[tuple[str, str], dict[str, SurveyHistory]] = {}
    for kind, distinct_id, at in events:
        record = history.setdefault((PROJECT, person_of.get(distinct_id, distinct_id)), {}).setdefault(
            "ux", SurveyHistory()
        )
        getattr(record, kind).append(at)
    for per_survey in history.values():
        record = per_survey["ux"]
        record.answered, record.shown = sorted(record.answered)[-1:], sorted(record.shown)[-1:]
    return history, {(PROJECT, i): p for i, p in person_of.items()}


def test_caps_hold_across_every_id_of_a_person() -> None:
    rng = random.Random(23)
    book = SurveyBook(recent_ttl_s=1e9, recent_ids=10_000)
    book.replace_definitions([SURVEY])
    now = datetime(2026, 5, 1, tzinfo=UTC)
    person_of: dict[str, str] = {}  # anonymous id -> user id, once the person logged in
    linked: dict[str, str] = {}  # the links as of the warehouse's last load
    loaded: list[tuple[str, str, datetime]] = []  # what the warehouse shows
    pending: list[tuple[str, str, datetime]] = []  # accepted by this gateway, not loaded yet
    shown_after_login = 0
    for _ in range(4000):
        now += timedelta(hours=rng.choice([1, 6, 30, 80]))
        n = rng.randrange(60)
        user, anonymous = f"user-{n}", f"anon-{n}-{rng.randrange(2)}"
        if rng.random() < 0.02 and anonymous not in person_of:
            person_of[anonymous] = user  # logs in: the warehouse links the id at its next load
        visitor = user if anonymous in person_of and rng.random() < 0.7 else anonymous
        if rng.random() < 0.3:
            loaded += pending
            pending, linked = [], dict(person_of)
            book.replace_warehouse_view(WarehouseView.of({}, *warehouse_view(loaded, linked)))
        person = linked.get(visitor, visitor)
        mine = [e for e in [*loaded, *pending] if linked.get(e[1], e[1]) == person]
        got = [s.definition.key for s in book.for_user(PROJECT, [visitor], now)]

        assert got == (["ux"] if model_sees(mine, now) else []), (visitor, now, mine)
        if not got:
            continue
        shown_after_login += visitor == user and any(e[1] != user for e in mine)
        kinds = ["shown", rng.choice(["answered", "dismissed", "dismissed", None])]
        for kind in filter(None, kinds):  # noted at once; loaded into the warehouse's view later
            pending.append((kind, visitor, now))
            book.note(PROJECT, [visitor], f"survey_{kind}", "ux", now)
    assert len(person_of) > 20 and shown_after_login > 0, "the simulation should log users in and re-show"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def test_the_warehouse_view_links_a_logged_in_user_to_their_anonymous_history(
    clickhouse_server: str,
) -> None:
    """`SurveyStore.refresh` on a real warehouse: an anonymous id dismissed, then logged in (identify); the
    user id alone is capped, an unrelated user is not."""
    url = f"{clickhouse_server}/pravis_book_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    at = datetime.now(UTC) - timedelta(hours=1)
    base = {"project_id": PROJECT, "properties": {}, "received_at": iso(at)}
    rows = [
        {
            **base,
            "event_id": str(uuid.uuid4()),
            "timestamp": iso(at),
            "event_type": "survey_shown",
            "anonymous_id": "anon-1",
            "survey_id": "ux",
            "survey_version": 1,
        },
        {
            **base,
            "event_id": str(uuid.uuid4()),
            "timestamp": iso(at),
            "event_type": "survey_dismissed",
            "anonymous_id": "anon-1",
            "survey_id": "ux",
            "survey_version": 1,
        },
        {
            **base,
            "event_id": str(uuid.uuid4()),
            "timestamp": iso(at + timedelta(minutes=1)),
            "event_type": "identify",
            "anonymous_id": "anon-1",
            "user_id": "user-1",
        },
    ]
    with clickhouse.connect(url) as client:
        clickhouse.insert_json_rows(client, "events", [orjson.dumps(r) for r in rows])
        clickhouse.refresh_identity_merges(client)
        columns = ["project_id", "survey_key", "version", "status", "definition", "created_at"]
        definition = SURVEY.definition.model_dump_json()
        client.insert("surveys", [[PROJECT, "ux", 1, "running", definition, at]], column_names=columns)
    book = SurveyBook(recent_ttl_s=60, recent_ids=100)
    store = SurveyStore(url, 10.0, book)
    try:
        await store.refresh()
    finally:
        store.close()
    now = datetime.now(UTC) + timedelta(days=GAP_DAYS)
    dismissed_once = SURVEY.model_copy(
        update={"definition": SURVEY.definition.model_copy(update={"cap": FrequencyCap(max_dismissals=1)})}
    )
    book.replace_definitions([dismissed_once])

    assert [s.definition.key for s in book.for_user(PROJECT, ["someone-else"], now)] == ["ux"]
    assert book.for_user(PROJECT, ["user-1"], now) == []
    assert book.for_user(PROJECT, ["anon-1"], now) == []


async def test_the_store_loads_the_members_of_the_newest_recorded_refresh(clickhouse_server: str) -> None:
    """Segments per id as the rows of `segment_members` say, from the newest refresh recorded in
    `segment_refreshes` only: a newer one written but not recorded yet is not read, a recorded one is."""
    url = f"{clickhouse_server}/pravis_book_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    rng = random.Random(7)
    written: dict[int, list[tuple[str, str, str]]] = {
        refresh_id: [
            (project, segment, f"id-{n}")
            for project in ("p", "q")
            for n in range(300)
            for segment in ("a", "b", "c")
            if rng.random() < 0.4
        ]
        for refresh_id in (1, 2)
    }

    def model(refresh_id: int) -> dict[tuple[str, str], set[str]]:
        members: dict[tuple[str, str], set[str]] = {}
        for project, segment, distinct_id in written[refresh_id]:
            members.setdefault((project, distinct_id), set()).add(segment)
        return members

    def record(client, refresh_id: int) -> None:
        columns = ["refresh_id", "as_of", "segments", "members", "seconds"]
        client.insert("segment_refreshes", [[refresh_id, datetime.now(UTC), 3, 0, 0.0]], column_names=columns)

    def segments(book: SurveyBook) -> dict[tuple[str, str], set[str]]:
        ids = {*model(1), *model(2), ("p", "never")}
        found = {key: set(book.segments_of(key[0], [key[1]])) for key in ids}
        return {key: keys for key, keys in found.items() if keys}

    book = SurveyBook(recent_ttl_s=60, recent_ids=100)
    store = SurveyStore(url, 10.0, book)
    try:
        with clickhouse.connect(url) as client:
            columns = ["refresh_id", "project_id", "segment_key", "distinct_id"]
            for refresh_id, rows in written.items():
                client.insert("segment_members", [[refresh_id, *r] for r in rows], column_names=columns)
            await store.refresh()
            assert segments(book) == {} and book.loaded

            record(client, 1)
            await store.refresh()
            assert segments(book) == model(1)

            record(client, 2)
            await store.refresh()
            assert segments(book) == model(2) != model(1)
    finally:
        store.close()


def test_a_survey_saved_here_outlives_a_reload_that_read_before_it() -> None:
    """A reload's read can precede this gateway's insert: the saved definition must not vanish with it, and
    must give way once the warehouse shows that version (or a newer one saved by another gateway)."""

    def version(number: int, status: str = "running") -> StoredSurvey:
        definition = SURVEY.definition.model_copy(update={"status": status})
        return SURVEY.model_copy(update={"version": number, "definition": definition})

    book = SurveyBook(recent_ttl_s=60, recent_ids=100)
    book.put_definition(version(1))
    book.replace_definitions([])  # read before the insert
    assert book.cached(PROJECT, "ux") == version(1)
    book.put_definition(version(2, "stopped"))
    book.replace_definitions([version(1)])  # read between the two inserts
    assert book.cached(PROJECT, "ux") == version(2, "stopped")
    book.replace_definitions([version(2, "stopped")])
    book.replace_definitions([version(3)])  # another gateway's save, shown by the warehouse
    assert book.cached(PROJECT, "ux") == version(3)
    book.replace_definitions([])  # not this gateway's to keep: the warehouse is the truth
    assert book.cached(PROJECT, "ux") is None
