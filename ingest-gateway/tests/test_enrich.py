from datetime import UTC, date, datetime, timedelta

import pytest
from pravis_gateway.enrich import (
    IpAnonymizer,
    UserAgents,
    correct_skew,
    hash_ip,
    truncate_ip,
    user_agent_families,
)
from pravis_gateway.scrub import Scrubber


@pytest.mark.parametrize(
    ("raw", "anonymized"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("10.1.2.3", "10.1.2.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("::1", "::"),
        ("not an ip", None),
        ("", None),
        (None, None),
    ],
)
def test_truncate_ip_drops_the_host_part(raw, anonymized) -> None:
    assert truncate_ip(raw) == anonymized


def test_ip_hash_is_stable_within_a_day_and_unlinkable_across_days() -> None:
    day = date(2026, 5, 1)

    first = hash_ip("203.0.113.77", b"secret", day)

    assert first == hash_ip("203.0.113.77", b"secret", day)
    assert first != hash_ip("203.0.113.78", b"secret", day)
    assert first != hash_ip("203.0.113.77", b"secret", day + timedelta(days=1))
    assert first != hash_ip("203.0.113.77", b"other secret", day)
    assert "203" not in first and len(first) == 32
    assert hash_ip("garbage", b"secret", day) is None


def test_hash_mode_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        IpAnonymizer("hash")
    assert IpAnonymizer("truncate")("198.51.100.9", date(2026, 1, 1)) == "198.51.100.0"


@pytest.mark.parametrize(
    ("user_agent", "families"),
    [
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.4 Mobile/15E148 Safari/604.1",
            ("Mobile Safari", "iOS", "iPhone"),
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            ("Chrome", "Windows", None),
        ),
        (None, (None, None, None)),
    ],
)
def test_user_agent_is_reduced_to_families(user_agent, families) -> None:
    assert user_agent_families(user_agent) == families


def test_skew_correction_moves_client_time_onto_server_clock() -> None:
    received = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    client_clock_ahead = timedelta(minutes=7)
    sent = received + client_clock_ahead
    happened = sent - timedelta(seconds=30)

    assert correct_skew(happened, sent, received) == received - timedelta(seconds=30)


def test_no_sent_at_keeps_client_timestamp() -> None:
    happened = datetime(2026, 5, 1, 11, 0, tzinfo=UTC)

    assert correct_skew(happened, None, datetime(2026, 5, 1, 12, 0, tzinfo=UTC)) == happened


def test_parse_caches_keep_at_most_their_size_however_many_distinct_inputs_arrive() -> None:
    user_agents, scrubber = UserAgents(entries=8), Scrubber(url_cache_entries=8)
    for n in range(100):
        user_agents.families(f"Mozilla/5.0 (X11; Linux x86_64; rv:{n}.0) Gecko/20100101 Firefox/{n}.0")
        scrubber.url(f"https://boutique.example/p/{n}?mail=a{n}@b.example")

    assert user_agents.families.cache_info().currsize == 8
    assert scrubber.url.cache_info().currsize == 8
    assert user_agents.families("Mozilla/5.0 (X11; Linux x86_64; rv:99.0) Gecko/20100101 Firefox/99.0")[
        0
    ] == ("Firefox")
    assert scrubber.url("https://boutique.example/p/99?mail=a99@b.example") == (
        "https://boutique.example/p/99?mail=[email]"
    )
