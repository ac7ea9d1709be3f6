"""Prometheus metrics of the gateway (multiprocess-safe when PROMETHEUS_MULTIPROC_DIR is set)."""

from prometheus_client import Counter, Histogram

EVENTS_ACCEPTED = Counter("pravis_gateway_events_accepted_total", "Events published to Kafka", ["project"])
EVENTS_REJECTED = Counter("pravis_gateway_events_rejected_total", "Events refused, by reason", ["reason"])
EVENTS_DROPPED_NO_CONSENT = Counter(
    "pravis_gateway_events_dropped_no_consent_total", "Valid events dropped for lack of the user's consent"
)
GPC_OPT_OUTS = Counter(
    "pravis_gateway_gpc_opt_outs_total", "Consent withdrawals recorded for the Global Privacy Control signal"
)
REFUSALS = Counter(
    "pravis_gateway_refusals_total",
    "Requests refused as a whole (body too large or too slow, malformed, unauthorized, ...), by reason",
    ["reason"],
)
SERVER_ERRORS = Counter(
    "pravis_gateway_server_errors_total", "Requests answered 500 after an unhandled exception", ["route"]
)
REQUESTS = Counter(
    "pravis_gateway_requests_total", "Ingest requests by endpoint and status", ["endpoint", "status"]
)
KAFKA_ERRORS = Counter(
    "pravis_gateway_kafka_errors_total", "Publishes that Kafka did not acknowledge in time"
)
LATENCY = Histogram(
    "pravis_gateway_request_seconds",
    "Ingest request latency",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "pravis_gateway_batch_events", "Events per posted batch", buckets=(1, 5, 10, 25, 50, 100, 250, 500)
)
