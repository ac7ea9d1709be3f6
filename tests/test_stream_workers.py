"""1, 2 and 3 stream workers on one `events` topic (real processes, real broker) answer the same live summary
and timeseries for a project, also after a kill -9 of one and the rebalance; no answer that claims every
partition is ever smaller than what was already counted.

The events are published as the gateway writes them (rows keyed by user) with event times 6 to 20 minutes ago
(so the 1-hour and 5-minute figures do not move while the test runs), 2% redelivered and some beyond the live
horizon; the expectation is computed here from the rows.
"""

import asyncio
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pravis_schemas import topics

from tests.support import services

PARTITIONS = 3  # the test broker's `events`
VOLATILE = ("as_of", "window_start")
KLL_RANK_ERROR = 0.0133


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def rows(project: str, count: int, now: datetime) -> list[dict[str, Any]]:
    out = []
    for n in range(count):
        happened = now - timedelta(seconds=360 + (n * 7) % 840)  # 6 to 20 minutes ago: answers stay put
        late = n % 25 == 0  # queued for three hours: beyond the two-hour horizon
        out.append(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "api_request" if n % 3 else "page_view",
                "timestamp": iso(happened - timedelta(hours=3) if late else happened),
                "user_id": f"user-{n % 60}",
                "properties": {},
                "project_id": project,
                "received_at": iso(now),
                **(
                    {"endpoint": "/api/v1/items", "method": "GET", "status": 200, "duration_ms": n % 40}
                    if n % 3
                    else {}
                ),
            }
        )
    return out + out[::50]  # 2% redelivered


def publish(bootstrap: str, events: list[dict[str, Any]]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for event in events:
                await producer.send(topics.EVENTS, orjson.dumps(event), key=event["user_id"].encode())
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())


def counted(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events live counts count: once per event_id, arrived within the two-hour horizon."""
    unique = {}
    for event in events:
        happened = datetime.fromisoformat(event["timestamp"])
        if datetime.fromisoformat(event["received_at"]) - happened <= timedelta(hours=2):
            unique[event["event_id"]] = event
    return list(unique.values())


def expected_total(events: list[dict[str, Any]]) -> int:
    return len(counted(events))


class Workers:
    def __init__(self, bootstrap: str, log_dir: Path, tmp: Path) -> None:
        self.env = {
            "PRAVIS_KAFKA_BOOTSTRAP": bootstrap,
            "PRAVIS_STREAM_APP_ID": f"pravis-stream-n-{secrets.token_hex(4)}",
            "PRAVIS_STREAM_PERSIST_INTERVAL_S": "0.5",
            "PRAVIS_STREAM_SESSION_TIMEOUT_S": "6",
            "PRAVIS_STREAM_REBALANCE_TIMEOUT_S": "3",
            "PRAVIS_STREAM_PEER_TIMEOUT_S": "1",
        }
        self.log_dir, self.tmp = log_dir, tmp
        self.running: dict[str, services.Process] = {}

    def start(self) -> str:
        port = services.free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**self.env, "PRAVIS_STREAM_WEB_PORT": str(port), "PRAVIS_DATA_DIR": str(self.tmp / str(port))}
        process = services.Process(
            f"stream-n{len(self.running)}", [sys.executable, "-m", "pravis_stream"], self.log_dir, env
        ).start()
        services.wait_for_http(url + "/healthz", process.popen, timeout_s=120)
        self.running[url] = process
        return url


@pytest.fixture
def workers(kafka_bootstrap: str, log_dir: Path, tmp_path: Path) -> Iterator[Workers]:
    fleet = Workers(kafka_bootstrap, log_dir, tmp_path)
    try:
        yield fleet
    finally:
        for process in fleet.running.values():
            process.stop()


def answers(url: str, project: str) -> tuple[dict[str, Any], dict[str, Any]]:
    summary = httpx.get(f"{url}/live/{project}/summary", params={"window": "1h"}, timeout=10).json()
    series = httpx.get(f"{url}/live/{project}/timeseries", params={"minutes": 30}, timeout=10).json()
    return summary, series


def within_kll_bound(latency: dict[str, float], durations: list[float]) -> bool:
    """Each reported quantile's rank among the true durations is within the KLL rank error (±1.33% at 99%
    confidence for k=200; ties widen a value's rank to an interval)."""
    ordered = sorted(durations)
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        below = sum(d < latency[name] for d in ordered) / len(ordered)
        upto = sum(d <= latency[name] for d in ordered) / len(ordered)
        if not below - KLL_RANK_ERROR <= q <= upto + KLL_RANK_ERROR:
            return False
    return True


def comparable(
    summary: dict[str, Any], series: dict[str, Any], durations: list[float]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answer without the fields that move with the clock, and with latency quantiles (merged KLL
    sketches, whose compaction depends on the merge order) checked against the truth and then left out;
    the timeseries as its non-empty minutes."""
    api = summary["api"]
    for block in (api, *api["endpoints"].values()):
        assert within_kll_bound(block.pop("latency_ms"), durations), block
    rows = {}
    for row in series["minutes"]:
        if row["events"]:
            rows[row["minute"]] = {k: v for k, v in row.items() if k != "api_latency_ms"}
    return {k: v for k, v in summary.items() if k not in VOLATILE}, rows


def settle(
    urls: list[str], project: str, events: list[dict[str, Any]], seen: int = 0, limit_s: float = 180.0
) -> list[tuple]:
    """Poll every worker until each answers for every partition with all `events` counted; on the way,
    every answer that claims all partitions holds at least the `seen` events counted before (a rebalance or
    a kill never makes it silently smaller) and never more than there are."""
    total = expected_total(events)
    durations = [e["duration_ms"] for e in counted(events) if "duration_ms" in e]
    deadline = time.monotonic() + limit_s
    while True:
        found = []
        for url in urls:
            summary, series = answers(url, project)
            if summary["partitions"] == list(range(PARTITIONS)):
                assert seen <= summary["events"]["total"] <= total, (url, summary["events"])
                assert series["partitions"] == list(range(PARTITIONS))
            found.append((summary, series))
        if all(
            s["partitions"] == list(range(PARTITIONS)) and s["events"]["total"] == total for s, _ in found
        ):
            return [comparable(s, t, durations) for s, t in found]
        assert time.monotonic() < deadline, f"workers never all answered with every event counted: {found}"
        time.sleep(0.3)


def test_one_two_three_workers_and_a_kill_answer_the_same(workers: Workers, kafka_bootstrap: str):
    project = f"n-workers-{secrets.token_hex(3)}"
    events = rows(project, 600, datetime.now(UTC))
    publish(kafka_bootstrap, events)

    first = workers.start()
    (alone,) = settle([first], project, events)
    assert alone[0]["events"]["total"] == expected_total(events)
    assert alone[0]["active_users"]["last_1h"] == 60  # exact below the HLL's list-mode size

    workers.start()
    seen = expected_total(events)
    assert settle(list(workers.running), project, events, seen) == [alone] * 2
    third = workers.start()
    assert settle(list(workers.running), project, events, seen) == [alone] * 3
    for url in workers.running:
        alerts = httpx.get(f"{url}/live/{project}/alerts", timeout=10)
        assert alerts.status_code == 200 and alerts.json() == {"project_id": project, "firing": []}
        assert project in httpx.get(f"{url}/live/projects", timeout=10).json()["projects"]

    workers.running.pop(third).kill()
    more = rows(project, 90, datetime.now(UTC))
    publish(kafka_bootstrap, more)
    after = settle(list(workers.running), project, events + more, seen)
    assert after[0] == after[1]
    assert after[0][0]["events"]["total"] == expected_total(events + more)


def test_parts_requests_name_what_is_wrong(workers: Workers):
    url = workers.start()
    bad = httpx.get(f"{url}/live/p/parts", params={"kind": "minutes", "since": "x", "partitions": "0"})
    assert bad.status_code == 400 and "since must be a minute" in bad.json()["error"]
    bad = httpx.get(f"{url}/live/p/parts", params={"kind": "minutes", "since": "2026-11-25T10:00"})
    assert bad.status_code == 400 and "partitions" in bad.json()["error"]
    bad = httpx.get(f"{url}/live/p/parts", params={"kind": "all", "partitions": "0"})
    assert bad.status_code == 400 and "kind must be" in bad.json()["error"]
