"""PII scrubbing of free text and event properties before anything is published (pure).

Patterns are deliberately conservative about what counts as a number to redact: a card number must pass the
Luhn check and a phone number needs 9-15 digits, so order ids and prices survive.
"""

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
PHONE = re.compile(r"(?<![\w/])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,5}(?![\w/])")
DEFAULT_DENYLIST = frozenset(
    {"password", "passwd", "secret", "token", "api_key", "ssn", "card_number", "credit_card", "cvv", "iban"}
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[card]" if luhn_valid(digits) else match.group()


def _phone(match: re.Match[str]) -> str:
    return "[phone]" if 9 <= sum(c.isdigit() for c in match.group()) <= 15 else match.group()


def scrub_text(text: str) -> str:
    if "@" in text or "%40" in text:
        text = EMAIL.sub("[email]", text)
    digits = sum(c.isdigit() for c in text)
    if digits >= 7:
        text = IPV4.sub("[ip]", text)
    if digits >= 13:
        text = CARD.sub(_card, text)
    if digits >= 9:
        text = PHONE.sub(_phone, text)
    return text


def scrub_url(url: str) -> str:
    """Scrub a URL's query and fragment only: its host and path name the site (an IP there is a server's)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub_text(url)
    if not parts.scheme:
        return scrub_text(url)
    return urlunsplit(parts._replace(query=scrub_text(parts.query), fragment=scrub_text(parts.fragment)))


class Scrubber:
    def __init__(
        self, denylist_keys: Iterable[str] = DEFAULT_DENYLIST, url_cache_entries: int = 4096
    ) -> None:
        self.denylist = frozenset(k.lower() for k in denylist_keys)
        # A site's events repeat a few URLs (every view of a page): remembered for the most recent ones only,
        # so memory stays flat however many distinct URLs arrive.
        self.url = lru_cache(maxsize=url_cache_entries)(scrub_url)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return scrub_text(value)
        if isinstance(value, dict):
            return self.properties(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def properties(self, properties: dict[str, Any]) -> dict[str, Any]:
        return {
            k: "[redacted]" if k.lower() in self.denylist else self.value(v) for k, v in properties.items()
        }
