"""Loader, rollup and scheduler settings (env prefix PRAVIS_, optional .env)."""

from datetime import time
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRAVIS_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    clickhouse_url: str = "http://127.0.0.1:8123/pravis"
    data_dir: Path = Path(".pravis")
    loader_group_id: str = "pravis-loader"
    # A batch is flushed when either bound is reached: large inserts suit ClickHouse, the time bound keeps
    # freshly posted events queryable within about a second.
    loader_batch_rows: int = 50_000
    loader_batch_seconds: float = 1.0
    loader_retry_max_seconds: float = 30.0
    loader_health_host: str = "127.0.0.1"
    loader_health_port: int = 8091

    rollup_at: time = time(2, 0)
    """When (UTC) the scheduler runs the daily rollups."""
    rollup_recompute_days: int = 3
    """Each daily run recomputes this many complete days, so events arriving that late are counted."""
    rollup_repeat_window_s: int = 30
    report_weekday: int = 0
    """Day (0 = Monday) the scheduler writes last week's feedback report, after that day's rollups."""
    report_webhook_url: str | None = None
    scheduler_health_host: str = "127.0.0.1"
    scheduler_health_port: int = 8092

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"


settings = Settings()
