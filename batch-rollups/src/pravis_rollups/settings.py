"""Loader and rollup settings (env prefix PRAVIS_, optional .env)."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRAVIS_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    clickhouse_url: str = "http://127.0.0.1:8123/pravis"
    loader_group_id: str = "pravis-loader"
    # A batch is flushed when either bound is reached: large inserts suit ClickHouse, the time bound keeps
    # freshly posted events queryable within about a second.
    loader_batch_rows: int = 50_000
    loader_batch_seconds: float = 1.0
    loader_retry_max_seconds: float = 30.0
    loader_health_host: str = "127.0.0.1"
    loader_health_port: int = 8091


settings = Settings()
