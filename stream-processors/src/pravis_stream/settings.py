"""Stream worker settings (env prefix PRAVIS_, optional .env); every duration can be shortened for tests."""

from pathlib import Path

from pravis_schemas import ports
from pravis_schemas.kafka_security import KafkaSettings
from pravis_schemas.read_auth import ReadAuthSetting
from pravis_schemas.settings import CommaSeparatedList, DataDirSettings, LogSettings, PravisSettings
from pydantic import SecretStr, model_validator

from pravis_stream import alert_sinks, anomaly, dedup, partition_state


class Settings(PravisSettings, KafkaSettings, DataDirSettings, LogSettings):
    stream_app_id: str = "pravis-stream"
    """Faust application id: the consumer group and the prefix of the worker's internal topics."""
    stream_web_host: str = ports.LOCAL_HOST
    stream_web_port: int = ports.STREAM_WEB
    stream_live_auth: ReadAuthSetting | None = None
    """Credentials every live API route but /healthz requires: `token:<secret>` (Bearer) or
    `basic:<user>:<password>`; the dashboards read the same PRAVIS_STREAM_LIVE_AUTH to call it. Unset: open,
    for loopback only."""
    stream_metrics_port: int | None = None
    """Serve /metrics on this port (host `stream_web_host`) instead of the live API's port; unset: there."""
    stream_web_request_timeout_s: float = 10.0
    """A live API connection whose request (head, or a body no view reads) is not in by then is closed; also
    how long an idle keep-alive connection stays open (aiohttp times both with one timer)."""
    stream_web_max_body_bytes: int = 64 * 1024
    """Request bodies are capped here (413); every live API view is a GET."""
    stream_canonical_url: str | None = None
    """The URL the other stream workers reach this one's live API at (they ask it for its partitions' parts
    of an answer); unset: `http://<stream_web_host>:<stream_web_port>`. Set it when that is not reachable from
    the other workers (e.g. the pod IP in Kubernetes)."""
    stream_peer_timeout_s: float = 2.0
    """How long a worker waits for another's parts of an answer; past it the answer lists fewer
    `partitions`."""

    stream_retention_minutes: int = 24 * 60
    """Live counters keep this many 1-minute windows per project."""
    stream_horizon_s: float = partition_state.DEFAULT_HORIZON_S
    """Live windows are by event time: an event that arrives (`received_at`) later than this after its
    `timestamp` is not counted live (`pravis_stream_late_events_seconds`); the warehouse still gets it.
    Also how long event ids are remembered to count a retry once."""
    stream_future_skew_s: float = partition_state.DEFAULT_FUTURE_SKEW_S
    """An event stamped further ahead of its arrival than this is not counted live."""
    stream_dedup_max_ids: int = dedup.DEFAULT_MAX_IDS
    """Event ids one partition remembers at most; beyond it the oldest slices of the horizon are forgotten
    early (`pravis_stream_dedup_evicted_total`)."""
    stream_persist_interval_s: float = 2.0
    """How often the changed windows are written to the Faust table (changelog). The live API reads memory,
    so this bounds the work a restart replays, not freshness."""
    stream_poll_timeout_ms: int = 100
    stream_fetch_max_wait_ms: int = 250
    """How long the broker may hold a fetch that has less than `stream_fetch_min_bytes`; bounds freshness
    when the reader is caught up (Tansu 0.6 holds an empty fetch this long even when a record arrives), well
    inside the 2 s freshness target."""
    stream_fetch_min_bytes: int = 1024 * 1024
    """Bytes a fetch waits for (at most `stream_fetch_max_wait_ms`). Tansu 0.6 (`memory://`) spends CPU per
    fetch in proportion to the records the partition holds, so fewer, larger fetches keep the broker's cost
    per event from growing with the data stored (docs/scaling.md); at 40k events/s 1 MiB arrives in about
    60 ms."""
    stream_fetch_max_bytes: int = 16 * 1024 * 1024

    stream_detect_interval_s: float = 5.0
    """Detection bucket: every metric series gets one observation per bucket."""
    stream_detect_grace_s: float = 0.5
    """Allowed lateness: a bucket closes when the watermark (newest event time counted, or the wall clock once
    no event came for this long) is this far past its end, so events still in flight land in it."""
    stream_warmup_buckets: int = anomaly.DEFAULT_WARMUP
    stream_ewma_alpha: float = anomaly.DEFAULT_ALPHA
    stream_z_threshold: float = anomaly.DEFAULT_Z_THRESHOLD
    stream_z_resolve: float = anomaly.DEFAULT_Z_RESOLVE
    stream_resolve_after_buckets: int = anomaly.DEFAULT_RESOLVE_AFTER
    stream_cooldown_buckets: int = anomaly.DEFAULT_COOLDOWN
    stream_min_events_per_bucket: int = anomaly.DEFAULT_MIN_EVENTS
    """Minimum-volume guard: a bucket with fewer events (API/AI requests for those series) is not judged."""
    stream_seasonal: bool = False
    """One more baseline per hour of the week (used once its slot is warm; until then the flat one)."""

    stream_webhook_urls: CommaSeparatedList[str] = []
    """Comma-separated Slack-compatible incoming-webhook URLs that receive every firing/resolved alert."""
    stream_webhook_attempts: int = 5
    """Tries per alert and sink (every sink below too), with exponential backoff."""
    stream_webhook_timeout_s: float = 5.0

    stream_alertmanager_urls: CommaSeparatedList[str] = []
    """Prometheus Alertmanager base URLs (e.g. http://alertmanager:9093); alerts go to
    `<url>/api/v2/alerts`."""
    stream_alertmanager_resend_s: float = 60.0
    """Firing alerts are sent to Alertmanager again this often; each one's `endsAt` is four intervals
    ahead."""
    stream_pagerduty_routing_key: SecretStr | None = None
    """A PagerDuty Events API v2 integration key: alerts trigger and resolve incidents of that service."""
    stream_pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    stream_signed_webhook_urls: CommaSeparatedList[str] = []
    """Generic JSON webhooks, signed as the Standard Webhooks specification says, with the secret below."""
    stream_signed_webhook_secret: SecretStr | None = None
    """`whsec_` followed by base64 of at least 16 random bytes; receivers verify with the same secret."""
    stream_runbook_url: str | None = None
    """Where the on-call team reads docs/runbooks.md; every alert links `<url>#<metric>`. Unset, the page
    the dashboards serve: `<stream_dashboards_url>/runbooks`."""
    stream_dashboards_url: str = f"http://{ports.LOCAL_HOST}:{ports.DASHBOARDS}"
    """The dashboards' base URL; every alert links its project's live page, filtered to its series."""

    stream_session_timeout_s: float = 10.0
    stream_rebalance_timeout_s: float = 10.0
    stream_heartbeat_interval_s: float = 1.0

    @model_validator(mode="after")
    def _signed_webhooks_have_a_secret(self) -> "Settings":
        if self.stream_signed_webhook_urls:
            if self.stream_signed_webhook_secret is None:
                raise ValueError(
                    "PRAVIS_STREAM_SIGNED_WEBHOOK_URLS needs PRAVIS_STREAM_SIGNED_WEBHOOK_SECRET"
                )
            alert_sinks.signing_key(self.stream_signed_webhook_secret.get_secret_value())
        return self

    @property
    def runbook_url(self) -> str:
        """Derived rather than a second default, so pointing the dashboards URL elsewhere moves both links."""
        return self.stream_runbook_url or f"{self.stream_dashboards_url.rstrip('/')}/runbooks"

    @property
    def faust_data_dir(self) -> Path:
        return self.data_dir / "stream"
