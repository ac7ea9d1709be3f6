"""Loader, rollup and scheduler settings (env prefix PRAVIS_, optional .env)."""

from datetime import time
from pathlib import Path

from pravis_schemas import ports
from pravis_schemas.kafka_security import KafkaSettings
from pravis_schemas.money import Currency
from pravis_schemas.settings import ClickHouseSettings, DataDirSettings, LogSettings, PravisSettings
from pydantic import PositiveInt

from pravis_rollups.retention import RetentionPolicy


class Settings(PravisSettings, KafkaSettings, ClickHouseSettings, DataDirSettings, LogSettings):
    loader_group_id: str = "pravis-loader"
    # A batch is flushed when either bound is reached: large inserts suit ClickHouse, the time bound keeps
    # freshly posted events queryable within about a second.
    loader_batch_rows: int = 50_000
    loader_batch_bytes: int = 256 << 20
    """Bounds the loader's memory whatever a message holds (a gateway record may carry 50 events): the
    `loader_pipeline_depth` batches being inserted and the next one being fetched, each about this size.
    50k messages of 10 events are ~170 MB."""
    loader_batch_seconds: float = 1.0
    loader_fetch_min_bytes: int = 1024 * 1024
    loader_fetch_max_wait_ms: int = 500
    """The broker answers a fetch once this many bytes are there or after this wait. Tansu 0.6 (`memory://`)
    spends CPU per fetch in proportion to the records the partition holds, so under load every fetch that
    returns a small slice costs the broker more as the run goes on: 1 MiB (aiokafka's default is any byte)
    took the whole stack's broker from 15.7 to 10.8 us/event with the stream's settings (docs/scaling.md);
    a quiet topic is still read within the wait."""
    loader_insert_parallelism: PositiveInt = 1
    """Concurrent inserts (and ClickHouse clients) a big table batch is split into. ClickHouse parses each
    insert's rows on one thread, but the pipelined batches already keep `loader_pipeline_depth` inserts
    running: on 2 cores, splitting too only made smaller parts to merge and more inserts to juggle (measured,
    10M events: 147-191k events/s with 81-109 warehouse CPU-s at 2, 202-226k with 63-73 at 1). Raise it
    with the warehouse's cores."""
    loader_pipeline_depth: PositiveInt = 2
    """Batches inserting at once while the next is fetched; each commits only after the one before it, so
    offsets still move in order. Each holds its own `loader_insert_parallelism` ClickHouse clients."""
    loader_parallel_insert_rows: int = 10_000
    """A table's messages in a batch above which the insert is split. Below it a split saves a few
    milliseconds at most and doubles the parts ClickHouse has to merge."""
    loader_retry_max_seconds: float = 30.0
    loader_identity_refresh_seconds: float = 1.0
    """After a batch holding an alias or a pending id (docs/identity.md), the longest wait before
    identity_merges is brought up to date: the refresh is a warehouse round trip, too many at every batch of a
    fast load."""
    loader_identity_recheck_seconds: float = 60.0
    """Otherwise the longest wait between refreshes: what no batch of this loader shows (another loader's
    aliases, an alias's rows expired by retention, an old alias whose previous id turns up) is corrected
    within it."""
    loader_identity_pending_seconds: float = 3600.0
    """How long after its arrival an alias whose previous id no event carried as a user id yet keeps the
    loader looking for that id in every batch (a regex pass over the rows, only while such aliases exist)."""
    loader_health_host: str = ports.LOCAL_HOST
    loader_health_port: int = ports.LOADER_HEALTH

    retention_raw_days: int = 395
    retention_inspection_days: int = 30
    retention_rollup_days: int = 1825
    retention_overrides: dict[str, int] = {}
    """Days per table, overriding the defaults above, e.g. PRAVIS_RETENTION_OVERRIDES='{"alerts": 90}'."""

    privacy_group_id: str = "pravis-privacy"
    privacy_health_host: str = ports.LOCAL_HOST
    privacy_health_port: int = ports.PRIVACY_HEALTH

    rollup_at: time = time(2, 0)
    """When (UTC) the scheduler runs the daily rollups."""
    rollup_recompute_days: int = 3
    """Each daily run recomputes this many complete days, so events arriving that late are counted."""
    rollup_repeat_window_s: int = 30
    reporting_currency: Currency = "EUR"
    """revenue_daily converts every currency into this one with the rates of `pravis fx load`."""
    experiment_refresh_s: float = 900
    """How often the scheduler recomputes `experiment_results` between daily runs."""
    segment_refresh_s: float = 900
    """How often the scheduler recomputes segment members (`segment_members`), which surveys target."""
    report_weekday: int = 0
    """Day (0 = Monday) the scheduler writes last week's feedback report, after that day's rollups."""
    report_webhook_url: str | None = None
    scheduler_health_host: str = ports.LOCAL_HOST
    scheduler_health_port: int = ports.SCHEDULER_HEALTH

    @property
    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(
            self.retention_raw_days,
            self.retention_inspection_days,
            self.retention_rollup_days,
            self.retention_overrides,
        )

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"


settings = Settings()
