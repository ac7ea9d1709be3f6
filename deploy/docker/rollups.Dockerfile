# syntax=docker/dockerfile:1.7
# Batch-rollups workers, one image: loader (default), scheduler, privacy.
# Run another with e.g. `command: ["python", "-m", "pravis_rollups.scheduler"]` and set
# PRAVIS_HEALTH_PORT to that worker's health port (8092 scheduler, 8093 privacy).
# Build from the repository root: docker build -f deploy/docker/rollups.Dockerfile -t pravis/rollups .

FROM ghcr.io/astral-sh/uv:0.13.9-python3.11-bookworm-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY . /app
# Only this worker's distribution and its dependencies, installed (not editable) into /app/.venv.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package pravis-rollups

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 pravis \
    && useradd --system --uid 10001 --gid pravis --home-dir /app --shell /usr/sbin/nologin pravis \
    && mkdir -p /data && chown pravis:pravis /data
COPY --from=build --chown=pravis:pravis /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PRAVIS_LOG_FORMAT=json PRAVIS_DATA_DIR=/data PRAVIS_LOADER_HEALTH_HOST=0.0.0.0 PRAVIS_SCHEDULER_HEALTH_HOST=0.0.0.0 \
    PRAVIS_PRIVACY_HEALTH_HOST=0.0.0.0
WORKDIR /app
USER 10001
ENV PRAVIS_HEALTH_PORT=8091
EXPOSE 8091
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['PRAVIS_HEALTH_PORT'] + '/healthz', timeout=2)"]
CMD ["python", "-m", "pravis_rollups.loader"]
