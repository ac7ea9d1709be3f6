"""Settings of the embedded stack: where the broker and warehouse listen and where data lives."""

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from pydantic import PositiveInt, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

HostList = Annotated[frozenset[str], NoDecode]


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
    warehouse_user: str = "default"
    warehouse_password: SecretStr | None = None
    """When set, every warehouse request but /ping must carry these credentials; unset, none are checked
    (loopback development)."""
    warehouse_allowed_hosts: HostList = frozenset()
    """Comma-separated host names, besides the loopback ones, that warehouse requests may be addressed to."""
    warehouse_remote_hosts: HostList = frozenset()
    """Comma-separated hosts that the warehouse's url()/remote()/s3()... may reach; empty: those are off."""
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

    @field_validator("warehouse_allowed_hosts", "warehouse_remote_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(host.strip() for host in value.split(",") if host.strip())
        return value

    @property
    def chdb_path(self) -> Path:
        return self.data_dir / "chdb"

    @property
    def user_files_dir(self) -> Path:
        """Where the warehouse's file() may read and write, like ClickHouse's user_files_path."""
        return self.data_dir / "user_files"

    def warehouse_url(self) -> str:
        """The warehouse's URL for clients, with the credentials when a password is set."""
        login = ""
        if self.warehouse_password is not None:
            secret = self.warehouse_password.get_secret_value()
            login = f"{quote(self.warehouse_user, safe='')}:{quote(secret, safe='')}@"
        return f"http://{login}{self.host}:{self.warehouse_port}/{self.warehouse_database}"


settings = Settings()
