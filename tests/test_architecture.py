"""The dependency rule of docs/architecture.md, read from the source: every import of every module under each
workspace member's `src/` (parsed, not run). A worker imports only `pravis_schemas` and libraries, never
another worker or the local stack; `pravis_schemas` imports no worker; runtime code imports no test code; and
every workspace package a member imports is declared in its pyproject."""

import importlib.metadata
import textwrap
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.support.workspace import (
    LOCAL_STACK,
    SCHEMAS,
    WORKERS,
    Import,
    dev_dependencies,
    imports_in,
    members,
    runtime_imports,
)

MEMBERS = members()
TEST_CODE = frozenset({"tests", "conftest", "bench"})
"""Top-level folders of the repository that hold tests, their helpers and benchmarks (dev-only)."""


def report(violations: list[Import]) -> str:
    return "\n".join(str(v) for v in violations)


def test_the_rule_covers_every_worker_and_the_shared_packages() -> None:
    # A renamed or added member must not slip past the rule unnoticed.
    assert {*WORKERS, SCHEMAS, LOCAL_STACK} == set(MEMBERS)


def test_imports_are_read_wherever_they_are_written(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        textwrap.dedent(
            """
            import os.path, json as j
            from pravis_schemas.topics import EVENTS
            from . import sibling
            from .sibling import thing

            def lazy():
                from pravis_rollups import clickhouse
                import tests.support.services
            """
        )
    )

    found = [(i.line, i.module, i.top) for i in imports_in(module)]

    assert sorted(found) == [
        (2, "json", "json"),
        (2, "os.path", "os"),
        (3, "pravis_schemas.topics", "pravis_schemas"),
        (8, "pravis_rollups", "pravis_rollups"),
        (9, "tests.support.services", "tests"),
    ]


@pytest.mark.parametrize("package", sorted(WORKERS))
def test_a_worker_imports_no_other_worker_nor_the_local_stack(package: str) -> None:
    forbidden = (WORKERS | {LOCAL_STACK}) - {package}
    violations = [i for i in runtime_imports(MEMBERS[package]) if i.top in forbidden]

    assert not violations, report(violations)


def test_schemas_import_no_worker_nor_the_local_stack() -> None:
    violations = [i for i in runtime_imports(MEMBERS[SCHEMAS]) if i.top in WORKERS | {LOCAL_STACK}]

    assert not violations, report(violations)


def dev_only_modules(declared: frozenset[str]) -> frozenset[str]:
    """Top-level import names of the distributions only the dev group installs for a member declaring
    `declared` (pytest, testcontainers...), as installed in this environment."""
    dev_only = dev_dependencies() - declared
    return frozenset(
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if any(canonicalize_name(d) in dev_only for d in distributions)
    )


@pytest.mark.parametrize("package", list(MEMBERS))
def test_runtime_code_imports_no_test_code(package: str) -> None:
    member = MEMBERS[package]
    forbidden = TEST_CODE | dev_only_modules(member.dependencies | member.extras)
    violations = [i for i in runtime_imports(member) if i.top in forbidden]

    assert "pytest" in forbidden and "testcontainers" in forbidden
    assert not violations, report(violations)


@pytest.mark.parametrize("package", list(MEMBERS))
def test_every_imported_workspace_package_is_declared(package: str) -> None:
    member = MEMBERS[package]
    violations = [
        i
        for i in runtime_imports(member)
        if i.top in MEMBERS and i.top != package and MEMBERS[i.top].distribution not in member.dependencies
    ]

    assert not violations, report(violations)
