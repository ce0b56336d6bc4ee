"""`ncbackup run --json` against the JSON Schema shipped in docs/report.schema.json: real runs that end
ok, with warnings, failed and unusable, and the schema kept in step with the code."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest

from ncbackup import platform
from ncbackup.cli import main
from ncbackup.engine.plan import StepKind
from ncbackup.engine.result import SCHEMA_VERSION, RunResult, Status, StepResult
from ncbackup.stages.keys import write_identity_file
from tests.support import REPO, ensure_signing_key

SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def problems(report: dict) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in VALIDATOR.iter_errors(report)]


def write_config(tmp_path: Path, sections: dict, *, general: dict | None = None, text: str | None = None) -> Path:
    general_section = {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "HOME_FOLDER": str(tmp_path / "home"),
                       "LOG_FOLDER": str(tmp_path / "log") + "/", "LOCAL_BACKUP": str(tmp_path / "backups"),
                       "DISK_SPACE_CHECK": "False", **(general or {})}
    (tmp_path / "log").mkdir(exist_ok=True)
    ensure_signing_key(tmp_path)   # sets are signed: a first run would otherwise warn that it made the key
    path = tmp_path / "conf.json"
    path.write_text(text or json.dumps({"GENERAL": general_section, **sections}, indent=2))
    return path


def script(tmp_path: Path, name: str, body: str) -> dict:
    folder = tmp_path / "home" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.sh").write_text(body)
    return {"ACTION": "execute", "NAME": name, "EXECUTABLE": f"{name}.sh", "EXECUTE_WITH": "bash"}


def run_json(ncbackup_cmd: list[str], path: Path) -> tuple[int, dict]:
    completed = subprocess.run([*ncbackup_cmd, "run", "-c", str(path), "--json"], capture_output=True, text=True,
                               timeout=120, env={**os.environ, "PYTHONPATH": str(REPO / "src")}, check=False)
    assert "Traceback" not in completed.stderr
    return completed.returncode, json.loads(completed.stdout)


def data_folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha\n" * 1000)
    (data / "sub" / "b.bin").write_bytes(os.urandom(50_000))
    return data


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_names_every_field_status_and_kind_of_the_code():
    run = RunResult(config_path="/etc/c.json", hostname="web1")
    run.steps.append(StepResult(name="S", kind="execute"))
    report = run.to_json_dict()
    assert set(SCHEMA["required"]) == set(SCHEMA["properties"]) == set(report)
    step = SCHEMA["$defs"]["step"]
    assert set(step["required"]) == set(step["properties"]) == {f.name for f in dataclasses.fields(StepResult)}
    assert SCHEMA["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert set(SCHEMA["properties"]["status"]["enum"]) == {status.value for status in Status}
    assert set(step["properties"]["status"]["enum"]) == {status.value for status in Status}
    assert set(step["properties"]["kind"]["enum"]) == {kind.value for kind in StepKind}


def test_an_ok_run_matches_the_schema(tmp_path, ncbackup_cmd):
    data = data_folder(tmp_path)
    key_file = tmp_path / "key.txt"
    write_identity_file(key_file)
    path = write_config(tmp_path, {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key_file)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
        "SIZE": {"ACTION": "load", "FROM": "tools", "FILENAME": "size_calculation", "CLASS": "SizeCalculation"},
        "HELLO": script(tmp_path, "hello", "echo hello\n"),
    })
    exit_status, report = run_json(ncbackup_cmd, path)
    assert problems(report) == []
    assert (exit_status, report["status"], report["exit_status"]) == (0, "ok", 0), report
    assert [(step["kind"], step["status"]) for step in report["steps"]] == [
        ("backup-set", "ok"), ("size", "ok"), ("execute", "ok")]
    backup_set = report["steps"][0]
    assert backup_set["set_id"] and backup_set["destinations"] == ["local"] and backup_set["bytes_in"] > 50_000
    assert report["bytes_out"] == backup_set["bytes_out"] > 0 and report["size"]
    # The monitoring methods (prometheus, zabbix) export it: a set has parts, other steps have none.
    assert backup_set["part_count"] >= 1 and report["steps"][1]["part_count"] is None


def test_a_warning_run_matches_the_schema(tmp_path, ncbackup_cmd):
    data = data_folder(tmp_path)
    config = {
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log") + "/",
                    "LOCAL_BACKUP": str(tmp_path / "backups"), "DISK_SPACE_CHECK": "False"},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    }
    # A duplicate key (run-level warning) and a set stored without ENCRYPTION (step warning).
    text = json.dumps(config, indent=2).replace('"HOSTNAME": "web1",', '"HOSTNAME": "old",\n    "HOSTNAME": "web1",')
    exit_status, report = run_json(ncbackup_cmd, write_config(tmp_path, {}, text=text))
    assert problems(report) == []
    assert (exit_status, report["status"], report["exit_status"]) == (1, "warning", 1), report
    assert report["warnings"] and "appears twice" in report["warnings"][0]
    assert report["steps"][0]["status"] == "warning" and report["steps"][0]["warnings"]


def test_a_failed_run_matches_the_schema(tmp_path, ncbackup_cmd):
    path = write_config(tmp_path, {
        "BROKEN": script(tmp_path, "broken", "echo 'no such database' >&2\nexit 4\n"),
        "HELLO": script(tmp_path, "hello", "echo hello\n"),
    })
    exit_status, report = run_json(ncbackup_cmd, path)
    assert problems(report) == []
    assert (exit_status, report["status"], report["exit_status"]) == (2, "failed", 2), report
    assert [step["status"] for step in report["steps"]] == ["failed", "ok"]
    assert report["steps"][0]["error"]


def test_a_run_stopped_by_the_disk_guard_matches_the_schema(tmp_path, monkeypatch, capsys):
    # In-process, so that the free-space reading can be faked: 1% free, under a tenth of 20%.
    monkeypatch.setattr(platform, "disk_usage", lambda path: platform.DiskUsage(total_bytes=100, free_bytes=1))
    path = write_config(tmp_path, {"HELLO": script(tmp_path, "hello", "echo hello\n"),
                                   "AGAIN": script(tmp_path, "again", "echo again\n")},
                        general={"DISK_SPACE_CHECK": "True"})
    exit_status = main(["run", "-c", str(path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert problems(report) == []
    assert (exit_status, report["status"], report["exit_status"]) == (2, "failed", 2)
    assert [step["status"] for step in report["steps"]] == ["skipped", "skipped"] and "the run stops" in report["error"]


def test_an_unusable_run_matches_the_schema(tmp_path, ncbackup_cmd):
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    path = write_config(tmp_path, {}, general={"WORK_FOLDER": str(blocker / "work")})
    exit_status, report = run_json(ncbackup_cmd, path)
    assert problems(report) == []
    assert (exit_status, report["status"], report["exit_status"]) == (3, "failed", 3)
    assert "WORK_FOLDER" in report["error"] and report["steps"] == []


def test_a_run_skipped_for_the_lock_matches_the_schema():
    run = RunResult(config_path="/etc/c.json", hostname="web1", is_lock_held=True)
    run.end = run.start
    report = run.to_json_dict()
    assert problems(report) == []
    assert (report["status"], report["exit_status"]) == ("skipped", 0)


@pytest.mark.parametrize(("change", "complaint"), [
    (lambda report: report.update(surprise=1), "Additional properties are not allowed ('surprise'"),
    (lambda report: report.update(status="partial"), "'partial' is not one of"),
    (lambda report: report.update(exit_status=1), "0 was expected"),
    (lambda report: report.pop("hostname"), "'hostname' is a required property"),
    (lambda report: report["steps"][0].update(kind="backup"), "'backup' is not one of"),
    (lambda report: report["steps"][0].update(status="failed"), "None is not of type 'string'"),
    (lambda report: report["steps"][0].update(extra=[]), "Additional properties are not allowed ('extra'"),
    (lambda report: report.update(start="2026-11-26 03:00:00"), "does not match"),
])
def test_the_schema_rejects_what_the_code_never_prints(change, complaint):
    run = RunResult(config_path="/etc/c.json", hostname="web1")
    run.steps.append(StepResult(name="S", kind="execute", start=run.start))
    run.end = run.start
    report = run.to_json_dict()
    assert problems(report) == []
    change(report)
    assert any(complaint in problem for problem in problems(report)), problems(report)
