"""GENERAL ALERT_AFTER_HOURS in a run: a storage whose newest complete set is too old (or that holds sets but no
complete one) is a run warning, even when the run then succeeds; a storage that cannot be read is a warning,
never a failure. Real runs into real local storage, old sets written as small signed manifests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench.fleet import write_fake_set
from ncbackup.commands.run import run_config
from ncbackup.config import load_config
from ncbackup.engine.result import Status
from ncbackup.errors import StorageError
from ncbackup.exitcodes import EXIT_WARNINGS
from ncbackup.signing import read_secret_key
from ncbackup.status.freshness import freshness_warnings
from ncbackup.storage.local import LocalStorage
from tests.support import TRUST, ensure_signing_key

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _fresh_now():
    """NOW as each test starts, not as the module was collected (minutes earlier in a full suite run)."""
    global NOW
    NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _config(tmp_path: Path, general: dict | None = None) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "a.txt").write_text("alpha\n")
    ensure_signing_key(tmp_path)
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"),
                    "LOCAL_BACKUP": str(tmp_path / "backups"), **(general or {})},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    }))
    return path


def _old_set(tmp_path: Path, hours: float, *, host: str = "web1") -> str:
    storage = LocalStorage(tmp_path / "backups" / "web1")
    return write_fake_set(storage, read_secret_key(tmp_path / "signing.key"), host=host,
                          moment=NOW - timedelta(hours=hours, minutes=5), size_bytes=100)


def _alerts(result) -> list[str]:
    return [w for w in result.warnings if "ALERT_AFTER_HOURS" in w]


def test_a_run_after_31_hours_of_silence_warns_even_though_it_succeeds(tmp_path):
    path = _config(tmp_path)
    set_id = _old_set(tmp_path, 31)
    result = run_config(load_config(path), level="CRITICAL")
    assert [step.status for step in result.steps] in ([Status.OK], [Status.WARNING]) and result.error is None
    (alert,) = _alerts(result)
    assert "the newest complete set on STORAGE" in alert and "is 31 h old" in alert
    assert f"set {set_id}" in alert and "ALERT_AFTER_HOURS 26)" in alert
    assert result.exit_status == EXIT_WARNINGS


def test_a_recent_set_or_a_higher_limit_gives_no_alert(tmp_path):
    path = _config(tmp_path, {"ALERT_AFTER_HOURS": "48"})
    _old_set(tmp_path, 31)
    assert _alerts(run_config(load_config(path), level="CRITICAL")) == []
    # The run just made a fresh set: the next run is quiet with the default limit too.
    assert _alerts(run_config(load_config(_config(tmp_path)), level="CRITICAL")) == []


def test_sets_but_none_complete_warn_and_another_hosts_set_does_not_count(tmp_path):
    path = _config(tmp_path)
    _old_set(tmp_path, 1, host="db1")                 # valid, but it says it is db1's: not this host's
    unfinished = tmp_path / "backups" / "web1" / "20250101T000000Z"
    unfinished.mkdir(parents=True)
    (unfinished / "files.tar.zst.age.000").write_bytes(b"x")
    (alert,) = _alerts(run_config(load_config(path), level="CRITICAL"))
    assert "there is no complete set on STORAGE" in alert and "among its 2 set(s)" in alert


def test_a_first_run_on_an_empty_storage_says_nothing(tmp_path):
    assert _alerts(run_config(load_config(_config(tmp_path)), level="CRITICAL")) == []


class _Unreachable:
    """A storage whose listing fails, as an unreachable server's does."""

    name = "s3://down/web1/"

    def list(self, prefix: str = ""):
        raise StorageError("cannot reach the S3 endpoint http://127.0.0.1:9 for listing; check ENDPOINT_URL")


def test_a_storage_that_cannot_be_listed_is_a_warning_not_a_failure():
    (warning,) = freshness_warnings([("S3", _Unreachable())], TRUST, host="web1", now=NOW, alert_after_hours=26)
    assert warning.startswith("could not check the age of the newest complete set on S3 (s3://down/web1/)")
    assert "cannot reach the S3 endpoint" in warning
