"""`python -m pravis_gateway [--host H] [--port P] [--workers N]`: serve the gateway with uvicorn."""

import argparse
import logging
import os
import tempfile

import structlog
import uvicorn

from pravis_gateway.settings import settings


def configure_logging(fmt: str) -> None:
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="pravis_gateway")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.gateway_port)
    parser.add_argument("--workers", type=int, default=settings.gateway_workers)
    args = parser.parse_args()
    configure_logging(settings.log_format)
    if args.workers > 1:
        # Each worker process counts on its own; prometheus_client sums them through files in this directory.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="pravis-gateway-metrics-"))
    uvicorn.run(
        "pravis_gateway.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,
    )


if __name__ == "__main__":
    main()
