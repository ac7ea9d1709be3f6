"""`python -m pravis_dashboards [--host H] [--port P]`: serve the dashboards (default port 8080)."""

import argparse
import logging

import structlog
import uvicorn

from pravis_dashboards.app import create_app
from pravis_dashboards.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="pravis_dashboards")
    parser.add_argument("--host", help="default PRAVIS_DASHBOARDS_HOST")
    parser.add_argument("--port", type=int, help="default PRAVIS_DASHBOARDS_PORT (8080)")
    args = parser.parse_args()
    overrides = {"dashboards_host": args.host, "dashboards_port": args.port}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    renderer = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    uvicorn.run(
        create_app(settings),
        host=settings.dashboards_host,
        port=settings.dashboards_port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
