"""The pipeline runner moves real bytes, reports which command failed, and sees memory and disk peaks."""

from __future__ import annotations

import sys

from bench.measure import Pipeline, Watch, folder_bytes, run_measured


def test_pipeline_passes_bytes_from_command_to_command_into_the_output_file(tmp_path):
    source = tmp_path / "in.txt"
    source.write_bytes(b"hello pipeline\n" * 1000)
    out = tmp_path / "out.txt"
    measurement = run_measured(Pipeline([["cat", str(source)], ["tr", "a-z", "A-Z"]], stdout_path=out))
    assert measurement.ok, measurement.failure
    assert out.read_bytes() == b"HELLO PIPELINE\n" * 1000
    assert measurement.exit_codes == [0, 0]


def test_failing_command_in_the_middle_is_named_with_its_stderr(tmp_path):
    measurement = run_measured(Pipeline([
        ["printf", "abc"],
        [sys.executable, "-c", "import sys; sys.stderr.write('middle broke\\n'); sys.exit(3)"],
        ["cat"],
    ]))
    assert not measurement.ok
    assert "exited 3" in measurement.failure
    assert "middle broke" in measurement.stderr_tail


def test_accepted_exit_codes_are_not_failures():
    measurement = run_measured(Pipeline([[sys.executable, "-c", "raise SystemExit(1)"]], ok_exit_codes=(0, 1)))
    assert measurement.ok


def test_peak_rss_reflects_memory_the_process_really_touched():
    allocate = "data = bytearray(150 * 1024 * 1024); data[::4096] = b'x' * len(data[::4096])"
    measurement = run_measured(Pipeline([[sys.executable, "-c", allocate]]))
    assert measurement.ok
    assert measurement.max_rss_bytes >= 140 * 1024 * 1024


def test_watched_folder_peak_catches_a_temporary_file_deleted_before_exit(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    script = (
        "import pathlib, time; p = pathlib.Path(r'%s') / 'tmp.bin'; p.write_bytes(b'x' * (8 << 20));"
        "time.sleep(0.6); p.unlink()" % work
    )
    measurement = run_measured(Pipeline([[sys.executable, "-c", script]]), watch=Watch(folders=[work], filesystem=tmp_path))
    assert measurement.ok
    assert measurement.folder_peak_bytes >= 8 << 20
    assert folder_bytes(work) == 0
