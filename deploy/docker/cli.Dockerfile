# syntax=docker/dockerfile:1.7
# The `pravis` operator CLI (topics create, migrate, keys, sql, rollup): the compose init job.
# Build from the repository root: docker build -f deploy/docker/cli.Dockerfile -t pravis/cli .

FROM ghcr.io/astral-sh/uv:0.13.9-python3.11-bookworm-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY . /app
# Only this worker's distribution and its dependencies, installed (not editable) into /app/.venv.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package pravis-local

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 pravis \
    && useradd --system --uid 10001 --gid pravis --home-dir /app --shell /usr/sbin/nologin pravis \
    && mkdir -p /data && chown pravis:pravis /data
COPY --from=build --chown=pravis:pravis /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PRAVIS_LOG_FORMAT=json PRAVIS_DATA_DIR=/data
WORKDIR /app
USER 10001
CMD ["pravis", "--help"]
