"""The validation ceiling `bench.gateway` measures the gateway against: an endpoint that only validates.

It parses the body as the gateway's `EventBatch` and validates its events with `validate_batch` (the project's
own models, one pydantic-core pass), and answers the gateway's JSON shape: no auth, enrichment, consent,
metrics or publishing. Served by uvicorn as the gateway is (`python -m bench.bare_validation --port P`).
"""

import argparse

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pravis_schemas import EventBatch, validate_batch


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/api/v1/analytics/events")
    async def validate_only(request: Request) -> JSONResponse:
        batch = EventBatch.model_validate_json(await request.body())
        valid, invalid = validate_batch(batch.events)
        if invalid:
            return JSONResponse({"status": "partial", "processed": len(valid), "rejected": len(invalid)})
        return JSONResponse({"status": "ok", "processed": len(valid)})

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app, factory=True, host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
