"""Money in events: amounts as exact decimals and the ISO 4217 currency codes an amount may carry.

Amounts are `Decimal` end to end (the SDK's JSON number or string, pydantic, the `events` row, ClickHouse's
`Decimal(18, 4)` columns), so no float ever rounds a price. An amount with more than `MONEY_DECIMAL_PLACES`
decimals, or too large for the column, is refused rather than rounded: rounding would silently change what the
shop charged. The currency list is ISO 4217's active codes (list one, published by SIX): a currency the list
does not know is refused, because the reporting currency conversion (`fx_rates`) could never convert it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

MONEY_DECIMAL_PLACES = 4
"""Scale of the warehouse's money columns: covers every ISO 4217 minor unit (at most 4, the UYW)."""
MONEY_MAX_DIGITS = 15
"""Significant digits of an amount: below 10^11 with 4 decimals. JSON parsers (the gateway's, every SDK's
language) hold a JSON number as a double, which carries 15 significant decimal digits exactly, so any amount
within this bound reaches the row unchanged whether it was sent as a number or a string. The columns are
`Decimal(18, 4)`, which leaves sums room."""

# fmt: off
ISO_4217_CODES = frozenset((
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF",
    "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD",
    "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK",
    "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK",
    "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT",
    "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS",
    "VED", "VES", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG",
    "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XTS", "XUA", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
))
# fmt: on
"""ISO 4217 active alphabetic codes, funds and precious metals included (SIX list one, 2025)."""


def _known_currency(value: object) -> object:
    if not isinstance(value, str):
        return value
    code = value.upper()
    if code not in ISO_4217_CODES:
        raise PydanticCustomError(
            "currency_unknown", "{currency} is not an ISO 4217 currency code", {"currency": value}
        )
    return code


Money = Annotated[
    Decimal,
    Field(
        ge=0,
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        allow_inf_nan=False,
        description=f"Non-negative exact amount, at most {MONEY_DECIMAL_PLACES} decimals (a JSON number or "
        "a decimal string).",
    ),
]
Currency = Annotated[
    str,
    BeforeValidator(_known_currency),
    Field(
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code, e.g. EUR (upper-cased on validation).",
        examples=["EUR"],
    ),
]
