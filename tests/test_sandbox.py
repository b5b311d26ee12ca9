"""What the worker's sandbox passes through (core.telemetry.workflow_runner): the shared base
classes of the case workflows, never a module that defines a workflow, which every run still
imports afresh into its own sandbox."""

from __future__ import annotations

import importlib

from core.telemetry import PASSTHROUGH_MODULES, SHARED_WORKFLOW_MODULES, workflow_runner
from worker import WORKFLOWS


def _defines_a_workflow(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    return [
        name
        for name, value in vars(module).items()
        if isinstance(value, type)
        and value.__module__ == module_name
        and "__temporal_workflow_definition" in value.__dict__
    ]


def test_the_passed_through_workflow_modules_define_no_workflow():
    assert SHARED_WORKFLOW_MODULES  # the case base classes are what a run would re-import
    for name in SHARED_WORKFLOW_MODULES:
        assert _defines_a_workflow(name) == [], name


def test_every_registered_workflow_runs_from_a_module_each_run_imports_afresh():
    passed = workflow_runner().restrictions.passthrough_modules
    assert set(PASSTHROUGH_MODULES) <= passed
    for workflow_class in WORKFLOWS:
        module = workflow_class.__module__
        assert _defines_a_workflow(module), module
        assert not any(module == p or module.startswith(p + ".") for p in passed), module
