"""Each worker's wheel on its own: built from the workspace, installed into a fresh venv with only the wheels
of the workspace packages it declares and the libraries they declare (at the lockfile's versions), and every
module it ships imported there. In the workspace venv every library is installed, so an undeclared one only
shows up here.

uv reads and fills the one shared uv cache, offline first: after `uv sync` it holds every locked wheel, and
only a machine with an empty cache goes to PyPI. Each venv is made anew at every run, at a fixed path under
artifacts/, so the bytecode of its libraries (kept apart by `-X pycache_prefix`) is compiled once, not each
time: that compilation was most of this test's time."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.workspace import ROOT, SCHEMAS, WORKERS, Member, members

MEMBERS = members()
DISTRIBUTIONS = {member.distribution: member for member in MEMBERS.values()}
UV = os.environ.get("UV") or shutil.which("uv") or "uv"
VENVS = ROOT / "artifacts" / "wheel-check"

ENTRY_POINTS = {
    "pravis_gateway": {"pravis_gateway.__main__", "pravis_gateway.app"},
    "pravis_stream": {"pravis_stream.__main__", "pravis_stream.app"},
    "pravis_rollups": {"pravis_rollups.loader", "pravis_rollups.scheduler", "pravis_rollups.privacy"},
    "pravis_dashboards": {"pravis_dashboards.__main__", "pravis_dashboards.app", "pravis_dashboards.grafana"},
    "pravis_sdk": {"pravis_sdk", "pravis_sdk.aio", "pravis_sdk.asgi", "pravis_sdk.wsgi"},
    SCHEMAS: {"pravis_schemas.export"},
}
"""What the Dockerfiles, the process runner and the SDK's README run or import."""
PACKAGE_DATA = {"pravis_dashboards": {"runbooks.md", "templates/page.html", "static/dashboards.css"}}
"""Files read at run time that are not modules: the page the dashboards serve at /runbooks among them."""

IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys

package = importlib.import_module(sys.argv[1])
imported, failed = [package.__name__], {}
for module in pkgutil.walk_packages(package.__path__, package.__name__ + ".", onerror=failed.setdefault):
    try:
        importlib.import_module(module.name)
        imported.append(module.name)
    except Exception as exc:
        failed[module.name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"file": package.__file__, "imported": imported, "failed": failed}))
"""


def uv(*args: str | Path, cwd: Path = ROOT) -> None:
    """Run uv offline, and online only when the cache lacks something."""
    environment = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    command = [UV, *map(str, args)]
    if subprocess.run([*command, "--offline"], cwd=cwd, env=environment, capture_output=True).returncode:
        online = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True)
        assert online.returncode == 0, f"{' '.join(command)}\n{online.stderr}"


def workspace_closure(member: Member) -> list[Member]:
    """The member and every workspace member it declares, directly or through another."""
    found, pending = {member.package: member}, [member]
    while pending:
        for name in pending.pop().dependencies & DISTRIBUTIONS.keys():
            needed = DISTRIBUTIONS[name]
            if needed.package not in found:
                found[needed.package] = needed
                pending.append(needed)
    return list(found.values())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheels of every member, and the lockfile's versions of every library as pip constraints."""
    out = tmp_path_factory.mktemp("wheels")
    uv("build", "--all-packages", "--wheel", "--out-dir", out, "--quiet")
    constraints = out / "constraints.txt"
    uv(
        "export", "--frozen", "--all-packages", "--no-dev", "--no-hashes", "--no-emit-workspace",
        "--format", "requirements-txt", "--quiet", "--output-file", constraints,
    )  # fmt: skip
    return out, constraints


@pytest.mark.parametrize("package", [*sorted(WORKERS), SCHEMAS])
def test_the_wheel_alone_imports_every_module(package: str, built: tuple[Path, Path], tmp_path: Path) -> None:
    wheels, constraints = built
    venv = VENVS / package
    python = venv / "bin" / "python"
    shutil.rmtree(venv, ignore_errors=True)
    uv("venv", "--quiet", "--python", sys.executable, venv)
    closure = workspace_closure(MEMBERS[package])
    needed = [next(wheels.glob(f"{m.distribution.replace('-', '_')}-*.whl")) for m in closure]
    uv("pip", "install", "--quiet", "--python", python, "--constraint", constraints, *needed)

    # -I: neither PYTHONPATH nor the working directory may lend it the workspace's sources.
    probe = subprocess.run(
        [python, "-I", "-X", f"pycache_prefix={VENVS / 'pycache'}", "-c", IMPORT_EVERY_MODULE, package],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout.splitlines()[-1])

    assert result["failed"] == {}
    assert Path(result["file"]).is_relative_to(venv)
    assert ENTRY_POINTS[package] <= set(result["imported"])
    shipped = Path(result["file"]).parent
    assert {name for name in PACKAGE_DATA.get(package, ()) if not (shipped / name).is_file()} == set()
