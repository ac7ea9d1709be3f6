"""`python -m pravis_gateway [--host H] [--port P]`: serve the gateway with uvicorn."""

import argparse

import uvicorn

from pravis_gateway.app import create_app
from pravis_gateway.settings import settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="pravis_gateway")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.gateway_port)
    args = parser.parse_args()
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
