"""Disk space thresholds (COMPAT.md section 5) and run logging (file, rotation, secrets masked, tail)."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from ncbackup.engine.diskspace import Level, judge
from ncbackup.engine.logs import LOG_FILE_BACKUPS, add_secret, run_logging
from ncbackup.errors import ConfigError


@pytest.mark.parametrize(("free_percent", "level"), [
    (50.0, Level.OK), (19.9, Level.WARNING), (9.9, Level.CRITICAL), (1.9, Level.STOP),
])
def test_thresholds_warn_then_critical_then_stop(free_percent, level):
    assert judge(free_percent, 20.0, where=Path("/w")).level == level


def test_log_goes_to_the_file_and_the_tail(tmp_path):
    log_file = tmp_path / "ncbackup.log"
    with run_logging(log_file, "CRITICAL") as tail:
        logging.getLogger("ncbackup.test").info("hello file")
    assert "hello file" in log_file.read_text()
    assert "hello file" in tail.text()


def test_registered_secrets_are_masked_everywhere(tmp_path):
    log_file = tmp_path / "ncbackup.log"
    add_secret("s3cr3t-passphrase")
    with run_logging(log_file, "CRITICAL") as tail:
        logging.getLogger("ncbackup.test").warning("password is %s", "s3cr3t-passphrase")
    assert "s3cr3t-passphrase" not in log_file.read_text() and "***" in log_file.read_text()
    assert "s3cr3t-passphrase" not in tail.text()


def test_log_rotation_keeps_a_bounded_number_of_old_logs(tmp_path, monkeypatch):
    import ncbackup.engine.logs as logs

    monkeypatch.setattr(logs, "LOG_FILE_MAX_BYTES", 2000)
    log_file = tmp_path / "ncbackup.log"
    for _run in range(3):
        with run_logging(log_file, "CRITICAL"):
            for number in range(200):
                logging.getLogger("ncbackup.test").info("line %d %s", number, "x" * 50)
    old_logs = sorted(p.name for p in tmp_path.iterdir() if p.name != "ncbackup.log")
    assert old_logs == [f"ncbackup.log.{n}" for n in range(1, LOG_FILE_BACKUPS + 1)]


def test_unwritable_log_file_is_a_config_error_naming_log_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="LOG_FOLDER"):
        with run_logging(blocker / "ncbackup.log", "CRITICAL"):
            pass


def test_missing_log_folder_is_created_private_and_said_once(tmp_path):
    log_file = tmp_path / "log" / "ncbackup.log"
    for _run in range(2):
        with run_logging(log_file, "CRITICAL"):
            logging.getLogger("ncbackup.test").info("a run")
    assert stat.S_IMODE((tmp_path / "log").stat().st_mode) == 0o700
    text = log_file.read_text()
    assert text.count(f"created the log folder {tmp_path / 'log'}") == 1
    assert text.count("a run") == 2
