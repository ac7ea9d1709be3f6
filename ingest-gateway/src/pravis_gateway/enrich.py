"""Server-side fields added to every accepted event (pure functions, no I/O)."""

import ipaddress
from datetime import datetime


def anonymize_ip(ip: str | None) -> str | None:
    """Zero the host part (IPv4 /24, IPv6 /48), as Google Analytics does, so no raw IP leaves the process."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def correct_skew(timestamp: datetime, sent_at: datetime | None, received_at: datetime) -> datetime:
    """Move a client timestamp onto the server clock: received_at - (sent_at - timestamp)."""
    if sent_at is None:
        return timestamp
    return received_at - (sent_at - timestamp)
