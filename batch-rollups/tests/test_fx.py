"""The rates file reader: every bad line named with its reason, nothing loadable from a file with one."""

from datetime import date
from decimal import Decimal

import pytest
from pravis_rollups.fx import Rate, parse_rates


def test_a_good_file_gives_its_rates_exactly() -> None:
    lines = ["day,currency,rate", "2024-03-01, usd ,0.91234567", "", "2024-03-14,GBP,1.1712"]

    assert parse_rates(lines, "eur") == (
        [
            Rate("USD", date(2024, 3, 1), Decimal("0.91234567")),
            Rate("GBP", date(2024, 3, 14), Decimal("1.1712")),
        ],
        [],
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("2024-03-01,XYZ,1", "line 2: 'XYZ' is not an ISO 4217 currency code"),
        ("2024-03-01,EUR,1", "line 2: EUR is the reporting currency (its rate is 1)"),
        ("01/03/2024,USD,1", "line 2: day '01/03/2024' is not an ISO date (YYYY-MM-DD)"),
        ("2024-03-01,USD,abc", "line 2: rate 'abc' is not a decimal number"),
        ("2024-03-01,USD,0", "line 2: rate 0 should be positive and below 10000000000"),
        ("2024-03-01,USD,-1", "line 2: rate -1 should be positive and below 10000000000"),
        ("2024-03-01,USD,NaN", "line 2: rate NaN should be positive and below 10000000000"),
        ("2024-03-01,USD,0.123456789", "line 2: rate 0.123456789 has more than 8 decimals"),
        ("2024-03-01,USD", "line 2: expected 3 fields (day,currency,rate), got 2"),
    ],
)
def test_a_bad_line_is_named_with_its_reason(line: str, reason: str) -> None:
    assert parse_rates(["day,currency,rate", line], "EUR") == ([], [reason])


def test_a_repeated_day_and_a_wrong_header_are_refused() -> None:
    repeated = ["day,currency,rate", "2024-03-01,USD,0.9", "2024-03-01,usd,0.91"]

    assert parse_rates(repeated, "EUR")[1] == ["line 3: USD on 2024-03-01 is already on line 2"]
    assert parse_rates(["currency,day,rate"], "EUR") == (
        [],
        ["line 1: the header should be day,currency,rate"],
    )
    assert parse_rates([], "EUR") == ([], ["line 1: the header should be day,currency,rate"])
    assert parse_rates(["day,currency,rate"], "EURO")[1] == [
        "reporting currency 'EURO' is not an ISO 4217 currency code"
    ]
