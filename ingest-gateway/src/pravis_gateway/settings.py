"""Gateway settings (env prefix PRAVIS_, optional .env)."""

from pathlib import Path
from typing import Literal

from pravis_schemas import ConsentCategory, ports
from pravis_schemas.kafka_security import KafkaSettings
from pravis_schemas.settings import (
    ClickHouseSettings,
    CommaSeparatedList,
    DataDirSettings,
    LogSettings,
    PravisSettings,
)
from pydantic import SecretStr

from pravis_gateway.scrub import DEFAULT_DENYLIST


class Settings(PravisSettings, KafkaSettings, ClickHouseSettings, DataDirSettings, LogSettings):
    # Tansu 0.6 fails InitProducerId (UnknownError): idempotence is off by default; turn it on for real Kafka.
    kafka_enable_idempotence: bool = False
    kafka_acks: Literal["all", "1", "0"] = "all"
    kafka_linger_ms: int = 5
    # Bytes of records per partition that aiokafka gathers into one record batch (its default: 16 KiB). A
    # single-user request is one record of ~20 KiB, so at 16 KiB every record was a batch of its own, and one
    # produce request carries one batch per partition: records queued behind each other and each cost a batch.
    # 256 KiB lets concurrent requests share a batch (docs/scaling.md: publisher and broker CPU per event).
    kafka_max_batch_size: int = 256 * 1024
    kafka_ack_timeout_s: float = 10.0
    host: str = ports.LOCAL_HOST
    gateway_port: int = ports.GATEWAY
    gateway_workers: int = 1
    # Serve /metrics on this port (same host) instead of the public one, so an Ingress can expose the API and
    # keep the counters internal; with --workers N the supervising process serves the sum of all workers.
    gateway_metrics_port: int | None = None

    max_events_per_batch: int = 500
    # Bounds every endpoint's body as sent (BodyLimits) and the events body once decompressed.
    max_body_bytes: int = 1024 * 1024
    # A request whose body has not fully arrived this long after it started is answered 408 and closed.
    body_timeout_s: float = 10.0
    max_event_bytes: int = 32 * 1024
    # Events whose skew-corrected time lies outside [now - max_event_age, now + max_future_skew] are rejected.
    max_event_age_s: float = 30 * 24 * 3600
    max_future_skew_s: float = 300
    # Per-key token bucket, in events; 0 disables. Each gateway worker process keeps its own bucket.
    rate_limit_events_per_s: float = 5000
    rate_limit_burst_events: int = 20_000
    retry_after_s: int = 5
    # A known key is re-checked in the key file at most this often: a revocation counts within it, a new key
    # at once.
    keys_recheck_s: float = 1.0
    # Distinct user agents and URLs whose parsing each gateway process remembers (LRU): bounds its memory.
    parse_cache_entries: int = 4096

    # Experiment definitions are reloaded from the warehouse this often (GET /feature serves the cached copy).
    experiments_refresh_s: float = 5.0
    # Experiments hashed on the person look up each id's person in the identity graph and keep the answer this
    # long, for at most this many ids (a login reaches such an experiment at the latest one TTL later).
    person_cache_ttl_s: float = 30.0
    person_cache_ids: int = 100_000
    # Surveys (GET /api/v1/surveys answers from memory): definitions, segment members and survey history are
    # reloaded this often; survey events this gateway accepted count at once and are remembered this long
    # (longer than the loader's delay plus a reload) for at most this many ids.
    surveys_refresh_s: float = 10.0
    surveys_recent_ttl_s: float = 300.0
    surveys_recent_ids: int = 100_000

    # Consent: categories are allowed until withdrawn (opt_out) or only once granted (opt_in); per-project
    # overrides as JSON, e.g. PRAVIS_CONSENT_PROJECT_POLICIES='{"shop-eu": "opt_in"}'.
    consent_default_policy: Literal["opt_in", "opt_out"] = "opt_out"
    consent_project_policies: dict[str, Literal["opt_in", "opt_out"]] = {}
    # What a request carrying Sec-GPC: 1 withdraws (comma-separated; empty = ignore the signal). Default:
    # CCPA's "do not sell or share", which for our categories is cross-context personalization.
    gpc_opt_out_categories: CommaSeparatedList[ConsentCategory] = [ConsentCategory.PERSONALIZATION]
    # Property keys whose values are always redacted (case-insensitive), besides pattern-based PII scrubbing.
    pii_denylist_keys: CommaSeparatedList[str] = sorted(DEFAULT_DENYLIST)

    ip_anonymization: Literal["truncate", "hash"] = "truncate"
    # Key of the daily-rotating IP hash, shared by every gateway instance; generated into data_dir if unset.
    ip_hash_secret: SecretStr | None = None
    cors_origins: CommaSeparatedList[str] = []

    # "null" acknowledges without Kafka: only for measuring the gateway's own ceiling (`make bench`).
    sink: Literal["kafka", "null"] = "kafka"

    @property
    def keys_path(self) -> Path:
        return self.data_dir / "keys.json"


settings = Settings()
