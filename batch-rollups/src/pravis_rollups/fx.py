"""Exchange rates for revenue_daily's reporting currency: reading the operator's rates file (pure) and loading
it into `fx_rates`.

The pipeline never fetches rates: the operator exports them from their bank or ERP as CSV with the header
`day,currency,rate` (ISO date, ISO 4217 code, units of the reporting currency one unit of `currency` buys
from that day on) and runs `pravis fx load rates.csv --reporting EUR`. A file with any bad line loads nothing:
each bad line is reported with its number and reason, so a half-loaded file never shifts a report.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from clickhouse_connect.driver.client import Client
from pravis_schemas.money import ISO_4217_CODES

RATE_DECIMAL_PLACES = 8
"""Scale of `fx_rates.rate` (Decimal(18, 8)): a finer rate is refused, not rounded."""
MAX_RATE = Decimal(10) ** (18 - RATE_DECIMAL_PLACES)
HEADER = ("day", "currency", "rate")
COLUMNS = ["reporting_currency", "currency", "day", "rate"]


@dataclass(frozen=True)
class Rate:
    currency: str
    day: date
    rate: Decimal


def _parse_line(fields: list[str], reporting: str) -> Rate:
    if len(fields) != len(HEADER):
        raise ValueError(f"expected {len(HEADER)} fields ({','.join(HEADER)}), got {len(fields)}")
    day_text, currency, rate_text = (field.strip() for field in fields)
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise ValueError(f"day {day_text!r} is not an ISO date (YYYY-MM-DD)") from None
    currency = currency.upper()
    if currency not in ISO_4217_CODES:
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
    if currency == reporting:
        raise ValueError(f"{currency} is the reporting currency (its rate is 1)")
    try:
        rate = Decimal(rate_text)
    except InvalidOperation:
        raise ValueError(f"rate {rate_text!r} is not a decimal number") from None
    if not rate.is_finite() or rate <= 0 or rate >= MAX_RATE:
        raise ValueError(f"rate {rate_text} should be positive and below {MAX_RATE}")
    if -rate.as_tuple().exponent > RATE_DECIMAL_PLACES:
        raise ValueError(f"rate {rate_text} has more than {RATE_DECIMAL_PLACES} decimals")
    return Rate(currency, day, rate)


def parse_rates(lines: Iterable[str], reporting: str) -> tuple[list[Rate], list[str]]:
    """The rates of a CSV file's lines and one "line N: reason" per bad line (none loadable if any)."""
    reporting = reporting.upper()
    if reporting not in ISO_4217_CODES:
        return [], [f"reporting currency {reporting!r} is not an ISO 4217 currency code"]
    rows = csv.reader(lines)
    header = next(rows, None)
    if header is None or tuple(field.strip().lower() for field in header) != HEADER:
        return [], [f"line 1: the header should be {','.join(HEADER)}"]
    rates, errors, seen = [], [], {}
    for number, fields in enumerate(rows, start=2):
        if not any(field.strip() for field in fields):
            continue
        try:
            rate = _parse_line(fields, reporting)
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
            continue
        key = (rate.currency, rate.day)
        if key in seen:
            errors.append(f"line {number}: {rate.currency} on {rate.day} is already on line {seen[key]}")
            continue
        seen[key] = number
        rates.append(rate)
    return rates, errors


def load_rates(client: Client, reporting: str, rates: list[Rate]) -> None:
    """Insert the rates in one block; a (reporting, currency, day) loaded before is replaced (the table is a
    ReplacingMergeTree on that key, read with FINAL)."""
    client.insert(
        "fx_rates",
        [[reporting.upper(), r.currency, r.day, r.rate] for r in rates],
        column_names=COLUMNS,
    )
