"""platform.py's Windows branches, run on Linux with the platform switch on and stand-ins for what needs Windows.

What this proves: the exact commands (taskkill, whoami, icacls) and calls (msvcrt.locking) ncbackup makes
there, and what it does with their answers. What it cannot prove: that Windows answers as the stand-ins
do (docs/windows.md lists what that leaves unverified).
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from ncbackup import platform, process
from ncbackup.engine.lock import AlreadyRunning, single_instance
from ncbackup.errors import BackupError, CommandFailed, ConfigError
from tests.support import NOT_POSIX, need
from tests.unit import windows_standins as standins

POSIX_GROUP_OPTIONS = platform.new_process_group_options()


@pytest.fixture
def on_windows(tmp_path, monkeypatch):
    """The Windows branches on, the stand-ins first on PATH; returns their call log."""
    need(os.name == "posix", NOT_POSIX)
    folder = standins.install(tmp_path / "bin", sys.executable)
    log = tmp_path / "calls.jsonl"
    for key, value in standins.environment(folder, log).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(platform, "IS_WINDOWS", True)
    monkeypatch.setattr(platform, "IS_POSIX", False)
    monkeypatch.setattr(platform, "_own_sid", None)
    # Popen refuses creationflags off Windows: children start in a POSIX session, taskkill's stand-in kills it.
    monkeypatch.setattr(platform, "new_process_group_options", lambda: dict(POSIX_GROUP_OPTIONS))
    return log


def test_windows_children_start_in_a_new_process_group(monkeypatch):
    monkeypatch.setattr(platform, "IS_WINDOWS", True)
    assert platform.new_process_group_options() == {"creationflags": 0x00000200}
    assert platform.tree_kill_argv(4242) == ["taskkill", "/T", "/F", "/PID", "4242"]
    monkeypatch.setattr(platform, "IS_WINDOWS", False)
    assert platform.tree_kill_argv(4242) is None


def test_a_timeout_on_windows_kills_the_tree_with_taskkill(on_windows):
    started = time.monotonic()
    with pytest.raises(CommandFailed) as caught:
        process.run([sys.executable, "-c", "import subprocess; subprocess.run(['sleep', '600'])"], timeout_seconds=1)
    assert caught.value.timed_out
    assert time.monotonic() - started < 10
    (call,) = [call for call in standins.calls(on_windows) if call[0] == "taskkill"]
    assert call[:5] == ["taskkill", "/T", "/F", "/PID", call[4]] and int(call[4]) > 0


def test_a_streaming_program_left_early_on_windows_is_killed_with_taskkill(on_windows):
    started = time.monotonic()
    with pytest.raises(RuntimeError), process.stream_stdout(["sleep", "600"]):
        raise RuntimeError("the reader gave up")
    assert time.monotonic() - started < 10
    assert [call[:4] for call in standins.calls(on_windows)] == [["taskkill", "/T", "/F", "/PID"]]


def test_when_taskkill_fails_the_program_itself_is_still_killed(on_windows, monkeypatch):
    monkeypatch.setenv("STANDIN_FAIL", "taskkill")
    started = time.monotonic()
    with pytest.raises(CommandFailed):
        process.run(["sleep", "600"], timeout_seconds=1)
    assert time.monotonic() - started < 10


class FakeMsvcrt:
    """msvcrt.locking as Windows answers it: a byte range locked by another process cannot be locked again."""

    LK_UNLCK, LK_NBLCK = 0, 2

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []
        self.is_held_elsewhere = False

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        self.calls.append((mode, os.lseek(fd, 0, os.SEEK_CUR), nbytes))
        if mode == self.LK_NBLCK and self.is_held_elsewhere:
            raise PermissionError(13, "Permission denied")


def test_the_windows_lock_locks_one_byte_past_the_holder_record(tmp_path, on_windows, monkeypatch):
    fake = FakeMsvcrt()
    monkeypatch.setattr(platform, "msvcrt", fake, raising=False)
    lock = tmp_path / "ncbackup.lock"
    with single_instance(lock, config="c:\\ncbackup\\conf.json") as me:
        assert fake.calls == [(fake.LK_NBLCK, platform.WINDOWS_LOCK_OFFSET, 1)]
        assert f'"pid": {me.pid}' in lock.read_text()
    assert fake.calls[-1] == (fake.LK_UNLCK, platform.WINDOWS_LOCK_OFFSET, 1)


def test_a_windows_lock_held_elsewhere_says_who_holds_it(tmp_path, on_windows, monkeypatch):
    fake = FakeMsvcrt()
    monkeypatch.setattr(platform, "msvcrt", fake, raising=False)
    lock = tmp_path / "ncbackup.lock"
    lock.write_text('{"pid": 4242, "start": "2026-11-30T03:00:00+00:00", "config": "c:\\\\ncbackup\\\\a.json"}\n')
    fake.is_held_elsewhere = True
    with pytest.raises(AlreadyRunning) as caught, single_instance(lock):
        pass
    assert caught.value.holder.pid == 4242 and caught.value.holder.config == "c:\\ncbackup\\a.json"


def test_restrict_to_owner_grants_the_running_users_sid_alone_with_icacls(tmp_path, on_windows, monkeypatch):
    monkeypatch.setenv("STANDIN_WHOAMI_OUTPUT", '"nt authority\\system","S-1-5-18"\r\n')
    key, folder = tmp_path / "key.txt", tmp_path / "logs"
    key.write_text("secret")
    folder.mkdir()
    platform.restrict_to_owner(key)
    platform.restrict_to_owner(folder, is_folder=True)
    assert standins.calls(on_windows) == [
        ["whoami", "/user", "/fo", "csv", "/nh"],
        ["icacls", str(key), "/inheritance:r", "/grant:r", "*S-1-5-18:F"],
        ["icacls", str(folder), "/inheritance:r", "/grant:r", "*S-1-5-18:(OI)(CI)F"],
    ]


def test_a_new_key_file_on_windows_is_restricted_before_the_secret_is_written(tmp_path, on_windows, monkeypatch):
    from ncbackup.stages.keys import write_identity_file

    monkeypatch.setenv("STANDIN_WHOAMI_OUTPUT", '"corp\\backup","S-1-5-21-1-2-3-1001"\r\n')
    key = tmp_path / "key.txt"
    write_identity_file(key)
    assert standins.calls(on_windows)[-1] == ["icacls", str(key), "/inheritance:r", "/grant:r",
                                              "*S-1-5-21-1-2-3-1001:F"]
    assert "AGE-SECRET-KEY-" in key.read_text()


def test_a_key_file_windows_refuses_to_restrict_is_removed_and_named(tmp_path, on_windows, monkeypatch):
    from ncbackup.stages.keys import write_identity_file

    monkeypatch.setenv("STANDIN_WHOAMI_OUTPUT", '"corp\\backup","S-1-5-21-1-2-3-1001"\r\n')
    monkeypatch.setenv("STANDIN_FAIL", "icacls")
    key = tmp_path / "key.txt"
    with pytest.raises(ConfigError, match="readable by its owner only") as caught:
        write_identity_file(key)
    assert caught.value.key == "KEY_FILE" and not key.exists()


def test_whoami_without_a_sid_is_one_sentence(tmp_path, on_windows, monkeypatch):
    monkeypatch.setenv("STANDIN_WHOAMI_OUTPUT", "ERROR: access denied\r\n")
    with pytest.raises(BackupError, match="did not print a security identifier"):
        platform.restrict_to_owner(tmp_path)


def test_a_new_log_file_on_windows_is_made_private_and_a_refusal_only_warns(tmp_path, on_windows, monkeypatch, caplog):
    monkeypatch.setenv("STANDIN_WHOAMI_OUTPUT", '"corp\\backup","S-1-5-21-9"\r\n')
    log_file = tmp_path / "ncbackup.log"
    with platform.open_private_for_append(log_file) as stream:
        stream.write("one\n")
    with platform.open_private_for_append(log_file) as stream:   # existing: not asked again
        stream.write("two\n")
    assert [call[0] for call in standins.calls(on_windows)] == ["whoami", "icacls"]
    monkeypatch.setenv("STANDIN_FAIL", "icacls")
    platform.create_private_folder(tmp_path / "logs")
    assert (tmp_path / "logs").is_dir() and "could not make" in caplog.text


def test_on_posix_restrict_to_owner_is_mode_0600_and_runs_nothing(tmp_path):
    need(os.name == "posix", NOT_POSIX)
    key = tmp_path / "key.txt"
    key.write_text("secret")
    key.chmod(0o644)
    platform.restrict_to_owner(key)
    assert key.stat().st_mode & 0o777 == 0o600
    assert platform.host_system_name() == "Linux"
