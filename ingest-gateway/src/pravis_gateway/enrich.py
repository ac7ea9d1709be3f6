"""Server-side fields added to every accepted event (pure functions, no I/O)."""

import hashlib
import hmac
import ipaddress
from datetime import date, datetime
from functools import lru_cache
from typing import Literal

from ua_parser import parse as parse_user_agent


@lru_cache(maxsize=65536)
def truncate_ip(ip: str | None) -> str | None:
    """Zero the host part (IPv4 /24, IPv6 /48), as Google Analytics does, so no raw IP leaves the process."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


@lru_cache(maxsize=65536)
def hash_ip(ip: str | None, secret: bytes, day: date) -> str | None:
    """Keyed hash that changes every UTC day: visits of one day can be told apart, days cannot be linked."""
    if not ip:
        return None
    try:
        packed = ipaddress.ip_address(ip).packed
    except ValueError:
        return None
    return hmac.new(secret, day.isoformat().encode() + b"|" + packed, hashlib.sha256).hexdigest()[:32]


class IpAnonymizer:
    def __init__(self, mode: Literal["truncate", "hash"], secret: bytes | None = None) -> None:
        if mode == "hash" and not secret:
            raise ValueError("ip hashing needs a secret")
        self.mode, self._secret = mode, secret or b""

    def __call__(self, ip: str | None, day: date) -> str | None:
        return truncate_ip(ip) if self.mode == "truncate" else hash_ip(ip, self._secret, day)


def user_agent_families(user_agent: str | None) -> tuple[str | None, str | None, str | None]:
    """(browser, os, device) families of a user agent."""
    if not user_agent:
        return None, None, None
    parsed = parse_user_agent(user_agent)
    return (
        parsed.user_agent.family if parsed.user_agent else None,
        parsed.os.family if parsed.os else None,
        parsed.device.family if parsed.device else None,
    )


class UserAgents:
    """`user_agent_families`, remembered for the `entries` most recently seen user agents: a site sees few
    distinct ones and parsing one costs more than the rest of an event, while the bound keeps memory flat
    however many distinct ones arrive."""

    def __init__(self, entries: int = 4096) -> None:
        self.families = lru_cache(maxsize=entries)(user_agent_families)


def correct_skew(timestamp: datetime, sent_at: datetime | None, received_at: datetime) -> datetime:
    """Move a client timestamp onto the server clock: received_at - (sent_at - timestamp)."""
    if sent_at is None:
        return timestamp
    return received_at - (sent_at - timestamp)
