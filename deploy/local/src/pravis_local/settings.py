"""Settings of the embedded stack: where the broker and warehouse listen and where data lives."""

from pathlib import Path
from urllib.parse import quote

from pravis_schemas import ports
from pravis_schemas.settings import CommaSeparatedSet, DataDirSettings, PravisSettings
from pydantic import PositiveInt, SecretStr

EVENTS_PARTITIONS = 6
"""Default partition count of `events`: the most loader / stream instances that share the work
(docs/scaling.md)."""


class Settings(PravisSettings, DataDirSettings):
    host: str = ports.LOCAL_HOST
    broker_port: int = ports.BROKER
    warehouse_port: int = ports.WAREHOUSE
    warehouse_database: str = "pravis"
    warehouse_connections: PositiveInt | None = None
    """chdb connections of the embedded warehouse, i.e. requests it serves at once; default one per core, at
    least two."""
    warehouse_user: str = "default"
    warehouse_password: SecretStr | None = None
    """When set, every warehouse request but /ping must carry these credentials; unset, none are checked
    (loopback development)."""
    warehouse_allowed_hosts: CommaSeparatedSet[str] = frozenset()
    """Comma-separated host names, besides the loopback ones, that warehouse requests may be addressed to."""
    warehouse_remote_hosts: CommaSeparatedSet[str] = frozenset()
    """Comma-separated hosts that the warehouse's url()/remote()/s3()... may reach; empty: those are off."""
    events_partitions: int = EVENTS_PARTITIONS
    broker_storage: str = "memory://tansu/"
    """Tansu's storage engine: `memory://tansu/` (default: no second server, but every record stays in memory
    and a broker restart loses them) or `s3://BUCKET/` against an S3 server that writes to disk, configured by
    the AWS_* variables (docs/reliability.md: measured memory, speed and kill -9 loss of each)."""
    gateway_port: int = ports.GATEWAY
    stream_web_port: int = ports.STREAM_WEB
    dashboards_port: int = ports.DASHBOARDS
    loader_health_port: int = ports.LOADER_HEALTH
    scheduler_health_port: int = ports.SCHEDULER_HEALTH
    privacy_health_port: int = ports.PRIVACY_HEALTH
    monitor_port: int = ports.MONITOR
    resource_report_s: float = 15.0
    """How often the monitor turns the figures of the services' processes into `resource_sample` events (0:
    never)."""
    resource_project: str = "default"
    """The project the pipeline's own resource samples are filed under (its tech-ops dashboard shows them)."""
    """The stack monitor's /metrics: consumer lag per group and partition, broker and warehouse memory and
    disk."""
    dev_api_key: str | None = None

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
