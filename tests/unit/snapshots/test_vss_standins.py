"""METHOD vss against a stand-in vssadmin: the exact commands, the device path read, and the shadow copies always
deleted (after a failure halfway, at the end of a failed run, and by the next run after a killed one).

The test machines are Linux: no shadow copy is made here, and nothing reads through a real shadow device.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

from ncbackup.config import load_config
from ncbackup.engine.context import RunContext
from ncbackup.engine.plan import SnapshotStep, build_plan
from ncbackup.engine.result import RunResult
from ncbackup.engine.run import execute_plan
from ncbackup.errors import BackupError, ConfigError
from ncbackup.snapshots.vss import drive_of, parse_created
from tests.support import NOT_POSIX, need
from tests.unit import windows_standins as standins


def shadow_id(number: int) -> str:
    return f"{{6c8a2e35-0000-4000-8000-{number:012d}}}"


def device(number: int) -> str:
    return f"\\\\?\\GLOBALROOT\\Device\\HarddiskVolumeShadowCopy{number}"


@pytest.fixture
def stand(tmp_path, monkeypatch):
    need(os.name == "posix", NOT_POSIX)
    folder = standins.install(tmp_path / "bin", sys.executable)
    log = tmp_path / "calls.jsonl"
    for key, value in standins.environment(folder, log).items():
        monkeypatch.setenv(key, value)
    return log


def _config(tmp_path: Path, source: object, *, name: str = "conf.json", data: dict | None = None) -> Path:
    general = {"HOSTNAME": "winsrv1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log")}
    sections = {"SNAPSHOT": {"ACTION": "execute", "NAME": "snapshot", "PARAMETERS": {"METHOD": "vss", "SOURCE": source}},
                **(data or {})}
    path = tmp_path / name
    path.write_text(json.dumps({"GENERAL": general, **sections}, indent=1))
    return path


def _snapshot(config_path: Path):
    (step,) = [step for step in build_plan(load_config(config_path)).steps if isinstance(step, SnapshotStep)]
    return step.snapshot


def test_one_shadow_copy_per_volume_read_through_its_device_and_deleted_by_id(tmp_path, stand):
    snapshot = _snapshot(_config(tmp_path, "C: d:\\data"))
    taken = snapshot.take()
    assert standins.calls(stand) == [["vssadmin", "create", "shadow", "/for=C:"],
                                     ["vssadmin", "create", "shadow", "/for=D:"]]
    assert taken.method == "vss" and taken.ids == (shadow_id(1), shadow_id(2))
    assert {str(live): str(readable) for live, readable in taken.mapping.items()} == {
        "C:\\": device(1) + "\\", "D:\\": device(2) + "\\"}
    assert json.loads(snapshot.state_file.read_text()) == [shadow_id(1), shadow_id(2)]
    assert snapshot.release() == []
    assert standins.calls(stand)[2:] == [["vssadmin", "delete", "shadows", f"/shadow={shadow_id(1)}", "/quiet"],
                                         ["vssadmin", "delete", "shadows", f"/shadow={shadow_id(2)}", "/quiet"]]
    assert not snapshot.state_file.exists()
    assert snapshot.release() == [] and len(standins.calls(stand)) == 4     # idempotent


def test_the_shadow_path_of_a_fileset_path_is_its_windows_path_under_the_device():
    from pathlib import PureWindowsPath

    live, readable = PureWindowsPath("C:\\"), PureWindowsPath(device(3) + "\\")
    path = PureWindowsPath("c:\\inetpub\\wwwroot")
    assert str(readable / path.relative_to(PureWindowsPath("c:\\"))) == device(3) + "\\inetpub\\wwwroot"
    assert live.drive == "C:"


def test_when_the_second_volume_fails_the_first_shadow_copy_is_deleted(tmp_path, stand, monkeypatch):
    monkeypatch.setenv("STANDIN_FAIL", "vssadmin:/for=D:")
    snapshot = _snapshot(_config(tmp_path, ["C:", "D:"]))
    with pytest.raises(BackupError, match="vssadmin exited with status 5"):
        snapshot.take()
    assert [call[1:4] for call in standins.calls(stand)] == [
        ["create", "shadow", "/for=C:"], ["create", "shadow", "/for=D:"], ["delete", "shadows", f"/shadow={shadow_id(1)}"]]
    assert not snapshot.state_file.exists()


def test_output_without_an_id_is_one_sentence_naming_the_command_to_look(tmp_path, stand, monkeypatch):
    monkeypatch.setenv("STANDIN_VSSADMIN_OUTPUT", "Error: the shadow copy provider had an unexpected error\r\n")
    with pytest.raises(BackupError, match="printed no shadow copy id") as caught:
        _snapshot(_config(tmp_path, "C:")).take()
    assert "vssadmin list shadows /for=C:" in str(caught.value)


def test_a_shadow_copy_that_cannot_be_deleted_is_a_warning_and_the_next_run_deletes_it(tmp_path, stand, monkeypatch):
    config = _config(tmp_path, "C:")
    first = _snapshot(config)
    first.take()
    monkeypatch.setenv("STANDIN_FAIL", "vssadmin:delete")
    monkeypatch.setenv("STANDIN_VSSADMIN_OUTPUT", f"   Shadow Copy ID: {shadow_id(1)}\r\n")   # still listed
    (warning,) = first.release()
    assert f"vssadmin delete shadows /shadow={shadow_id(1)} /quiet" in warning and "the next run deletes it" in warning
    # Another config's shadow copy, recorded in its own state file: never touched.
    other = _snapshot(_config(tmp_path, "C:", name="other.json"))
    other.state_file.write_text(json.dumps([shadow_id(9)]))
    monkeypatch.delenv("STANDIN_FAIL")
    monkeypatch.delenv("STANDIN_VSSADMIN_OUTPUT")
    second = _snapshot(config)
    (line,) = second.cleanup_leftovers()
    assert shadow_id(1) in line and "interrupted run" in line
    deletes = [call for call in standins.calls(stand) if call[1] == "delete"]
    assert deletes[-1] == ["vssadmin", "delete", "shadows", f"/shadow={shadow_id(1)}", "/quiet"]
    assert all(shadow_id(9) not in " ".join(call) for call in standins.calls(stand))
    assert not second.state_file.exists() and json.loads(other.state_file.read_text()) == [shadow_id(9)]


def test_a_shadow_copy_already_gone_is_no_warning(tmp_path, stand, monkeypatch):
    snapshot = _snapshot(_config(tmp_path, "C:"))
    snapshot.take()
    monkeypatch.setenv("STANDIN_FAIL", "vssadmin:delete")
    monkeypatch.setenv("STANDIN_VSSADMIN_OUTPUT", "No items found that satisfy the query.\r\n")
    assert snapshot.release() == []
    assert standins.calls(stand)[-1] == ["vssadmin", "list", "shadows"]
    assert not snapshot.state_file.exists()


def test_a_failed_run_still_deletes_the_shadow_copy(tmp_path, stand):
    data = {"FILESET": {"ACTION": "execute", "NAME": "filesbackup",
                        "PARAMETERS": {"FILESET_INCLUDE": str(tmp_path / "missing")}},
            "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local",
                                                                             "ARGS_DICT": {"LOCAL_BACKUP": str(tmp_path / "sets")}}}}
    config_path = _config(tmp_path, "C:", data=data)
    config = load_config(config_path)
    plan = build_plan(config)
    result = RunResult(config_path=str(config_path), hostname="winsrv1")
    execute_plan(plan, RunContext(config=config, result=result, logger=logging.getLogger("test")))
    assert result.exit_status != 0
    assert [call[1] for call in standins.calls(stand)] == ["create", "delete"]
    assert result.steps[0].snapshots == [f"vss:{shadow_id(1)}"]


@pytest.mark.parametrize(("text", "drive"), [("c:", "C:"), ("C:\\", "C:"), ("c:\\inetpub", "C:"), ("d:/data", "D:"),
                                             ("\\\\server\\share", None), ("/srv", None), ("data", None)])
def test_the_volume_of_a_source(text, drive):
    assert drive_of(text) == drive


def test_a_source_not_on_a_drive_is_a_config_error_naming_source(tmp_path):
    with pytest.raises(ConfigError, match="not on a drive letter") as caught:
        _snapshot(_config(tmp_path, "\\\\nas\\share"))
    assert caught.value.key == "SOURCE"


def test_listings_in_another_language_are_read_by_id_and_device():
    german = ("Schattenkopie für \"C:\\\" wurde erfolgreich erstellt.\r\n"
              f"    Schattenkopie-ID: {shadow_id(7)}\r\n    Schattenkopie-Volumename: {device(7)}\r\n")
    assert parse_created(german) == (shadow_id(7), device(7))
    assert parse_created("Fehler\r\n") is None


def test_check_makes_nothing_and_says_what_a_run_does(tmp_path, stand):
    lines = _snapshot(_config(tmp_path, "C: D:")).check()
    assert all(line.ok for line in lines)
    assert "vssadmin found" in lines[0].text and "C:, D:" in lines[1].text
    assert standins.calls(stand) == []
