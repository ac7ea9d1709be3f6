"""Gateway settings (env prefix PRAVIS_, optional .env)."""

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRAVIS_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    # Tansu 0.6 fails InitProducerId (UnknownError): idempotence is off by default; turn it on for real Kafka.
    kafka_enable_idempotence: bool = False
    kafka_acks: Literal["all", "1", "0"] = "all"
    kafka_linger_ms: int = 5
    kafka_ack_timeout_s: float = 10.0
    data_dir: Path = Path(".pravis")
    host: str = "127.0.0.1"
    gateway_port: int = 8000
    max_events_per_batch: int = 500
    # "null" acknowledges without Kafka: only for measuring the gateway's own ceiling (`make bench`).
    sink: Literal["kafka", "null"] = "kafka"
    max_body_bytes: int = 1024 * 1024
    max_event_bytes: int = 32 * 1024

    @property
    def keys_path(self) -> Path:
        return self.data_dir / "keys.json"


settings = Settings()
