"""`event_row` writes each field as the event's own model serializes it, on both of its paths."""

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Literal

import orjson
import pytest
from pravis_schemas import ButtonClickEvent, EventBase
from pravis_schemas.events import _row_writer_is_orjson, event_row, records_by_partition
from pydantic import BaseModel, PlainSerializer

NOW = datetime(2026, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)


class Item(BaseModel):
    sku: str
    price: Decimal


class CommerceLikeEvent(EventBase):
    """Shaped like the typed fields other event types bring: exact money, a list of objects, a custom form."""

    event_type: Literal["commerce_like"]
    amount: Decimal
    items: list[Item]
    code: Annotated[int, PlainSerializer(lambda v: f"#{v}", return_type=str)]
    at: datetime


def commerce_like() -> CommerceLikeEvent:
    return CommerceLikeEvent(
        event_id=uuid.uuid4(),
        event_type="commerce_like",
        timestamp=NOW,
        anonymous_id="a-1",
        amount=Decimal("12.50"),
        items=[Item(sku="s-1", price=Decimal("0.10"))],
        code=7,
        at=NOW.astimezone(timezone(timedelta(hours=2))),
    )


def test_a_model_with_types_orjson_writes_otherwise_is_written_by_its_own_serializer() -> None:
    event = commerce_like()
    assert not _row_writer_is_orjson(CommerceLikeEvent)

    row = orjson.loads(event_row(event, {"timestamp": NOW, "project_id": "p", "ip": None}))

    own = orjson.loads(event.model_dump_json())
    assert (row["amount"], row["items"], row["code"], row["at"]) == (
        "12.50",
        [{"sku": "s-1", "price": "0.10"}],
        "#7",
        own["at"],
    )
    assert row["project_id"] == "p" and "ip" not in row and row["timestamp"] == "2026-05-01T12:00:00.250000Z"


def test_the_orjson_path_writes_what_pydantic_writes() -> None:
    assert _row_writer_is_orjson(ButtonClickEvent)
    event = ButtonClickEvent(
        event_id=uuid.uuid4(),
        event_type="button_click",
        timestamp=NOW,
        user_id='ü\u0000\u2028"/\\ 😀',
        button_id="b",
        properties={"f": [0.1, 1e20, -0.0, 2**63], "n": None, "s": "\u001f\u007f"},
    )
    written = {"timestamp": NOW + timedelta(seconds=1), "received_at": NOW, "sent_at": None}

    row = event_row(event, written)

    expected = orjson.loads(event.model_dump_json(exclude={"user_agent", "ip"}, exclude_none=True))
    expected |= {"timestamp": "2026-05-01T12:00:01.250000Z", "received_at": "2026-05-01T12:00:00.250000Z"}
    assert orjson.loads(row) == expected
    assert row.count(b"\\u0000") == 1, "NUL stays escaped"


def test_records_by_partition_keeps_each_keys_rows_on_its_partition_in_order() -> None:
    partition_of = {b"a": 0, b"b": 1, b"c": 0, b"d": 2}.__getitem__
    records = [(b"a", b"a1"), (b"b", b"b1"), (b"c", b"c1\nc2"), (b"a", b"a2"), (b"d", b"d1"), (b"b", b"b2")]

    merged = records_by_partition(records, partition_of)

    # Model: per partition, the values of its keys in the order given; the key only if there is one.
    model: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in records:
        model.setdefault(partition_of(key), []).append((key, value))
    expected = [
        (keys.pop() if len(keys := {k for k, _ in pairs}) == 1 else None, p, b"\n".join(v for _, v in pairs))
        for p, pairs in model.items()
    ]
    assert merged == expected
    assert merged == [(None, 0, b"a1\nc1\nc2\na2"), (b"b", 1, b"b1\nb2"), (b"d", 2, b"d1")]


@pytest.mark.parametrize("seed", range(200))
def test_records_by_partition_cuts_records_at_max_bytes_and_keeps_every_row_in_order(seed: int) -> None:
    draw = random.Random(seed)
    max_bytes = draw.randint(8, 120)
    posted = [
        (draw.choice([b"a", b"b", b"c", b"d"]), [draw.randint(1, 40) for _ in range(draw.randint(1, 6))])
        for _ in range(draw.randint(0, 30))
    ]
    partition_of = {b"a": 0, b"b": 1, b"c": 0, b"d": 2}.__getitem__
    # Each row names its key and its place, padded to the drawn length.
    records = []
    for n, (key, lengths) in enumerate(posted):
        rows = [(key + b":%d:%d:" % (n, i)).ljust(length, b"x") for i, length in enumerate(lengths)]
        records.append((key, b"\n".join(rows)))

    merged = records_by_partition(records, partition_of, max_bytes)

    # Model: each partition's rows in the order posted.
    expected: dict[int, list[bytes]] = {}
    for key, value in records:
        expected.setdefault(partition_of(key), []).extend(value.split(b"\n"))
    got: dict[int, list[list[bytes]]] = {}
    for key, partition, value in merged:
        rows = value.split(b"\n")
        assert len(value) <= max_bytes or len(rows) == 1, "only a row longer than the cap passes it"
        keys = {row.split(b":")[0] for row in rows}
        assert key == (keys.pop() if len(keys) == 1 else None)
        got.setdefault(partition, []).append(rows)
    assert {p: [row for rows in records_ for row in rows] for p, records_ in got.items()} == expected
    for records_ in got.values():
        for first, second in itertools.pairwise(records_):
            assert len(b"\n".join(first + second)) > max_bytes, "two records that fit in one were not joined"
