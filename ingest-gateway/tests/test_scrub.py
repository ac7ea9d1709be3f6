import pytest
from pravis_gateway.scrub import Scrubber, luhn_valid, scrub_text, scrub_url


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("mail me at jane.doe+shop@example.co.uk please", "mail me at [email] please"),
        ("card 4111 1111 1111 1111 expired", "card [card] expired"),
        ("card 4111-1111-1111-1112 is not luhn valid", "card 4111-1111-1111-1112 is not luhn valid"),
        ("call +1 (415) 555-2671 now", "call [phone] now"),
        ("call 020 7946 0958", "call [phone]"),
        ("from 203.0.113.77 via proxy", "from [ip] via proxy"),
        ("order 12345 costs 199.90", "order 12345 costs 199.90"),
        ("https://boutique.example/p/123?size=42", "https://boutique.example/p/123?size=42"),
        ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00Z"),
    ],
)
def test_scrub_text(text: str, scrubbed: str) -> None:
    assert scrub_text(text) == scrubbed


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_properties_are_scrubbed_recursively_and_denylisted_keys_redacted() -> None:
    scrubber = Scrubber({"Password", "ssn"})

    result = scrubber.properties(
        {
            "password": "hunter2",
            "note": "reach me: a@b.io",
            "nested": {"SSN": "078-05-1120", "list": ["x@y.org", 3, None]},
            "count": 3,
        }
    )

    assert result == {
        "password": "[redacted]",
        "note": "reach me: [email]",
        "nested": {"SSN": "[redacted]", "list": ["[email]", 3, None]},
        "count": 3,
    }


@pytest.mark.parametrize(
    ("url", "scrubbed"),
    [
        (
            "http://127.0.0.1:8080/page.html?email=jane%40example.com",
            "http://127.0.0.1:8080/page.html?email=[email]",
        ),
        ("https://shop.example/p/4111111111111111", "https://shop.example/p/4111111111111111"),
        ("https://shop.example/?ref=203.0.113.7#a@b.io", "https://shop.example/?ref=[ip]#[email]"),
        ("not a url a@b.io", "not a url [email]"),
    ],
)
def test_urls_keep_host_and_path_and_lose_pii_in_query_and_fragment(url: str, scrubbed: str) -> None:
    assert scrub_url(url) == scrubbed
