"""One fault-injection stack for the whole folder (its own broker, warehouse, loader and gateway processes),
the run's seed for the kill points, and the results table the run prints and writes to artifacts/faults.md."""

import os
import random
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from pravis_gateway.keys import KeyStore

from tests.faults.stack import Stack

RESULTS: list[dict] = []
SEED = int(os.environ.get("PRAVIS_FAULT_SEED") or secrets.randbelow(2**32))
"""Every kill point of a run is drawn from this seed; `PRAVIS_FAULT_SEED=<seed>` replays them."""

COLUMNS = {
    "scenario": "scenario",
    "point": "kill point (drawn)",
    "in_flight": "in flight at the fault",
    "accepted": "accepted",
    "stored": "stored (exact)",
    "raw_copies": "raw copies before merge",
    "lost": "lost",
    "duplicates": "duplicates in plain count() after OPTIMIZE FINAL",
    "outage_s": "outage (s)",
    "recover_s": "time to recover (s)",
    "answers": "gateway answers",
}


@pytest.fixture
def fault_rng(request: pytest.FixtureRequest) -> random.Random:
    """A generator per test, seeded by the run's seed and the test's name, so one scenario run alone draws
    the same kill point as in the full run."""
    print(f"\n{request.node.name}: PRAVIS_FAULT_SEED={SEED}")
    return random.Random(f"{SEED}:{request.node.name}")


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("faults"), log_dir)
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture(scope="package")
def fault_key(stack: Stack) -> str:
    key, _ = KeyStore(stack.data_dir / "keys.json").create("faults", "write")
    return key


def table(results: list[dict]) -> str:
    lines = [
        f"Seed {SEED} (replay: `PRAVIS_FAULT_SEED={SEED} uv run pytest tests/faults -s`)",
        "",
        "| " + " | ".join(COLUMNS.values()) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(str(r.get(key, "—")) for key in COLUMNS) + " |" for r in results]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="package", autouse=True)
def results_table() -> Iterator[list[dict]]:
    """Printed at the end (pytest -s) and written to artifacts/faults.md, the table of docs/reliability.md."""
    yield RESULTS
    if RESULTS:
        text = table(RESULTS)
        out = Path(__file__).parents[2] / "artifacts" / "faults.md"
        out.parent.mkdir(exist_ok=True)
        out.write_text(text)
        print("\n" + text)
