"""Surveys: `GET /api/v1/surveys` against `GET /api/v1/feature/{name}` on one gateway, and the refresh of five
typical segments against one exact full scan of `events`, in one run.

`python -m bench.surveys --seconds 10 --events 10000000 --users 100000`. The events are made inside the
warehouse (`INSERT ... SELECT` over `numbers()`), so the load generator costs nothing during the timed parts.
Both endpoints are driven by wrk (max throughput, a different user id per request) and hey (half of that rate,
for p99 under normal load). Targets (issue 23): surveys at least 0.8 x the feature endpoint's throughput,
p99 < 20 ms at half load; the refresh at most 3 x the full scan.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pravis_gateway.keys import KeyStore
from pravis_rollups import clickhouse
from pravis_rollups.segment_refresh import refresh_segments
from rich.table import Table

from bench.gateway import Result, console, hey, parse_wrk, with_progress
from tests.support import services

PROJECT = "bench"
SEGMENTS = {
    "regulars": [{"type": "active_days", "min_days": 5, "of_last_days": 30}],
    "searchers": [{"type": "used_feature", "feature_name": "search", "within_days": 30}],
    "unhappy": [{"type": "rating_at_most", "max_rating": 2, "within_days": 90}],
    "variant-b": [{"type": "experiment_variant", "experiment_key": "checkout", "variant": "b"}],
    "mobile-de": [
        {"type": "attribute", "attribute": "device", "values": ["iPhone"]},
        {"type": "attribute", "attribute": "locale", "values": ["de-DE"]},
    ],
}
SURVEY = {
    "status": "running",
    "segments": ["searchers"],
    "questions": [{"id": "nps", "type": "nps", "text": "Recommend us?"}],
    "cap": {"days_between_surveys": 0},
}
EXPERIMENT = {"status": "running", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}]}
WRK_GET = """
local i, users = 0, tonumber(os.getenv("PRAVIS_BENCH_USERS"))
wrk.headers["X-API-Key"] = os.getenv("PRAVIS_BENCH_KEY")
request = function()
  i = i + 1
  return wrk.format("GET", os.getenv("PRAVIS_BENCH_PATH") .. "?user_id=u" .. (i % users))
end
"""
FILL_SQL = """
INSERT INTO events (event_id, event_type, project_id, timestamp, received_at, user_id, feature_name,
                    experiment_key, variant, in_experiment, rating, locale, device)
SELECT generateUUIDv4(number), kind, {project:String}, at, at,
       concat('u', toString(cityHash64(number, 1) % {users:UInt64})),
       if(kind = 'feature_use', ['search', 'export', 'voice'][cityHash64(number, 3) % 3 + 1], NULL),
       if(kind = 'experiment_exposure', 'checkout', NULL),
       if(kind = 'experiment_exposure', ['a', 'b'][cityHash64(number, 4) % 2 + 1], NULL),
       if(kind = 'experiment_exposure', true, NULL),
       if(kind = 'feedback', toUInt8(cityHash64(number, 5) % 5 + 1), NULL),
       ['de-DE', 'en-US', 'fr-FR'][cityHash64(number, 6) % 3 + 1],
       ['iPhone', 'Pixel', 'Other'][cityHash64(number, 7) % 3 + 1]
FROM (
    SELECT number, cityHash64(number, 2) % 100 AS draw,
           multiIf(draw < 60, 'page_view', draw < 80, 'feature_use', draw < 90, 'experiment_exposure',
                   draw < 95, 'feedback', 'button_click') AS kind,
           now64(3) - toIntervalSecond(cityHash64(number, 8) % (90 * 86400)) AS at
    FROM numbers({events:UInt64})
)"""
FULL_SCAN_SQL = "SELECT count(), uniqExact(distinct_id) FROM events FINAL"


def wrk_get(
    url: str, path: str, key: str, users: int, seconds: float, connections: int, label: str
) -> Result:
    script = Path(tempfile.mkdtemp(prefix="pravis-bench-")) / "get.lua"
    script.write_text(WRK_GET)
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url]
    env = {
        "PRAVIS_BENCH_KEY": key,
        "PRAVIS_BENCH_PATH": path,
        "PRAVIS_BENCH_USERS": str(users),
        "PATH": "/usr/bin:/bin",
    }
    return parse_wrk(with_progress(label, seconds, command, env), label)


def fill(client, events: int, users: int) -> float:
    began = time.perf_counter()
    with console.status(f"making {events:,} events of {users:,} users in the warehouse"):
        client.command(FILL_SQL, parameters={"project": PROJECT, "events": events, "users": users})
        client.command("OPTIMIZE TABLE events FINAL")
    return time.perf_counter() - began


def timed(action) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="refresh and full scan runs (best of)")
    args = parser.parse_args()
    for tool in ("wrk", "hey"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install -y wrk hey (make bench installs them)")
    work = Path(tempfile.mkdtemp(prefix="pravis-bench-surveys-"))
    write_key, _ = KeyStore(work / "keys.json").create(PROJECT, "write")
    secret_key, _ = KeyStore(work / "keys.json").create(PROJECT, "secret")
    with (
        services.clickhouse_server_url(work / "warehouse", work) as server,
        services.kafka_bootstrap(work) as kafka,
    ):
        url = f"{server}/pravis_bench_surveys"
        clickhouse.migrate(url)
        with clickhouse.connect(url) as client:
            fill_s = fill(client, args.events, args.users)
            env = {
                "PRAVIS_KAFKA_BOOTSTRAP": kafka,
                "PRAVIS_DATA_DIR": str(work),
                "PRAVIS_CLICKHOUSE_URL": url,
                "PRAVIS_RATE_LIMIT_EVENTS_PER_S": "0",
            }
            port = services.free_port()
            gateway = services.Process(
                "bench-gateway-surveys",
                [sys.executable, "-m", "pravis_gateway", "--port", str(port)],
                work,
                env,
            ).start()
            base = f"http://127.0.0.1:{port}"
            try:
                services.wait_for_http(base + "/readyz", gateway.popen)
                admin = {"X-API-Key": secret_key}
                for key, conditions in SEGMENTS.items():
                    httpx.put(
                        f"{base}/api/v1/segments/{key}",
                        json={"conditions": conditions},
                        headers=admin,
                        timeout=30,
                    ).raise_for_status()
                httpx.put(
                    f"{base}/api/v1/surveys/nps", json=SURVEY, headers=admin, timeout=30
                ).raise_for_status()
                httpx.put(
                    f"{base}/api/v1/experiments/checkout", json=EXPERIMENT, headers=admin, timeout=30
                ).raise_for_status()
                refreshes = [timed(lambda: refresh_segments(client)) for _ in range(args.repeat)]
                scans = [timed(lambda: client.query(FULL_SCAN_SQL)) for _ in range(args.repeat)]
                members = client.query("SELECT count() FROM segment_members").result_rows[0][0]
                services.wait_for(
                    lambda: httpx.get(
                        f"{base}/api/v1/surveys", params={"user_id": "u1"}, headers={"X-API-Key": write_key}
                    ).json()["ready"],
                    what="the gateway's first survey load",
                )
                results = []
                for path in ("/api/v1/feature/checkout", "/api/v1/surveys"):
                    peak = wrk_get(
                        base,
                        path,
                        write_key,
                        args.users,
                        args.seconds,
                        args.connections,
                        f"GET {path}, max load",
                    )
                    # One user id at half load: the lookup costs the same for any id.
                    half = hey(
                        f"{base}{path}?user_id=u1",
                        write_key,
                        None,
                        args.seconds,
                        peak.requests_per_s / 2,
                        f"GET {path}, half load",
                    )
                    results += [peak, half]
            finally:
                gateway.stop()

    table = Table("path", "requests/s", "non-2xx", "p50 ms", "p99 ms", "vs feature (max)")
    for r in results:
        ratio = f"{r.requests_per_s / results[0].requests_per_s:.2f}" if "max" in r.label else ""
        table.add_row(
            r.label, f"{r.requests_per_s:,.0f}", str(r.non_2xx), f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", ratio
        )
    console.print(table)
    refresh, scan = min(refreshes), min(scans)
    console.print(
        f"segment refresh, {len(SEGMENTS)} segments, {args.events:,} events / {args.users:,} users "
        f"({members:,} member ids): {refresh:.2f} s; one exact full scan (FINAL, count + uniqExact): "
        f"{scan:.2f} s; "
        f"ratio {refresh / scan:.2f} (best of {args.repeat}; data made in {fill_s:.0f} s)"
    )


if __name__ == "__main__":
    main()
