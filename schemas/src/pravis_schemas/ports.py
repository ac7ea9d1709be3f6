"""Where every Pravis service listens by default: one table for the embedded stack (`pravis up`) and for each
worker's own settings, so the stack and a worker started alone agree without either being told.

Each is only a default: every port is overridable by its setting, and tests always use free ports.
"""

LOCAL_HOST = "127.0.0.1"
"""Services bind to loopback unless told otherwise, and the defaults below are reached there."""

BROKER = 9092
"""Kafka (Tansu in the embedded stack)."""
WAREHOUSE = 8123
"""ClickHouse HTTP interface (chdb behind it in the embedded stack)."""
GATEWAY = 8000
STREAM_WEB = 6066
"""The stream worker's live API, which the dashboards read."""
DASHBOARDS = 8080
LOADER_HEALTH = 8091
SCHEDULER_HEALTH = 8092
PRIVACY_HEALTH = 8093
MONITOR = 8094
"""The embedded stack monitor's /metrics."""
