"""Property-based run of the gateway's own OpenAPI document (schemathesis) with every check: no input makes it
answer 5xx, and every status, body, header and content type it answers is the one the document promises.

It runs with a write key and with a secret key, so the user-data and admin endpoints are reached too. The
operations whose rules OpenAPI cannot state are listed, with why, in schemathesis-gateway.toml.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).parent / "schemathesis-gateway.toml"


@pytest.mark.parametrize("key_kind", ["write", "secret"])
def test_the_document_tells_the_truth(
    gateway_url: str, api_key: str, secret_key: str, log_dir: Path, key_kind: str, loader
) -> None:
    key = api_key if key_kind == "write" else secret_key
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(CONFIG),
            "run",
            gateway_url + "/openapi.json",
            "--max-examples",
            "30",
            "--generation-deterministic",
            "--warnings",
            "off",
            "--header",
            f"X-API-Key: {key}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    (log_dir / f"schemathesis-{key_kind}.log").write_text(run.stdout + run.stderr)

    assert run.returncode == 0, run.stdout[-4000:]
    generated, passed = re.search(r"(\d+) generated, (\d+) passed", run.stdout).groups()
    assert int(generated) > 100 and generated == passed
