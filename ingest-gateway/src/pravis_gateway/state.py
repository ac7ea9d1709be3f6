"""Everything a request handler needs, built once per process at start-up."""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from clickhouse_connect.driver.client import Client

from pravis_gateway import clickhouse
from pravis_gateway.consent import ConsentBook
from pravis_gateway.enrich import IpAnonymizer, UserAgents
from pravis_gateway.ingest import Limits, Policies
from pravis_gateway.kafka import ConsentFeed, EventPublisher
from pravis_gateway.keys import KeyStore
from pravis_gateway.null_sink import NullPublisher
from pravis_gateway.ratelimit import RateLimiter
from pravis_gateway.scrub import Scrubber
from pravis_gateway.settings import Settings
from pravis_gateway.surveys.book import SurveyBook


@dataclass
class Gateway:
    settings: Settings
    keys: KeyStore
    publisher: EventPublisher | NullPublisher
    limiter: RateLimiter
    limits: Limits
    policies: Policies
    consent_feed: ConsentFeed | None
    _warehouse: Client | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Gateway":
        book = ConsentBook(settings.consent_default_policy, settings.consent_project_policies)
        null_sink = settings.sink == "null"
        return cls(
            settings=settings,
            keys=KeyStore(settings.keys_path, settings.keys_recheck_s),
            publisher=NullPublisher() if null_sink else EventPublisher(settings),
            limiter=RateLimiter(settings.rate_limit_events_per_s, settings.rate_limit_burst_events),
            limits=Limits(
                max_event_bytes=settings.max_event_bytes,
                max_event_age=timedelta(seconds=settings.max_event_age_s),
                max_future_skew=timedelta(seconds=settings.max_future_skew_s),
            ),
            policies=Policies(
                consent=book,
                scrubber=Scrubber(settings.pii_denylist_keys, settings.parse_cache_entries),
                anonymize_ip=IpAnonymizer(settings.ip_anonymization, ip_hash_secret(settings)),
                user_agents=UserAgents(settings.parse_cache_entries),
                surveys=SurveyBook(settings.surveys_recent_ttl_s, settings.surveys_recent_ids),
            ),
            consent_feed=None if null_sink else ConsentFeed(settings, book),
        )

    async def start(self) -> None:
        await self.publisher.start()
        if self.consent_feed:
            await self.consent_feed.start()

    async def stop(self) -> None:
        if self.consent_feed:
            await self.consent_feed.stop()
        await self.publisher.stop()
        if self._warehouse:
            self._warehouse.close()

    @property
    def consent_ready(self) -> bool:
        return self.consent_feed is None or self.consent_feed.caught_up.is_set()

    def warehouse(self) -> Client:
        """The ClickHouse client, connected on first use: ingestion must not depend on the warehouse."""
        if self._warehouse is None:
            self._warehouse = clickhouse.connect(self.settings.clickhouse_url)
        return self._warehouse


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
