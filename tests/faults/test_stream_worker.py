"""kill -9 of the stream worker under load, at a drawn point, after freezing it for a drawn moment (so events
accepted meanwhile are in Kafka and not counted): after a restart its live counters equal what the gateway
accepted (the windows and per-partition cursors are restored from its tables, so nothing is lost or counted
twice)."""

import random
import secrets
import sys
import time

import httpx
import pytest
from pravis_gateway.keys import KeyStore

from tests.faults.conftest import RESULTS
from tests.faults.stack import Load, Stack
from tests.faults.test_faults import KillPoint
from tests.support import services
from tests.support.services import wait_for

pytestmark = pytest.mark.timeout(180)
PROJECT = "faults-stream"


def live_total(url: str) -> int:
    summary = httpx.get(f"{url}/live/{PROJECT}/summary", params={"window": "today"}, timeout=5).json()
    return summary["events"]["total"]


def test_stream_worker_kill_9_counters_resume_exactly(stack: Stack, fault_rng: random.Random) -> None:
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "PRAVIS_KAFKA_BOOTSTRAP": stack.bootstrap,
        "PRAVIS_DATA_DIR": str(stack.data_dir / "stream"),
        "PRAVIS_STREAM_APP_ID": f"faults-stream-{secrets.token_hex(3)}",
        "PRAVIS_STREAM_WEB_PORT": str(port),
        "PRAVIS_STREAM_PERSIST_INTERVAL_S": "0.5",
        "PRAVIS_STREAM_SESSION_TIMEOUT_S": "6",
        "PRAVIS_STREAM_REBALANCE_TIMEOUT_S": "3",
    }
    worker = services.Process("faults-stream", [sys.executable, "-m", "pravis_stream"], stack.log_dir, env)
    key, _ = KeyStore(stack.data_dir / "keys.json").create(PROJECT, "write")
    worker.start()
    try:
        services.wait_for_http(url + "/healthz", worker.popen, timeout_s=90)
        point = KillPoint.draw(fault_rng)
        load = Load(stack.gateway_url, key, "stream-kill").start()
        point.wait(load)
        # Frozen first, so the events accepted from then on are surely not counted when it dies.
        Stack.freeze(worker)
        accepted_at_freeze = len(load.accepted)
        time.sleep(fault_rng.uniform(0.2, 0.5))
        worker.kill()
        killed = time.monotonic()
        uncounted = len(load.accepted) - accepted_at_freeze
        load.wait_accepted(len(load.accepted) + 300)  # accepted while no stream worker runs
        worker.start()
        services.wait_for_http(url + "/healthz", worker.popen, timeout_s=90)
        healthy_after = time.monotonic() - killed
        load.wait_accepted(len(load.accepted) + 200)
        load.stop()
        accepted = len(load.accepted)

        wait_for(lambda: live_total(url) == accepted, timeout_s=60, what="live counters caught up")
        recovered = time.monotonic() - killed

        RESULTS.append(
            {
                "scenario": "stream worker kill -9, restarted",
                "point": str(point),
                "in_flight": f"{uncounted} events accepted while it was frozen before the kill, not counted",
                "accepted": accepted,
                "stored": f"live counter {live_total(url)}",
                "outage_s": round(healthy_after, 2),
                "recover_s": round(recovered, 2),
                "answers": ", ".join(f"{n} x {outcome}" for outcome, n in sorted(load.outcomes.items())),
            }
        )
        assert uncounted > 0, "nothing was accepted between the freeze and the kill"
        assert live_total(url) == accepted
    finally:
        worker.stop()
