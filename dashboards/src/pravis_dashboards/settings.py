"""Dashboards settings (env prefix PRAVIS_, optional .env)."""

from pravis_schemas import ports
from pravis_schemas.read_auth import ReadAuthSetting
from pravis_schemas.settings import ClickHouseSettings, LogSettings, PravisSettings


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
