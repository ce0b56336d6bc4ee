"""The run lock: a dedicated 0600 file in WORK_FOLDER held by real processes, who holds it and since
when, a skipped run (exit 0) versus a holder past MAX_RUNTIME (exit 2), and lock files that are not ours."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ncbackup import platform
from ncbackup.commands.run import run_config
from ncbackup.config import load_config
from ncbackup.engine.lock import AlreadyRunning, lock_file_path, single_instance
from ncbackup.engine.result import Status
from ncbackup.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE
from tests.support import need
from tests.unit.engine.test_run import add_script, write_config

HOLDER_CODE = """
    import json, sys
    from ncbackup.engine.lock import single_instance
    lock_path, recorded_start = sys.argv[1], sys.argv[2]
    with single_instance(lock_path, config="/etc/ncbackup/other.json") as me:
        if recorded_start:
            # The same holder, as if it had started long ago (no need to wait a day in a test).
            with open(lock_path, "w") as record:
                json.dump({"pid": me.pid, "start": recorded_start, "config": "/etc/ncbackup/other.json"}, record)
        print("held", flush=True)
        sys.stdin.read()
"""


class Holder:
    """Another process holding the run lock until released (or killed)."""

    def __init__(self, lock_path: Path, *, recorded_start: datetime | None = None) -> None:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(HOLDER_CODE), str(lock_path),
             recorded_start.isoformat() if recorded_start else ""],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout.readline().strip() == "held"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def holders():
    started: list[Holder] = []

    def start(lock_path: Path, **kwargs) -> Holder:
        holder = Holder(lock_path, **kwargs)
        started.append(holder)
        return holder

    yield start
    for holder in started:
        holder.kill()


def run(path: Path):
    return run_config(load_config(path), level="CRITICAL")


def test_lock_refuses_a_second_holder_says_who_and_frees_when_the_holder_dies(tmp_path, holders):
    lock_path = tmp_path / "work" / "ncbackup.lock"
    holder = holders(lock_path)
    with pytest.raises(AlreadyRunning) as caught:
        with single_instance(lock_path):
            pass
    assert caught.value.holder.pid == holder.pid
    assert caught.value.holder.config == "/etc/ncbackup/other.json"
    assert abs(caught.value.holder.held_seconds(datetime.now(timezone.utc))) < 60
    holder.kill()  # dies without releasing anything: the OS must free the lock
    with single_instance(lock_path) as me:
        assert me.pid == os.getpid()


def test_lock_file_is_private_in_work_folder_records_the_holder_and_is_cleared_after(tmp_path):
    lock_path = lock_file_path(tmp_path)
    assert lock_path == tmp_path / "ncbackup.lock"
    with single_instance(lock_path, config=tmp_path / "conf.json"):
        record = json.loads(lock_path.read_text())
        assert record["pid"] == os.getpid() and record["config"] == str(tmp_path / "conf.json")
        assert datetime.fromisoformat(record["start"]) <= datetime.now(timezone.utc)
        if platform.IS_POSIX:
            assert stat.S_IMODE(lock_path.stat().st_mode) == 0o600
            assert lock_path.stat().st_uid == os.geteuid()
    assert lock_path.read_text() == ""


def test_a_lock_file_left_group_readable_is_brought_back_to_0600(tmp_path):
    need(platform.IS_POSIX, "POSIX permissions")
    lock_path = tmp_path / "ncbackup.lock"
    lock_path.write_text("")
    lock_path.chmod(0o664)
    with single_instance(lock_path):
        assert stat.S_IMODE(lock_path.stat().st_mode) == 0o600


def test_a_symbolic_link_at_the_lock_path_is_refused_and_its_target_untouched(tmp_path):
    need(platform.IS_POSIX, "O_NOFOLLOW")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    lock_path = tmp_path / "ncbackup.lock"
    lock_path.symlink_to(victim)
    path = write_config(tmp_path, {}, general={"WORK_FOLDER": str(tmp_path)})
    result = run(path)
    assert result.exit_status == EXIT_UNUSABLE
    assert "symbolic link" in result.error and str(lock_path) in result.error
    assert victim.read_text() == "precious\n"


def test_a_lock_file_of_another_user_is_refused_in_one_sentence(tmp_path):
    need(platform.is_root(), "giving a file to another user needs root")
    lock_path = tmp_path / "work" / "ncbackup.lock"
    lock_path.parent.mkdir()
    lock_path.write_text("")
    os.chown(lock_path, 65534, 65534)  # nobody
    path = write_config(tmp_path, {})
    result = run(path)
    assert result.exit_status == EXIT_UNUSABLE
    assert "belongs to" in result.error and "WORK_FOLDER" in result.error


def test_a_run_finding_the_lock_held_is_skipped_exit_0_and_names_the_holder(tmp_path, holders):
    marker = tmp_path / "ran.txt"
    path = write_config(tmp_path, {"S": add_script(tmp_path, "s", f"open({str(marker)!r}, 'w').write('x')\n")})
    holder = holders(tmp_path / "work" / "ncbackup.lock")
    result = run(path)
    assert result.is_lock_held and result.status == Status.SKIPPED and result.exit_status == EXIT_OK
    assert not marker.exists()
    document = json.loads(result.to_json())
    assert document["status"] == "skipped" and document["exit_status"] == 0
    assert any(f"pid {holder.pid}" in warning for warning in document["warnings"])
    assert "another ncbackup run holds the lock" in (tmp_path / "log" / "ncbackup.log").read_text()


def test_a_holder_running_longer_than_max_runtime_fails_the_run_naming_pid_and_start(tmp_path, holders):
    path = write_config(tmp_path, {}, general={"MAX_RUNTIME": "1h"})
    started = datetime.now(timezone.utc) - timedelta(hours=2)
    holder = holders(tmp_path / "work" / "ncbackup.lock", recorded_start=started)
    result = run(path)
    assert result.exit_status == EXIT_FAILED and result.status == Status.FAILED and not result.is_lock_held
    assert f"pid {holder.pid}" in result.error and started.isoformat(timespec="seconds") in result.error
    assert "MAX_RUNTIME" in result.error


def test_a_holder_within_max_runtime_only_skips(tmp_path, holders):
    path = write_config(tmp_path, {}, general={"MAX_RUNTIME": "1h"})
    holders(tmp_path / "work" / "ncbackup.lock", recorded_start=datetime.now(timezone.utc) - timedelta(minutes=30))
    result = run(path)
    assert result.is_lock_held and result.exit_status == EXIT_OK


def test_max_runtime_defaults_to_24_hours(tmp_path, holders):
    path = write_config(tmp_path, {})
    assert load_config(path).general.max_runtime_seconds == 24 * 3600
    holders(tmp_path / "work" / "ncbackup.lock", recorded_start=datetime.now(timezone.utc) - timedelta(hours=25))
    assert run(path).exit_status == EXIT_FAILED


def test_a_record_left_by_a_dead_process_is_not_taken_for_a_hung_holder(tmp_path, holders):
    # A crashed run left its record; the new holder has the OS lock but has not written itself yet.
    lock_path = tmp_path / "ncbackup.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    holder = holders(lock_path)
    lock_path.write_text(json.dumps({"pid": int(dead.stdout), "start": "2000-01-01T00:00:00+00:00"}))
    with pytest.raises(AlreadyRunning) as caught:
        with single_instance(lock_path):
            pass
    assert caught.value.holder.start is None and holder.proc.poll() is None


def test_the_config_file_itself_is_not_locked(tmp_path):
    need(platform.IS_POSIX, "flock")
    import fcntl

    path = write_config(tmp_path, {})
    with single_instance(lock_file_path(tmp_path), config=path):
        with open(path, "rb") as config:
            fcntl.flock(config.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise if the run held it


@pytest.mark.parametrize(("written", "seconds"), [("3600", 3600), (7200, 7200), ("90m", 5400), ("24h", 86400),
                                                  ("2d", 172800), ("1.5 hours", 5400)])
def test_max_runtime_takes_seconds_or_a_unit(tmp_path, written, seconds):
    assert load_config(write_config(tmp_path, {}, general={"MAX_RUNTIME": written})).general.max_runtime_seconds == seconds


@pytest.mark.parametrize("written", ["soon", "0", "-1h", "5 weeks"])
def test_a_bad_max_runtime_is_one_sentence_naming_the_key(tmp_path, written):
    from ncbackup.errors import ConfigError

    with pytest.raises(ConfigError, match=r"GENERAL\.MAX_RUNTIME: expected a positive duration"):
        load_config(write_config(tmp_path, {}, general={"MAX_RUNTIME": written}))
