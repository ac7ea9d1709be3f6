"""`python -m pravis_dashboards [--host H] [--port P]`: serve the dashboards."""

import argparse

import uvicorn
from pravis_schemas import ports
from pravis_schemas.logs import configure_logging

from pravis_dashboards.app import create_app
from pravis_dashboards.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="pravis_dashboards")
    parser.add_argument("--host", help="default PRAVIS_DASHBOARDS_HOST")
    parser.add_argument("--port", type=int, help=f"default PRAVIS_DASHBOARDS_PORT ({ports.DASHBOARDS})")
    args = parser.parse_args()
    overrides = {"dashboards_host": args.host, "dashboards_port": args.port}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.dashboards_host,
        port=settings.dashboards_port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
