"""The layers import one way: the API never reaches the workflows or the activities (it talks
to them through Temporal and `schemas.contracts`), the workflows never reach the API, and the
schemas reach neither.

The import graph is read from the source (every `import` and `from … import`, wherever it
sits: module level, inside functions, under `TYPE_CHECKING` or the sandbox's
`imports_passed_through`), and followed through every project module, so an indirect import
(api → core → activities) counts as much as a direct one."""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from schemas.case_types import CASE_TYPES

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("core", "schemas", "api", "workflows", "activities", "worker")

# Imports made by name at run time, from the registry's import paths: `api.main` mounts each
# case type's router, `worker` registers each case type's workflow.
DYNAMIC_IMPORTS: dict[str, tuple[str, ...]] = {
    "api.main": tuple(spec.router for spec in CASE_TYPES.values()),
    "worker": tuple(spec.workflow.partition(":")[0] for spec in CASE_TYPES.values()),
}


def module_file(name: str) -> Path | None:
    """The source file of a project module (`api.routes.cases`), None for anything else."""
    if name.split(".")[0] not in PROJECT:
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_under(package: str) -> list[str]:
    return sorted(module_name(path) for path in (ROOT / package).rglob("*.py"))


def with_parents(name: str) -> set[str]:
    """Importing `a.b.c` runs `a` and `a.b` too."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


@cache
def imports_of(name: str) -> frozenset[str]:
    """The project modules `name` imports directly."""
    path = module_file(name)
    assert path is not None, name
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set(DYNAMIC_IMPORTS.get(name, ()))
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found |= with_parents(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{node.module}" if node.module else anchor
            else:
                base = node.module or ""
            found |= with_parents(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # submodules
    return frozenset(module for module in found if module_file(module) is not None)


def import_chains(start: str) -> dict[str, list[str]]:
    """Every project module `start` reaches, each with one import chain that gets there."""
    chains = {start: [start]}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for imported in sorted(imports_of(current)):
            if imported not in chains:
                chains[imported] = [*chains[current], imported]
                queue.append(imported)
    return chains


def violations(sources: Iterable[str], forbidden: tuple[str, ...]) -> list[str]:
    """Each forbidden module reached from `sources`, as the chain that reaches it."""
    found: set[str] = set()
    for source in sources:
        for module, chain in import_chains(source).items():
            if module.split(".")[0] in forbidden:
                found.add(" -> ".join(chain))
    return sorted(found)


def test_the_walk_follows_imports_through_packages_and_other_modules():
    """The walker sees what it must, or the checks below would pass by seeing nothing."""
    worker_to_case = import_chains("worker")["workflows.case"]
    assert len(worker_to_case) == 3  # worker -> a case type's workflow -> workflows.case
    assert "activities.records" in import_chains("workflows.failed_delivery")
    assert "schemas.enums" in import_chains("api.routes.cases")  # through schemas.case_types
    assert "api.routes.damage_claims" in import_chains("api.main")  # mounted by the registry
    assert "api.routes" in imports_of("api.main")  # `from api.routes import …`


def test_no_api_module_imports_the_workflows_or_the_activities():
    api_modules = modules_under("api")
    assert "api.casework" in api_modules

    assert violations(api_modules, ("workflows", "activities")) == []


def test_no_workflow_module_imports_the_api():
    workflow_modules = modules_under("workflows")
    assert "workflows.failed_delivery" in workflow_modules

    assert violations(workflow_modules, ("api",)) == []


def test_the_schemas_import_neither_workflows_activities_nor_the_api():
    schema_modules = modules_under("schemas")
    assert "schemas.case_types" in schema_modules

    assert violations(schema_modules, ("workflows", "activities", "api")) == []
