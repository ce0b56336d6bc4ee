"""The subprocess runner: argument lists, exit checks, timeouts, masked secrets, streaming."""

from __future__ import annotations

import sys

import pytest

from ncbackup import process
from ncbackup.errors import BackupError, CommandFailed

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
