"""Write the JSON Schemas SDK authors validate against: one file per event type plus `batch.schema.json`.

Run `pravis-schemas-export [DIRECTORY]` (default `schemas/json`); the committed copies live there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from pravis_schemas.events import (
    CUSTOM_TAG,
    EVENT_MODELS,
    MAX_EVENTS_PER_BATCH,
    CustomEvent,
    Event,
    EventBase,
    UtcDatetime,
)

DEFAULT_DIRECTORY = Path("schemas/json")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _BatchDocument(BaseModel):
    """`EventBatch` as SDKs should build it: the gateway keeps events raw, SDKs send typed events."""

    model_config = ConfigDict(extra="forbid", title="EventBatch")

    events: Annotated[
        list[Event],
        Field(
            max_length=MAX_EVENTS_PER_BATCH,
            description=(
                f"At most {MAX_EVENTS_PER_BATCH} events by default (the gateway's limit is configurable). "
                "Each is validated on its own; invalid ones are reported by index, the rest are accepted."
            ),
        ),
    ]
    sent_at: UtcDatetime | None = Field(
        default=None, description="When the SDK sent the batch; the gateway uses it to correct clock skew."
    )


def _document(model: type[BaseModel], title: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema["title"] = title
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def schemas() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema document, for every event type, custom events and the batch body."""
    models: dict[str, type[EventBase]] = {**EVENT_MODELS, CUSTOM_TAG: CustomEvent}
    documents = {f"{name}.schema.json": _document(model, name) for name, model in models.items()}
    documents["batch.schema.json"] = _document(_BatchDocument, "batch")
    return documents


def export_schemas(directory: Path = DEFAULT_DIRECTORY) -> list[Path]:
    """Write every schema into `directory` (created if missing) and return the written paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in schemas().items():
        path = directory / name
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pravis-schemas-export", description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIRECTORY)
    args = parser.parse_args(argv)
    for path in export_schemas(args.directory):
        print(path)


if __name__ == "__main__":
    main()
