"""`python -m pravis_gateway [--host H] [--port P] [--workers N]`: serve the gateway with uvicorn."""

import argparse
import os
import tempfile

import uvicorn
from pravis_schemas.logs import configure_logging
from prometheus_client import start_http_server

from pravis_gateway.app import metrics_registry
from pravis_gateway.settings import settings


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
    if settings.gateway_metrics_port is not None:
        # This process outlives the workers uvicorn spawns and, with one worker, is the worker: either way it
        # sees every count (in memory, or summed from PROMETHEUS_MULTIPROC_DIR).
        start_http_server(settings.gateway_metrics_port, args.host, registry=metrics_registry())
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
