"""``ncbackup check`` and ``run`` on a config written for another system: one explanation, no traceback, nothing made.

The test machines are Linux, so the Windows-style config is the foreign one here; "on Windows" is
platform.IS_WINDOWS switched on (which only changes the rules ncbackup applies, not the OS).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ncbackup import platform
from ncbackup.cli import main
from ncbackup.config import load_config
from ncbackup.config.host import host_mismatch

WINDOWS_CONFIG = {
    "GENERAL": {"HOSTNAME": "winsrv1", "WORK_FOLDER": "c:\\backup", "LOG_FOLDER": "c:\\backup\\logs\\",
                "LOCAL_BACKUP": "d:\\backups"},
    "SNAPSHOT": {"ACTION": "execute", "NAME": "snapshot", "PARAMETERS": {"METHOD": "vss", "SOURCE": "C:"}},
    "FILESET": {"ACTION": "execute", "NAME": "filesbackup",
                "PARAMETERS": {"FILESET_INCLUDE": ["c:\\inetpub", "c:\\Program Files\\App"]}},
    "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
}


@pytest.fixture
def windows_config(tmp_path, monkeypatch) -> Path:
    # On a Windows runner too, this host plays a Linux one: the rules switch, the OS does not matter here.
    monkeypatch.setattr(platform, "IS_WINDOWS", False)
    monkeypatch.setattr(platform, "host_system_name", lambda: "Linux")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)   # where a Windows path read as a POSIX one would become a folder
    path = tmp_path / "win.json"
    path.write_text(json.dumps(WINDOWS_CONFIG, indent=2))
    return path


def test_check_on_linux_says_the_paths_are_windows_paths_prints_the_plan_and_checks_nothing(windows_config, capsys):
    assert main(["check", "-c", str(windows_config)]) == 2
    out, err = capsys.readouterr()
    first = out.splitlines()[1]
    assert first.startswith("  FAIL this config is written for Windows (GENERAL.WORK_FOLDER c:\\backup")
    assert "this host runs Linux, not Windows" in first and "run `ncbackup check` there" in first
    assert "and 3 more are Windows paths" in first
    assert "not checked on this host" in out
    # The plan: what a run on the Windows server does.
    assert "1. SNAPSHOT [snapshot]: takes a vss snapshot of C:" in out
    assert "reads FILESET: files c:\\inetpub c:\\Program Files\\App" in out and "d:\\backups" in out
    assert "does not exist" not in out   # no meaningless per-path checks against this host's folders
    assert "Traceback" not in out + err
    assert list(Path.cwd().iterdir()) == []


def test_run_on_linux_refuses_in_one_sentence_before_making_any_folder(windows_config, capsys):
    assert main(["run", "-c", str(windows_config)]) == 3
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1 and "this config is written for Windows" in err
    assert list(Path.cwd().iterdir()) == []


def test_a_linux_config_on_linux_has_no_mismatch(tmp_path):
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({"GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work")}}))
    assert host_mismatch(load_config(path)) is None


def test_on_windows_a_windows_config_fits_and_posix_general_paths_are_named(tmp_path, monkeypatch, windows_config):
    monkeypatch.setattr(platform, "IS_WINDOWS", True)
    assert host_mismatch(load_config(windows_config)) is None
    path = tmp_path / "linux.json"
    path.write_text(json.dumps({"GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": "/var/tmp/ncbackup",
                                            "LOCAL_BACKUP": "d:\\backups"}}))
    text = host_mismatch(load_config(path))
    assert text is not None and "GENERAL.WORK_FOLDER /var/tmp/ncbackup" in text and "runs Windows" in text
    assert "LOCAL_BACKUP" not in text


def test_a_windows_path_on_another_machine_does_not_make_the_config_a_windows_one() -> None:
    from ncbackup.config import loads_config
    from ncbackup.config.host import host_mismatch, windows_paths

    config = loads_config(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": "/var/tmp/nc"},
        "MSSQL": {"ACTION": "execute", "NAME": "mssql_backup", "PARAMETERS": {"SERVER_BACKUP_FOLDER": "D:\\bak"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {
            "DESTINATION": "sftp", "ARGS_DICT": {"REMOTE_HOST": "win1", "REMOTE_DIR": "C:/backups"}}},
    }))
    assert windows_paths(config) == [] and host_mismatch(config) is None
