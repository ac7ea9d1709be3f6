"""Settings of the embedded stack: where the broker and warehouse listen and where data lives."""

from pathlib import Path

from pydantic import PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRAVIS_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    data_dir: Path = Path(".pravis")
    host: str = "127.0.0.1"
    broker_port: int = 9092
    warehouse_port: int = 8123
    warehouse_database: str = "pravis"
    warehouse_connections: PositiveInt | None = None
    """chdb connections of the embedded warehouse, i.e. requests it serves at once; default one per core, at
    least two."""
    events_partitions: int = 6
    broker_storage: str = "memory://tansu/"
    """Tansu's storage engine: `memory://tansu/` (default: no second server, but every record stays in memory
    and a broker restart loses them) or `s3://BUCKET/` against an S3 server that writes to disk, configured by
    the AWS_* variables (docs/reliability.md: measured memory, speed and kill -9 loss of each)."""
    gateway_port: int = 8000
    stream_web_port: int = 6066
    dashboards_port: int = 8080
    loader_health_port: int = 8091
    scheduler_health_port: int = 8092
    privacy_health_port: int = 8093
    monitor_port: int = 8094
    """The stack monitor's /metrics: consumer lag per group and partition, broker and warehouse memory and
    disk."""
    dev_api_key: str | None = None

    @property
    def chdb_path(self) -> Path:
        return self.data_dir / "chdb"


settings = Settings()
