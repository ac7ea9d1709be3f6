"""The pipeline's services' processes become `resource_sample` rows: the reading of real processes, the CPU
share between two reads, and the samples of the running test stack (gateway, loader, broker, warehouse)
landing in the warehouse."""

import os
import secrets
import threading
from urllib.parse import urlsplit

import orjson
from pravis_local.resource_report import Reading, ResourceReporter, read_processes, sample_row
from pravis_rollups import clickhouse


def test_a_reading_sums_the_processes_of_a_service() -> None:
    me = os.getpid()
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        reading = read_processes([me], 5.0)
        threads_now, fds_now = threading.active_count(), len(os.listdir(f"/proc/{me}/fd"))
    finally:
        stop.set()
        helper.join()
    times = os.times()

    assert reading is not None and reading.pids == (me,) and reading.at == 5.0
    assert 0 < reading.cpu_seconds <= times.user + times.system
    assert reading.threads >= threads_now  # Python's threads, plus any a library started natively
    assert reading.open_fds == fds_now  # each listing of the directory counts its own descriptor once
    assert read_processes([], 5.0) is None
    assert read_processes([2**22 + 12_345], 5.0) is None  # above the default pid_max: never a process


def test_cpu_is_the_time_added_over_the_wall_time_between_reads_of_the_same_processes() -> None:
    before, after = Reading(100.0, (7, 9), 12.5, 1, 3, 5), Reading(110.0, (7, 9), 15.0, 2_000, 4, 6)

    row = orjson.loads(sample_row("gateway", "h1", "default", before, after))

    assert (row["cpu_percent"], row["rss_bytes"], row["open_fds"], row["threads"]) == (25.0, 2_000, 4, 6)
    assert (row["service"], row["host"], row["anonymous_id"]) == ("gateway", "h1", "process:gateway@h1")
    assert row["event_type"] == "resource_sample" and row["project_id"] == "default" and row["pid"] == 7
    assert sample_row("gateway", "h1", "default", None, after) is None  # first read
    restarted = Reading(120.0, (7, 11), 0.5, 2_000, 4, 6)
    assert sample_row("gateway", "h1", "default", after, restarted) is None  # other processes


def test_a_service_that_stops_listening_starts_over() -> None:
    reporter = ResourceReporter({"loader": 1}, "default", host="h1")
    first, second = Reading(100.0, (7,), 1.0, 10, 1, 1), Reading(110.0, (7,), 2.0, 10, 1, 1)
    assert reporter.rows({"loader": first}) == []
    assert len(reporter.rows({"loader": second})) == 1
    assert reporter.rows({"loader": None}) == [] and reporter.last == {}


def test_samples_of_the_running_stack_land_in_the_warehouse(
    gateway_url: str, loader, kafka_bootstrap: str, clickhouse_server: str, worker_env: dict[str, str]
) -> None:
    ports = {
        "gateway": urlsplit(gateway_url).port,
        "loader": int(worker_env["PRAVIS_LOADER_HEALTH_PORT"]),
        "broker": int(kafka_bootstrap.rsplit(":", 1)[1]),
        "warehouse": urlsplit(clickhouse_server).port,
    }
    reporter = ResourceReporter(ports, "default", host="h1")
    # Injected read times: the CPU share is over these, whatever the wall clock did between the two reads.
    assert reporter.rows(reporter.read(1000.0)) == []
    rows = reporter.rows(reporter.read(1010.0))
    url = f"{clickhouse_server}/pravis_resources_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    with clickhouse.connect(url) as client:
        clickhouse.insert_json_rows(client, "events", rows)
        stored = client.query(
            "SELECT service, host, pid, cpu_percent >= 0, rss_bytes > 1000000, open_fds > 0, threads > 0 "
            "FROM events FINAL WHERE event_type = 'resource_sample' ORDER BY service"
        ).result_rows

    assert [row[0] for row in stored] == sorted(ports)
    assert all(row[1] == "h1" and row[3:] == (True, True, True, True) for row in stored)
    assert dict((row[0], row[2]) for row in stored)["loader"] == loader.popen.pid
