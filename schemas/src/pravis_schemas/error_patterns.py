"""Error fingerprints (Sentry-style grouping): which failures are "the same error" (pure, no I/O).

A failure is an `error` event, an `api_request` answered 5xx, or an AI request with `success = false`. Its
fingerprint hashes its kind, its error type, its message normalised so that what changes between occurrences
of one bug does not split it (numbers, UUIDs, long hex ids, quoted values), and where it happened (the
endpoint and method of an API request, the event type and model of an AI request; an `error` event has no
location field, its message carries it).

The normalisation is one ordered list of regular-expression rules that runs twice: `normalise_message` in
Python (the stream tier's detector) and `fingerprint_sql` in ClickHouse (the `error_patterns_daily` rollup),
so both name a pattern with the same fingerprint. The rules stay inside what both engines read alike: ASCII
classes only (`[0-9]`, not `\\d`; `\\b` is ASCII in both with `re.ASCII`), no look-around, no
back-references, ASCII lower-casing; a test runs the same table of messages through both.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

from pravis_schemas.events import AI_EVENT_TYPES

MAX_MESSAGE_CHARS = 300
"""A normalised message is cut to this many characters: the head of a message names the error, and a cut
bounds the work and what a pattern row stores."""

RULES: tuple[tuple[str, str], ...] = (
    (r"'[^']*'", "<str>"),
    (r'"[^"]*"', "<str>"),
    (r"`[^`]*`", "<str>"),
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>"),
    (r"0x[0-9a-f]+", "<hex>"),
    (r"\b[0-9a-f]*([0-9][a-f]|[a-f][0-9])[0-9a-f]*\b", "<id>"),
    (r"[0-9]+", "<n>"),
    (r"<n>(\.<n>)+", "<n>"),
    (r"[ \t\r\n]+", " "),
    (r"^ | $", ""),
)
"""(pattern, replacement) in order, on the ASCII-lower-cased message. `<id>` takes whole words made of hex
letters and digits mixed (hashes, object ids: such a word has a digit next to a letter somewhere); plain words
stay, and digits anywhere else become `<n>` (`user42` -> `user<n>`)."""

_COMPILED = tuple((re.compile(pattern, re.ASCII), replacement) for pattern, replacement in RULES)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
FINGERPRINT_CHARS = 16
_SEPARATOR = "\x1f"


def normalise_message(message: str | None) -> str:
    """The message with what varies between occurrences replaced by placeholders, cut to
    MAX_MESSAGE_CHARS."""
    text = (message or "").translate(_ASCII_LOWER)
    for pattern, replacement in _COMPILED:
        text = pattern.sub(replacement, text)
    return text[:MAX_MESSAGE_CHARS]


@functools.lru_cache(maxsize=4096)
def fingerprint(kind: str, error_type: str, message: str | None, location: str) -> str:
    """16 hex characters naming the pattern of a failure (kind: `error`, `api`, `ai`). Cached: a failing
    endpoint or model repeats the same arguments (the regular expressions cost ~50 us a message)."""
    text = _SEPARATOR.join((kind, error_type, normalise_message(message), location))
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:FINGERPRINT_CHARS]


def failure_of(row: dict[str, Any]) -> tuple[str, str, str | None, str] | None:
    """(kind, error type, message, location) of an `events` row that is a failure, else None."""
    event_type = row.get("event_type")
    if event_type == "error":
        return "error", row.get("error_type") or "", row.get("error_message"), ""
    if event_type == "api_request" and (row.get("status") or 0) >= 500:
        error_type = row.get("error_type") or f"HTTP {row['status']}"
        return "api", error_type, None, f"{row.get('method') or ''} {row.get('endpoint') or ''}"
    if event_type in AI_EVENT_TYPES and row.get("success") is False:
        return "ai", row.get("error_type") or "failure", None, f"{event_type} {row.get('model_used') or ''}"
    return None


def normalise_sql(message: str) -> tuple[str, dict[str, str]]:
    """ClickHouse expression of `normalise_message` over the SQL expression `message` (fixed text of the
    caller), and its parameters (the rules)."""
    expression = f"lower(coalesce({message}, ''))"
    parameters = {}
    for index, (pattern, replacement) in enumerate(RULES):
        parameters[f"fp_pattern_{index}"] = pattern
        parameters[f"fp_replacement_{index}"] = replacement
        rule = f"{{fp_pattern_{index}:String}}, {{fp_replacement_{index}:String}}"
        expression = f"replaceRegexpAll({expression}, {rule})"
    return f"substringUTF8({expression}, 1, {MAX_MESSAGE_CHARS})", parameters


def fingerprint_sql(kind: str, error_type: str, normalised: str, location: str) -> str:
    """ClickHouse expression of `fingerprint` over SQL expressions (fixed text of the caller; `normalised` is
    `normalise_sql`'s)."""
    parts = ", char(31), ".join((kind, error_type, normalised, location))
    return f"substring(lower(hex(MD5(concat({parts})))), 1, {FINGERPRINT_CHARS})"


def failures_sql(
    source: str,
    where: str,
    columns: str,
    *,
    ai_types: str = "{ai_types:Array(String)}",
    fingerprint: bool = True,
) -> tuple[str, dict[str, Any]]:
    """SELECT of every failure (`failure_of` in SQL) among the rows of `source` matching `where`: the
    caller's `columns` of it, then `kind`, `failure_type`, `place` (the location) and, with `fingerprint`,
    `message` (normalised) and `fingerprint`; and its parameters (the normalisation rules). `source`, `where`,
    `columns` and `ai_types` (the AI event types: a parameter the caller sets, or a literal) are fixed SQL of
    the caller. Shared by the `error_patterns_daily` rollup and the failures of improvement opportunities
    (`pravis_schemas.opportunities`), so both classify and name a failure alike."""
    sql = f"""SELECT {columns},
           multiIf(event_type = 'error', 'error', event_type = 'api_request', 'api', 'ai') AS kind,
           multiIf(kind = 'error', coalesce(error_type, ''),
                   kind = 'api', coalesce(error_type, concat('HTTP ', toString(status))),
                   coalesce(error_type, 'failure')) AS failure_type,
           if(kind = 'error', error_message, NULL) AS msg,
           multiIf(kind = 'error', '',
                   kind = 'api', concat(coalesce(method, ''), ' ', coalesce(endpoint, '')),
                   concat(event_type, ' ', coalesce(model_used, ''))) AS place
    FROM {source}
    WHERE ({where})
      AND (event_type = 'error' OR (event_type = 'api_request' AND status >= 500)
           OR (event_type IN {ai_types} AND success = false))"""
    if not fingerprint:
        return sql, {}
    normalised, parameters = normalise_sql("msg")
    named = fingerprint_sql("kind", "failure_type", normalised, "place")
    return f"SELECT *, {normalised} AS message, {named} AS fingerprint\nFROM (\n    {sql}\n)", parameters
