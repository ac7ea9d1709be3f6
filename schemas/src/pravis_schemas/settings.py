"""The base of every Pravis `Settings` class and the setting groups several of them share.

`PravisSettings` reads `PRAVIS_*` environment variables and an optional `.env`. Every process reads the same
environment, so variables meant for another worker are ignored rather than rejected, and an empty variable
counts as unset. A worker's `Settings` inherits it plus the groups it uses: `KafkaSettings`
(`pravis_schemas.kafka_security`), `ClickHouseSettings`, `DataDirSettings`, `LogSettings`; one name, one
default, one type wherever a variable is read.
"""

from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pravis_schemas import ports
from pravis_schemas.logs import LogFormat


class PravisSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRAVIS_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )


def split_commas(value: object) -> object:
    """`"a, b,,c"` -> `["a", "b", "c"]`; a value that is not text (a list given in code) passes unchanged."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


Item = TypeVar("Item")
# NoDecode: pydantic-settings would otherwise parse a list-typed variable as JSON before the split sees it.
CommaSeparatedList = Annotated[list[Item], NoDecode, BeforeValidator(split_commas)]
"""A list setting written as comma-separated text, e.g. PRAVIS_CORS_ORIGINS=https://a.example,https://b.example."""
CommaSeparatedSet = Annotated[frozenset[Item], NoDecode, BeforeValidator(split_commas)]


class ClickHouseSettings(BaseModel):
    clickhouse_url: str = f"http://{ports.LOCAL_HOST}:{ports.WAREHOUSE}/pravis"
    """Any ClickHouse HTTP URL, credentials included (`pravis_schemas.clickhouse_url` reads it)."""


class DataDirSettings(BaseModel):
    data_dir: Path = Path(".pravis")
    """Files a process keeps on its host: API keys, reports, the stream worker's Faust data, the embedded
    chdb."""


class LogSettings(BaseModel):
    log_format: LogFormat = "console"
    """`json` (one object per line) in production, `console` for people."""
