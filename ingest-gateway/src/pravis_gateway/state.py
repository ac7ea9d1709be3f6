"""Everything a request handler needs, built once per process at start-up."""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from pravis_gateway.enrich import IpAnonymizer
from pravis_gateway.ingest import Limits
from pravis_gateway.kafka import EventPublisher
from pravis_gateway.keys import KeyStore
from pravis_gateway.null_sink import NullPublisher
from pravis_gateway.ratelimit import RateLimiter
from pravis_gateway.settings import Settings


@dataclass
class Gateway:
    settings: Settings
    keys: KeyStore
    publisher: EventPublisher | NullPublisher
    limiter: RateLimiter
    limits: Limits
    anonymize_ip: IpAnonymizer

    @classmethod
    def from_settings(cls, settings: Settings) -> "Gateway":
        return cls(
            settings=settings,
            keys=KeyStore(settings.keys_path),
            publisher=NullPublisher() if settings.sink == "null" else EventPublisher(settings),
            limiter=RateLimiter(settings.rate_limit_events_per_s, settings.rate_limit_burst_events),
            limits=Limits(
                max_event_bytes=settings.max_event_bytes,
                max_event_age=timedelta(seconds=settings.max_event_age_s),
                max_future_skew=timedelta(seconds=settings.max_future_skew_s),
            ),
            anonymize_ip=IpAnonymizer(settings.ip_anonymization, ip_hash_secret(settings)),
        )


def ip_hash_secret(settings: Settings) -> bytes | None:
    """The configured secret, or one generated once into the data dir so restarts keep the same hashes."""
    if settings.ip_anonymization != "hash":
        return None
    if settings.ip_hash_secret:
        return settings.ip_hash_secret.get_secret_value().encode()
    path = settings.data_dir / "ip_hash_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()
