"""The uv workspace as its pyproject files declare it: each member's distribution, import package, source
folder and declared dependencies, and the imports its source makes. Read by the architecture and packaging
tests, so both judge the same description of the tree."""

import ast
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]

WORKERS = frozenset({"pravis_gateway", "pravis_stream", "pravis_rollups", "pravis_dashboards", "pravis_sdk"})
"""Import packages that run (or ship) on their own and meet only through Kafka, ClickHouse and HTTP."""
SCHEMAS = "pravis_schemas"
LOCAL_STACK = "pravis_local"


@dataclass(frozen=True)
class Member:
    distribution: str
    """Canonical distribution name, e.g. `pravis-gateway`."""
    package: str
    """Import package, e.g. `pravis_gateway`."""
    folder: Path
    source: Path
    """The import package's folder under `src/`: everything in it ships in the wheel."""
    dependencies: frozenset[str]
    """Canonical names of the distributions `[project].dependencies` declares."""
    extras: frozenset[str]
    """Canonical names of the distributions its extras (`[project.optional-dependencies]`) add: libraries an
    integration imports only when the caller brings them (Flask for the SDK's `instrument_flask`)."""


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str
    """The absolute module name as written (`a.b` for `import a.b` and `from a.b import c`)."""

    @property
    def top(self) -> str:
        return self.module.split(".", 1)[0]

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} imports {self.module}"


def _names(requirements: Iterable[str]) -> frozenset[str]:
    return frozenset(canonicalize_name(Requirement(r).name) for r in requirements)


def _toml(path: Path) -> dict:
    return tomllib.loads(path.read_text())


@cache
def members() -> dict[str, Member]:
    """Every workspace member by its import package, in the order the root pyproject lists them."""
    found = {}
    for name in _toml(ROOT / "pyproject.toml")["tool"]["uv"]["workspace"]["members"]:
        folder = ROOT / name
        declared = _toml(folder / "pyproject.toml")
        (source,) = declared["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
        project = declared["project"]
        member = Member(
            distribution=canonicalize_name(project["name"]),
            package=Path(source).name,
            folder=folder,
            source=folder / source,
            dependencies=_names(project.get("dependencies", ())),
            extras=_names(r for extra in project.get("optional-dependencies", {}).values() for r in extra),
        )
        found[member.package] = member
    return found


def dev_dependencies() -> frozenset[str]:
    """Canonical names of the root's `dev` dependency group: what only tests, tools and benchmarks install."""
    return _names(_toml(ROOT / "pyproject.toml")["dependency-groups"]["dev"])


def imports_in(path: Path) -> Iterator[Import]:
    """Every absolute import in a Python file, wherever it is written (a function's lazy import counts the
    same as one at the top: it runs in the same process). Relative imports stay inside their package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield Import(path, node.lineno, node.module)


def runtime_imports(member: Member) -> list[Import]:
    """The imports of every module the member's wheel ships."""
    return [found for path in sorted(member.source.rglob("*.py")) for found in imports_in(path)]
