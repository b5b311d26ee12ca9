"""What one worker process takes on at a time comes from CASEDESK_WORKER_* settings and
reaches the SDK's Worker; several such processes poll the same task queue."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import PollerBehaviorSimpleMaximum

from core.db import make_engine, make_session_factory
from core.settings import Settings
from worker import build_worker, worker_options

WORKER_ENV = {
    "CASEDESK_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS": "40",
    "CASEDESK_WORKER_MAX_CONCURRENT_ACTIVITIES": "25",
    "CASEDESK_WORKER_MAX_CACHED_WORKFLOWS": "300",
    "CASEDESK_WORKER_WORKFLOW_TASK_POLLERS": "3",
    "CASEDESK_WORKER_ACTIVITY_TASK_POLLERS": "4",
}


@pytest.fixture
def tuned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    for name, value in WORKER_ENV.items():
        monkeypatch.setenv(name, value)
    return Settings(data_dir=tmp_path, environment="test")


def test_the_defaults_are_the_measured_ones(tmp_path: Path) -> None:
    options = worker_options(Settings(data_dir=tmp_path, environment="test"))

    assert options == {
        "max_concurrent_workflow_tasks": 4,
        "max_concurrent_activities": 100,
        "max_cached_workflows": 1000,
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(maximum=2),
        "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(maximum=5),
    }


def test_worker_settings_come_from_the_environment(tuned: Settings) -> None:
    options = worker_options(tuned)

    assert options["max_concurrent_workflow_tasks"] == 40
    assert options["max_concurrent_activities"] == 25
    assert options["max_cached_workflows"] == 300
    assert options["workflow_task_poller_behavior"] == PollerBehaviorSimpleMaximum(maximum=3)
    assert options["activity_task_poller_behavior"] == PollerBehaviorSimpleMaximum(maximum=4)


async def test_the_worker_is_built_with_them(
    tuned: Settings, time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    engine = make_engine(tuned.resolved_database_url)
    try:
        worker = build_worker(time_env.client, tuned, make_session_factory(engine))
        async with worker:  # the SDK takes them: it starts and stops cleanly
            pass
    finally:
        await engine.dispose()

    config = worker.config()
    assert config["task_queue"] == "casedesk"
    for name, value in worker_options(tuned).items():
        assert config.get(name) == value, name


def test_a_workflow_cache_needs_two_workflow_task_pollers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CASEDESK_WORKER_WORKFLOW_TASK_POLLERS", "1")

    with pytest.raises(ValidationError, match="CASEDESK_WORKER_WORKFLOW_TASK_POLLERS must be"):
        Settings(data_dir=tmp_path, environment="test")


def test_one_workflow_task_poller_is_allowed_without_a_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CASEDESK_WORKER_MAX_CACHED_WORKFLOWS", "0")
    monkeypatch.setenv("CASEDESK_WORKER_WORKFLOW_TASK_POLLERS", "1")

    settings = Settings(data_dir=tmp_path, environment="test")

    assert worker_options(settings)["workflow_task_poller_behavior"].maximum == 1


@pytest.mark.parametrize("value", ["0", "-3"])
def test_activity_slots_must_be_positive(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    monkeypatch.setenv("CASEDESK_WORKER_MAX_CONCURRENT_ACTIVITIES", value)

    with pytest.raises(ValidationError, match="worker_max_concurrent_activities"):
        Settings(data_dir=tmp_path, environment="test")
