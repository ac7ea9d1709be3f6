"""The pipeline's services' `/metrics` become `resource_sample` rows: the reading, the CPU share between two
reads, and a real service's figures landing in the warehouse."""

import secrets

import httpx
import orjson
from pravis_local.resource_report import Reading, ResourceReporter, read_metrics, sample_row
from pravis_rollups import clickhouse

METRICS = """# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.048576e+08
# TYPE process_open_fds gauge
process_open_fds 42.0
# TYPE pravis_events_total counter
pravis_events_total 7.0
"""


def test_a_metrics_body_gives_the_process_figures():
    assert read_metrics(METRICS, 100.0) == Reading(100.0, 12.5, 104_857_600, 42)
    assert read_metrics("# TYPE other gauge\nother 1\n", 100.0) is None


def test_cpu_is_the_counter_increase_over_the_wall_time_between_reads():
    before, after = Reading(100.0, 12.5, 1, 3), Reading(110.0, 15.0, 2_000, 4)

    row = orjson.loads(sample_row("gateway", "h1", "default", before, after))

    assert (row["cpu_percent"], row["rss_bytes"], row["open_fds"]) == (25.0, 2_000, 4)  # 2.5 s of CPU in 10 s
    assert (row["service"], row["host"], row["anonymous_id"]) == ("gateway", "h1", "process:gateway@h1")
    assert row["event_type"] == "resource_sample" and row["project_id"] == "default"
    assert sample_row("gateway", "h1", "default", None, after) is None  # first read
    assert sample_row("gateway", "h1", "default", after, before) is None  # restarted: counter went down


def test_a_service_that_stops_answering_starts_over():
    reporter = ResourceReporter({"loader": "http://x/metrics"}, "default", host="h1")
    assert reporter.rows({"loader": METRICS}, 100.0) == []
    assert len(reporter.rows({"loader": METRICS.replace("12.5", "13.5")}, 110.0)) == 1
    assert reporter.rows({"loader": None}, 120.0) == [] and reporter.last == {}


def test_the_gateway_s_own_figures_land_in_the_warehouse(gateway_url: str, clickhouse_server: str):
    url = f"{clickhouse_server}/pravis_resources_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    reporter = ResourceReporter({"gateway": f"{gateway_url}/metrics"}, "default", host="h1")
    rows = []
    for at in (1000.0, 1001.0):
        rows += reporter.rows({"gateway": httpx.get(f"{gateway_url}/metrics").text}, at)
    with clickhouse.connect(url) as client:
        clickhouse.insert_json_rows(client, "events", rows)
        stored = client.query(
            "SELECT service, host, cpu_percent >= 0, rss_bytes > 10000000, open_fds > 0 FROM events FINAL "
            "WHERE event_type = 'resource_sample'"
        ).result_rows

    assert stored == [("gateway", "h1", True, True, True)]
