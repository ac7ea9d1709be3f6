from datetime import UTC, datetime, timedelta

import pytest
from pravis_gateway.enrich import anonymize_ip, correct_skew


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
def test_anonymize_ip_drops_the_host_part(raw, anonymized) -> None:
    assert anonymize_ip(raw) == anonymized


def test_skew_correction_moves_client_time_onto_server_clock() -> None:
    received = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    client_clock_ahead = timedelta(minutes=7)
    sent = received + client_clock_ahead
    happened = sent - timedelta(seconds=30)

    assert correct_skew(happened, sent, received) == received - timedelta(seconds=30)


def test_no_sent_at_keeps_client_timestamp() -> None:
    happened = datetime(2026, 5, 1, 11, 0, tzinfo=UTC)

    assert correct_skew(happened, None, datetime(2026, 5, 1, 12, 0, tzinfo=UTC)) == happened
