"""Dashboards settings (env prefix PRAVIS_, optional .env)."""

from pravis_schemas import ports
from pravis_schemas.read_auth import ReadAuthSetting
from pravis_schemas.settings import ClickHouseSettings, CommaSeparatedList, LogSettings, PravisSettings

from pravis_dashboards.panels import Saturation
from pravis_dashboards.system_health import Thresholds


class Settings(PravisSettings, ClickHouseSettings, LogSettings):
    stream_url: str = f"http://{ports.LOCAL_HOST}:{ports.STREAM_WEB}"
    """Base URL of the stream tier's live API (`/live/{project}/summary`, ...)."""
    dashboards_host: str = ports.LOCAL_HOST
    dashboards_port: int = ports.DASHBOARDS
    dashboards_live_poll_s: float = 3.0
    """How often the Live page asks for new numbers."""
    dashboards_default_days: int = 30
    """Date range shown when the URL names none: this many days ending at the latest rolled-up day."""
    dashboards_stream_timeout_s: float = 3.0
    dashboards_monitor_url: str = f"http://{ports.LOCAL_HOST}:{ports.MONITOR}"
    """The stack monitor (`python -m pravis_local.monitor`), whose /metrics the system health summary reads:
    each service's health check and consumer lag per group."""
    dashboards_health_timeout_s: float = 8.0
    """How long the summary waits for the monitor (its scrape checks every service and asks the broker)."""
    dashboards_health_monitor_max_age_s: float = 5.0
    """Requests within this many seconds of a monitor read reuse it (one scrape serves every viewer)."""
    dashboards_health_poll_s: float = 15.0
    """How often the Executive and Live pages refresh the system health summary."""
    dashboards_health_loader_group: str = "pravis-loader"
    """The loader's consumer group (its PRAVIS_LOADER_GROUP_ID), whose lag the loader's status judges."""
    dashboards_health_stream_group: str = "pravis-stream"
    """The stream tier's consumer group (its PRAVIS_STREAM_APP_ID), whose lag the stream's status judges."""
    dashboards_health_lag_amber: int = 1000
    dashboards_health_lag_red: int = 10000
    """Records behind, summed over a group's partitions, at which its stage turns amber / red."""
    dashboards_health_error_rate_amber: float = 0.01
    dashboards_health_error_rate_red: float = 0.05
    """An endpoint's share of 5xx responses in the last 5 minutes at which it turns amber / red."""
    dashboards_health_p95_amber_ms: float = 1000.0
    dashboards_health_p95_red_ms: float = 3000.0
    """An endpoint's p95 latency in the last 5 minutes at which it turns amber / red."""
    dashboards_health_ingest_ratio_amber: float = 0.5
    dashboards_health_ingest_ratio_red: float = 0.1
    """Events per minute in the last 5 minutes, as a share of the last hour's, at or below which the gateway
    turns amber / red."""
    dashboards_health_ingest_min_per_minute: float = 1.0
    """A project with fewer events per minute over the last hour is too quiet for the ingest check."""
    dashboards_health_monitored_endpoints: CommaSeparatedList[str] = []
    """API paths (as `api_request` events name them, e.g. `/api/v1/search,/api/v1/pay`) the summary always
    shows: one that served no request in the last 5 minutes is amber. Other paths show while they serve."""
    dashboards_saturation_cpu_percent: float = Saturation.cpu_percent
    dashboards_saturation_loop_lag_ms: float = Saturation.loop_lag_ms
    dashboards_saturation_open_fds: int = Saturation.open_fds
    dashboards_saturation_rss_bytes: int = Saturation.rss_bytes
    """The resources panel warns of a process whose maximum CPU (% of one core), p95 event-loop lag, maximum
    open descriptors or maximum resident memory in the range reaches these."""
    dashboards_auth: ReadAuthSetting | None = None
    """Credentials every route but /healthz requires: `basic:<user>:<password>` (what browsers ask a person
    for) or `token:<secret>` (Bearer, for programs). Unset: open, for loopback only."""
    stream_live_auth: ReadAuthSetting | None = None
    """The live API's credentials (the stream worker reads the same PRAVIS_STREAM_LIVE_AUTH); sent with every
    call the dashboards make to it."""
    dashboards_metrics_port: int | None = None
    """Serve /metrics on this port (same host) instead of the main one, so a deployment can expose the app and
    keep metrics internal. Unset: /metrics on the main port (behind `dashboards_auth` when that is set)."""
    dashboards_max_body_bytes: int = 64 * 1024
    """Every route is a GET: a request declaring or sending a bigger body is answered 413 unread."""
    body_timeout_s: float = 10.0
    """A body not received within this many seconds of the request's start is answered 408 (the gateway's
    PRAVIS_BODY_TIMEOUT_S, shared)."""

    def health_thresholds(self) -> Thresholds:
        return Thresholds(
            lag_amber=self.dashboards_health_lag_amber,
            lag_red=self.dashboards_health_lag_red,
            error_rate_amber=self.dashboards_health_error_rate_amber,
            error_rate_red=self.dashboards_health_error_rate_red,
            p95_amber_ms=self.dashboards_health_p95_amber_ms,
            p95_red_ms=self.dashboards_health_p95_red_ms,
            ingest_ratio_amber=self.dashboards_health_ingest_ratio_amber,
            ingest_ratio_red=self.dashboards_health_ingest_ratio_red,
            ingest_min_normal_per_minute=self.dashboards_health_ingest_min_per_minute,
        )

    def saturation(self) -> Saturation:
        return Saturation(
            cpu_percent=self.dashboards_saturation_cpu_percent,
            loop_lag_ms=self.dashboards_saturation_loop_lag_ms,
            open_fds=self.dashboards_saturation_open_fds,
            rss_bytes=self.dashboards_saturation_rss_bytes,
        )
