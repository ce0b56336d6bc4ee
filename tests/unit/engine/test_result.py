"""RunResult: status and exit mapping, the JSON schema, the readable summary."""

from __future__ import annotations

import json

from ncbackup.engine.result import SCHEMA_VERSION, RunResult, Status, StepResult, human_size


def run_with(*statuses: Status) -> RunResult:
    run = RunResult(config_path="c.json", hostname="h")
    for number, status in enumerate(statuses):
        run.steps.append(StepResult(name=f"S{number}", kind="execute", status=status))
    return run


def test_exit_status_mapping():
    assert run_with(Status.OK).exit_status == 0
    assert run_with(Status.OK, Status.WARNING).exit_status == 1
    assert run_with(Status.WARNING, Status.FAILED, Status.SKIPPED).exit_status == 2
    unusable = run_with()
    unusable.error, unusable.is_unusable = "bad", True
    assert unusable.exit_status == 3
    locked = run_with()
    locked.is_lock_held = True
    assert locked.exit_status == 0


def test_step_status_settles_from_errors_and_warnings():
    step = StepResult(name="x", kind="load")
    step.warn("careful")
    assert step.status == Status.WARNING
    step.fail("broken")
    step.finalize()
    assert step.status == Status.FAILED


def test_json_is_versioned_and_complete():
    run = run_with(Status.OK)
    run.steps[0].bytes_in, run.steps[0].bytes_out = 100, 40
    data = json.loads(run.to_json())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["exit_status"] == 0 and data["status"] == "ok"
    assert data["bytes_in"] == 100 and data["bytes_out"] == 40
    step = data["steps"][0]
    assert set(step) >= {"name", "kind", "status", "start", "duration_seconds", "bytes_in", "bytes_out",
                         "warnings", "error"}


def test_summary_names_each_step_and_the_verdict():
    run = run_with(Status.OK, Status.FAILED)
    run.steps[1].error = "it broke"
    text = run.summary()
    assert "S0" in text and "S1" in text and "it broke" in text and "exit 2" in text


def test_human_size():
    assert human_size(512) == "512 B"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(3 * 1024**3) == "3.0 GiB"
