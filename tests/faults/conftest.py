"""One fault-injection stack for the whole folder: its own broker, warehouse, loader and gateway processes."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from pravis_gateway.keys import KeyStore

from tests.faults.stack import Stack

RESULTS: list[dict] = []


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


@pytest.fixture(scope="package", autouse=True)
def results_table() -> Iterator[list[dict]]:
    """Printed at the end (pytest -s) and written to artifacts/faults.md (figures for docs/reliability.md)."""
    yield RESULTS
    if RESULTS:
        head = (
            "| scenario | accepted | stored (FINAL) | dup | lost | outage s | catch-up s | answers | notes |"
        )
        lines = [head, "|---|---|---|---|---|---|---|---|---|"]
        lines += [
            f"| {r['scenario']} | {r['accepted']} | {r['stored']} | {r['duplicates']} | {r['lost']} | "
            f"{r.get('outage_s', '')} | {r['catch_up_s']} | {r['statuses']} | {r.get('notes', '')} |"
            for r in RESULTS
        ]
        out = Path(__file__).parents[2] / "artifacts" / "faults.md"
        out.parent.mkdir(exist_ok=True)
        out.write_text("\n".join(lines) + "\n")
        print("\n" + "\n".join(lines))
