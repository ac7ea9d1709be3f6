"""Error fingerprints on a table of messages: what varies between occurrences of one bug is stripped, what
tells two bugs apart is kept."""

import pytest
from pravis_rollups.clickhouse import connect
from pravis_schemas.error_patterns import fingerprint, fingerprint_sql, normalise_message, normalise_sql

MESSAGES = [
    (
        "Cannot read properties of undefined (reading 'price')",
        "cannot read properties of undefined (reading <str>)",
    ),
    ('Product "SHOE-RED-38" not found', "product <str> not found"),
    ("Timeout after 30000ms", "timeout after <n>ms"),
    ("Timeout after 1.5 s", "timeout after <n> s"),
    ("order 9f8e7d6c-1a2b-4c3d-8e9f-0a1b2c3d4e5f failed", "order <uuid> failed"),
    ("segfault at 0x7FFE12AB", "segfault at <hex>"),
    ("cart 5f3a9c1e2b7d missing", "cart <id> missing"),
    ("user42 hit rate limit 429", "user<n> hit rate limit <n>"),
    ("deadbeef is a word, decade too", "deadbeef is a word, decade too"),
    ("  Network\t error:\n  connection reset  ", "network error: connection reset"),
    ("NetworkError when attempting to fetch resource.", "networkerror when attempting to fetch resource."),
    ("`sku` must not be empty", "<str> must not be empty"),
    ("Ünïcode stays, only ASCII is lowered: É", "Ünïcode stays, only ascii is lowered: É"),
    ("", ""),
    (None, ""),
]


@pytest.mark.parametrize(("message", "normalised"), MESSAGES)
def test_messages_normalise_to_their_pattern(message, normalised):
    assert normalise_message(message) == normalised


def test_a_long_message_is_cut():
    assert normalise_message("x" * 1000) == "x" * 300


def test_occurrences_of_one_bug_share_a_fingerprint_and_other_bugs_do_not():
    one = fingerprint("error", "TypeError", "Cannot read 'a' of undefined at line 12", "")
    same = fingerprint("error", "TypeError", "cannot read 'bb' of undefined at line 907", "")

    assert one == same and len(one) == 16 and int(one, 16) >= 0
    assert fingerprint("error", "RangeError", "Cannot read 'a' of undefined at line 12", "") != one
    assert fingerprint("error", "TypeError", "Cannot write 'a' of undefined at line 12", "") != one
    assert fingerprint("api", "HTTP 500", None, "GET /cart") != fingerprint(
        "api", "HTTP 500", None, "GET /search"
    )
    assert fingerprint("api", "HTTP 500", None, "GET /cart") != fingerprint(
        "ai", "HTTP 500", None, "GET /cart"
    )


def test_the_warehouse_fingerprints_the_message_table_as_python_does(clickhouse_server: str) -> None:
    """The rules run in ClickHouse (error_patterns_daily) and in Python (the stream tier's detector): both
    must name every message of the table alike."""
    messages = [m for m, _ in MESSAGES if m is not None] + ["x" * 1000, "Ünïcode 'q' 12 É\v"]
    normalised, parameters = normalise_sql("m")
    fingerprinted = fingerprint_sql("'error'", "'TypeError'", normalised, "'GET /cart'")
    sql = f"SELECT m, {normalised}, {fingerprinted} FROM (SELECT arrayJoin({{messages:Array(String)}}) AS m)"
    with connect(clickhouse_server, with_database=False) as client:
        rows = client.query(sql, parameters={**parameters, "messages": messages}).result_rows

    assert rows == [
        (m, normalise_message(m), fingerprint("error", "TypeError", m, "GET /cart")) for m in messages
    ]
