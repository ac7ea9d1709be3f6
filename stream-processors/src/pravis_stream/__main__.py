"""`python -m pravis_stream [--port P]`: run one stream worker (Faust) until SIGINT/SIGTERM."""

import argparse
import asyncio

import faust
from pravis_schemas import topics
from pravis_schemas.kafka_security import kafka_client_options
from pravis_schemas.logs import configure_logging

from pravis_stream.app import Worker
from pravis_stream.kafka import partition_count
from pravis_stream.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="pravis_stream")
    parser.add_argument("--host", help="web (live API) host; default PRAVIS_STREAM_WEB_HOST")
    parser.add_argument("--port", type=int, help="web (live API) port; default PRAVIS_STREAM_WEB_PORT")
    parser.add_argument("--loglevel", default="info", choices=["crit", "error", "warn", "info", "debug"])
    args = parser.parse_args()
    overrides = {"stream_web_host": args.host, "stream_web_port": args.port}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format)
    partitions = asyncio.run(
        partition_count(settings.kafka_bootstrap, topics.EVENTS, **kafka_client_options(settings))
    )
    settings.faust_data_dir.mkdir(parents=True, exist_ok=True)
    worker = Worker(settings, partitions)
    asyncio.set_event_loop(asyncio.new_event_loop())
    faust.Worker(
        worker.app, loglevel=args.loglevel, quiet=True, redirect_stdouts=False
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
