"""The subprocess runner: argument lists, exit checks, timeouts, masked secrets, streaming."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from ncbackup import process
from ncbackup.errors import BackupError, CommandFailed
from tests.integration.servers.background import start_background
from tests.support import need, need_binary

PY = sys.executable


def test_run_captures_output_of_an_argument_list_without_a_shell():
    result = process.run([PY, "-c", "import sys; print(sys.argv[1])", "a b; echo $(id)"])
    assert result.text == "a b; echo $(id)\n"


def test_run_raises_command_failed_with_stderr_tail_and_code():
    with pytest.raises(CommandFailed) as caught:
        process.run([PY, "-c", "import sys; sys.stderr.write('first\\nthe reason\\n'); sys.exit(3)"])
    assert caught.value.code == 3
    assert "the reason" in str(caught.value)


def test_secrets_are_masked_in_errors():
    with pytest.raises(CommandFailed) as caught:
        process.run(
            [PY, "-c", "import sys; sys.stderr.write('bad pw s3cr3t'); sys.exit(1)", "--password=s3cr3t"],
            secrets=["s3cr3t"],
        )
    assert "s3cr3t" not in str(caught.value)
    assert "s3cr3t" not in " ".join(caught.value.argv)
    assert "***" in caught.value.stderr_tail


def test_run_streaming_lines_masks_secrets_in_its_lines_and_its_error():
    seen: list[str] = []
    with pytest.raises(CommandFailed) as caught:
        process.run_streaming_lines([PY, "-c", "import sys; print('token s3cr3t refused'); sys.exit(2)", "--token=s3cr3t"],
                                    on_line=seen.append, secrets=["s3cr3t"])
    assert seen == ["token *** refused"]
    assert "s3cr3t" not in str(caught.value) and caught.value.argv[-1] == "--token=***"


def test_run_times_out_and_says_so():
    with pytest.raises(CommandFailed) as caught:
        process.run([PY, "-c", "import time; time.sleep(30)"], timeout_seconds=0.5)
    assert caught.value.timed_out
    assert "did not finish in time" in str(caught.value)


def test_missing_program_is_one_clear_sentence():
    with pytest.raises(BackupError, match="was not found"):
        process.run(["/nonexistent/ncbackup-no-such-tool"])


def test_stream_stdout_yields_all_bytes_and_checks_exit():
    code = "import sys; sys.stdout.buffer.write(b'x' * 3_000_000)"
    with process.stream_stdout([PY, "-c", code]) as out:
        data = out.read()
    assert len(data) == 3_000_000


def test_stream_stdout_of_a_program_dying_halfway_raises_after_its_output():
    code = "import sys; sys.stdout.buffer.write(b'partial'); sys.stdout.flush(); sys.stderr.write('crashed'); sys.exit(9)"
    with pytest.raises(CommandFailed) as caught:
        with process.stream_stdout([PY, "-c", code]) as out:
            assert out.read() == b"partial"
    assert caught.value.code == 9 and "crashed" in str(caught.value)


def test_stream_stdout_kills_the_child_when_the_consumer_fails():
    with pytest.raises(RuntimeError):
        with process.stream_stdout([PY, "-c", "import time; print('x', flush=True); time.sleep(60)"]) as out:
            out.readline()
            raise RuntimeError("consumer failed")


def test_stream_stdout_timeout_kills_a_hanging_program():
    with pytest.raises(CommandFailed) as caught:
        with process.stream_stdout([PY, "-c", "import time; time.sleep(60)"], timeout_seconds=0.5) as out:
            out.read()
    assert caught.value.timed_out


def test_stream_stdin_feeds_the_child_and_checks_its_exit(tmp_path):
    target = tmp_path / "out.bin"
    code = "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())"
    with process.stream_stdin([PY, "-c", code, str(target)]) as stdin:
        stdin.write(b"y" * 2_000_000)
    assert target.read_bytes() == b"y" * 2_000_000


def test_stream_stdin_reports_a_child_that_stops_reading():
    with pytest.raises(CommandFailed) as caught:
        with process.stream_stdin([PY, "-c", "import sys; sys.stderr.write('refused'); sys.exit(4)"]) as stdin:
            for _ in range(100):
                stdin.write(b"z" * 1_000_000)
    assert caught.value.code == 4


# --- process groups: timeouts, aborts and Ctrl-C kill everything a program started ---------------

SH = "/bin/sh"
BOUND_SECONDS = 20  # "returns in about 1 s": far below the 600 s the grandchild would sleep


def _live_processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live (not zombie) process, read from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            found[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return found


def live_members(group_id: int) -> list[int]:
    """Pids of live processes in a process group."""
    return [pid for pid, (_parent, group) in _live_processes().items() if group == group_id]


def kill_test_program(pid: int) -> None:
    """Kill a test program, its group and its children, whether or not it got a group of its own."""
    processes = _live_processes()
    doomed = {pid} | {other for other, (parent, group) in processes.items() if group == pid or parent == pid}
    for other in doomed:
        try:
            os.kill(other, signal.SIGKILL)
        except ProcessLookupError:
            pass


# Every test program first records its own pid (its group id) and starts a background sleep that
# records its pid too: that grandchild outlives a kill of the program alone, so it proves the group kill.
RECORD_PIDS = 'sleep 600 & echo "$$ $!" > "$0.tmp"; mv "$0.tmp" "$0"; '


def wait_for_pids(pid_file: Path) -> tuple[int, int]:
    """(the program's pid, its background grandchild's pid), once the program has written them."""
    for _attempt in range(200):
        if pid_file.exists():
            leader, grandchild = pid_file.read_text().split()
            return int(leader), int(grandchild)
        time.sleep(0.05)
    raise AssertionError("the program never wrote its pid")


def wait_for_pid(pid_file: Path) -> int:
    return wait_for_pids(pid_file)[0]


def assert_group_gone(pid_file: Path) -> None:
    group_id, grandchild = wait_for_pids(pid_file)
    for _attempt in range(100):
        if not live_members(group_id) and grandchild not in _live_processes():
            return
        time.sleep(0.05)
    raise AssertionError(f"processes of group {group_id} still run: {live_members(group_id)}, grandchild {grandchild}")


@pytest.fixture
def pid_file(tmp_path):
    """Where a test program writes its pid (= its group id); whatever is left of the group dies at teardown."""
    need(Path("/proc/self/stat").exists(), "reading process groups needs /proc")
    need_binary("sh")
    path = tmp_path / "pid"
    yield path
    if path.exists():
        for pid in wait_for_pids(path):
            kill_test_program(pid)


def call_bounded(call) -> BaseException | None:
    """Run call in a thread; fail if it has not returned within BOUND_SECONDS; return what it raised."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome.append(error)

    worker = threading.Thread(target=target, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(BOUND_SECONDS)
    assert not worker.is_alive(), f"still blocked after {time.monotonic() - started:.0f} s"
    return outcome[0]


def _via_run(argv, tmp_path):
    process.run(argv, timeout_seconds=1)


def _via_stream_stdout(argv, tmp_path):
    with process.stream_stdout(argv, timeout_seconds=1) as out:
        out.read()


def _via_stream_stdin(argv, tmp_path):
    with process.stream_stdin(argv, timeout_seconds=1):
        pass


def _via_run_streaming_lines(argv, tmp_path):
    process.run_streaming_lines(argv, on_line=lambda line: None, timeout_seconds=1)


def _via_start_background(argv, tmp_path):
    # The test servers' helper (tests/integration/servers/background.py): a leftover server would outlive the suite.
    background = start_background(argv, output_path=tmp_path / "out.log")
    wait_for_pid(tmp_path / "pid")
    background.stop(timeout_seconds=1)


ENTRY_POINTS = {
    "run": _via_run, "stream_stdout": _via_stream_stdout, "stream_stdin": _via_stream_stdin,
    "run_streaming_lines": _via_run_streaming_lines, "start_background": _via_start_background,
}


@pytest.mark.parametrize("entry_point", list(ENTRY_POINTS))
def test_a_timeout_kills_the_grandchild_too_from_every_entry_point(entry_point, pid_file, tmp_path):
    # The wrapper's grandchild (sleep) keeps stdout and stderr open: only killing the group closes them.
    argv = [SH, "-c", RECORD_PIDS + "sleep 600; true", str(pid_file)]
    started = time.monotonic()
    raised = call_bounded(lambda: ENTRY_POINTS[entry_point](argv, tmp_path))
    assert time.monotonic() - started < 10
    if entry_point == "start_background":
        assert raised is None
    else:
        assert isinstance(raised, CommandFailed) and raised.timed_out, raised
    assert_group_gone(pid_file)


def test_a_failing_consumer_kills_the_dump_and_its_group_at_once(pid_file):
    # 200 MB that nobody will read, then a hang; the background sleep proves the whole group is killed.
    argv = [SH, "-c", RECORD_PIDS + "head -c 200000000 /dev/zero; sleep 600", str(pid_file)]

    def consume() -> None:
        with process.stream_stdout(argv) as out:
            for _chunk in range(4):
                out.read(1 << 20)
            raise RuntimeError("the consumer failed")

    raised = call_bounded(consume)
    assert isinstance(raised, RuntimeError)
    assert_group_gone(pid_file)


def _interrupt_main_thread_when_started(pid_file: Path) -> threading.Thread:
    """Send SIGINT (Ctrl-C) to the main thread once the program has written its pid."""
    main_thread = threading.main_thread().ident

    def interrupt() -> None:
        wait_for_pid(pid_file)
        time.sleep(0.3)
        signal.pthread_kill(main_thread, signal.SIGINT)

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    return thread


def _hang_in_stream_stdout(argv):
    with process.stream_stdout(argv) as out:
        out.read()


def _hang_in_stream_stdin(argv):
    with process.stream_stdin(argv):
        time.sleep(600)


CTRL_C_ENTRY_POINTS = {
    "run": lambda argv: process.run(argv),
    "stream_stdout": _hang_in_stream_stdout,
    "stream_stdin": _hang_in_stream_stdin,
    "run_streaming_lines": lambda argv: process.run_streaming_lines(argv, on_line=lambda line: None),
}


@pytest.mark.parametrize("entry_point", list(CTRL_C_ENTRY_POINTS))
def test_ctrl_c_kills_the_program_and_its_group(entry_point, pid_file):
    need(threading.current_thread() is threading.main_thread(), "Ctrl-C reaches the main thread only")
    argv = [SH, "-c", RECORD_PIDS + "sleep 600; true", str(pid_file)]
    # A broken implementation would hang for 600 s: end the group after the bound so the test fails instead.
    safety = threading.Timer(BOUND_SECONDS, lambda: [kill_test_program(pid) for pid in wait_for_pids(pid_file)])
    safety.daemon = True
    _interrupt_main_thread_when_started(pid_file)
    started = time.monotonic()
    safety.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            CTRL_C_ENTRY_POINTS[entry_point](argv)
    finally:
        safety.cancel()
    assert time.monotonic() - started < 10
    assert_group_gone(pid_file)


def test_kill_all_running_ends_programs_other_threads_started(pid_file):
    argv = [SH, "-c", RECORD_PIDS + "sleep 600", str(pid_file)]
    outcome: list[BaseException] = []

    def dump() -> None:
        try:
            with process.stream_stdout(argv) as out:
                out.read()
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome.append(error)

    worker = threading.Thread(target=dump, daemon=True)
    worker.start()
    wait_for_pid(pid_file)
    process.kill_all_running()
    worker.join(BOUND_SECONDS)
    assert not worker.is_alive() and isinstance(outcome[0], CommandFailed)
    assert_group_gone(pid_file)


@pytest.mark.parametrize("entry_point", ["run", "run_streaming_lines"])
def test_a_leftover_grandchild_holding_the_pipe_does_not_hang_a_successful_program(entry_point, pid_file,
                                                                                  monkeypatch, caplog):
    monkeypatch.setattr(process, "PIPE_GRACE_SECONDS", 0.5)
    argv = [SH, "-c", RECORD_PIDS + "echo done", str(pid_file)]
    if entry_point == "run":
        raised = call_bounded(lambda: process.run(argv))
    else:
        raised = call_bounded(lambda: process.run_streaming_lines(argv, on_line=lambda line: None))
    assert raised is None
    assert "left a process running" in caplog.text


# --- a successful program's stderr is logged, masked ---------------------------------------------


def test_run_logs_the_stderr_of_a_successful_program_masked(caplog):
    process.run([SH, "-c", "echo 'Warning: column statistics skipped, pw s3cr3t' >&2"], secrets=["s3cr3t"])
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("column statistics skipped" in message for message in warnings), warnings
    assert "s3cr3t" not in caplog.text and "***" in caplog.text


def test_run_leaves_stderr_to_a_caller_that_reads_it(caplog):
    result = process.run([SH, "-c", "echo 'tool 1.2.3' >&2"], stderr_log_level=None)
    assert result.stderr == b"tool 1.2.3\n" and "tool 1.2.3" not in caplog.text


def test_stream_stdout_logs_the_stderr_of_a_successful_dump(caplog):
    with process.stream_stdout([SH, "-c", "echo data; echo 'Warning: table t1 is a view' >&2"]) as out:
        assert out.read() == b"data\n"
    assert any(record.levelno == logging.WARNING and "table t1 is a view" in record.getMessage()
               for record in caplog.records)


def test_stream_stdin_logs_the_stderr_of_a_successful_program(caplog):
    with process.stream_stdin([SH, "-c", "cat > /dev/null; echo 'notice: 3 rows skipped' >&2"]) as stdin:
        stdin.write(b"rows")
    assert any(record.levelno == logging.WARNING and "3 rows skipped" in record.getMessage()
               for record in caplog.records)
