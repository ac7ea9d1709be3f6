"""Property-based run of the gateway's own OpenAPI document (schemathesis): no input makes it answer 5xx."""

import subprocess
import sys
from pathlib import Path

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_no_input_causes_a_server_error(gateway_url: str, api_key: str, log_dir: Path) -> None:
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            gateway_url + "/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--generation-deterministic",
            "--header",
            f"X-API-Key: {api_key}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    (log_dir / "schemathesis.log").write_text(run.stdout + run.stderr)

    assert run.returncode == 0, run.stdout[-4000:]
    assert "No issues found" in run.stdout
