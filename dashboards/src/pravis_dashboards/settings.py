"""Dashboards settings (env prefix PRAVIS_, optional .env)."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRAVIS_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    clickhouse_url: str = "http://127.0.0.1:8123/pravis"
    stream_url: str = "http://127.0.0.1:6066"
    """Base URL of the stream tier's live API (`/live/{project}/summary`, ...)."""
    dashboards_host: str = "127.0.0.1"
    dashboards_port: int = 8080
    dashboards_live_poll_s: float = 3.0
    """How often the Live page asks for new numbers."""
    dashboards_default_days: int = 30
    """Date range shown when the URL names none: this many days ending at the latest rolled-up day."""
    dashboards_stream_timeout_s: float = 3.0
    log_format: str = "console"
