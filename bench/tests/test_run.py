"""The whole benchmark on a tiny corpus: real pipelines, real restores compared byte for byte, a JSON report."""

from __future__ import annotations

import json
import os

import pytest

from bench import run
from bench.case import BenchContext, RunDirs
from bench.files_case import FilesCase
from bench.measure import run_measured
from bench.scratch import scratch_filesystem
from tests.support import need, need_binary


def _need_root_and_tools() -> None:
    need(os.geteuid() == 0, "loop-mounting scratch filesystems needs root")
    for tool in ("tar", "zstd", "age", "age-keygen", "split", "mkfs.ext4"):
        need_binary(tool)


def test_scratch_filesystem_is_a_fresh_mount_and_is_gone_afterwards(tmp_path):
    _need_root_and_tools()
    with scratch_filesystem(tmp_path, "probe", size_bytes=64 << 20) as root:
        assert os.path.ismount(root)
        assert sorted(p.name for p in root.iterdir()) == ["lost+found"]
        (root / "written").write_bytes(b"x" * 4096)
    assert not root.exists()
    assert list(tmp_path.iterdir()) == []


def test_tiny_benchmark_times_shell_pipelines_and_checks_restores(tmp_path, capsys):
    _need_root_and_tools()
    status = run.main([
        "--size", "2MiB", "--runs", "1", "--skip-peers", "--memory-sizes", "",
        "--work-folder", str(tmp_path / "work"), "--results-folder", str(tmp_path / "results"),
    ])
    results = list((tmp_path / "results").glob("*.json"))
    assert len(results) == 1
    document = json.loads(results[0].read_text())
    by_role = {}
    for measurement in document["measurements"]:
        by_role.setdefault(measurement["role"], []).append(measurement)
    shell_backups = by_role["backup-baseline"]
    assert len(shell_backups) == 2
    for measurement in shell_backups:
        assert measurement["summary"]["runs_ok"] == 1, measurement
        assert measurement["summary"]["output_bytes"] > 0
    shell_restore = by_role["restore-baseline"][0]["runs"][0]
    assert shell_restore["failure"] is None and shell_restore["check"] is None
    assert shell_restore["checked_content"] is True  # first run: compared byte for byte
    ncbackup = by_role["backup-ncbackup"][0]
    assert ncbackup["status"] == "not available" or ncbackup["summary"]["runs_ok"] == 1, ncbackup
    assert status == 0
    table = capsys.readouterr().out
    assert "| ratio (medians) | value | target |" in table
    assert "tar \\| zstd" in table  # pipes escaped inside table cells
    assert not list((tmp_path / "work" / "scratch").iterdir())  # every image unmounted and deleted


def test_restore_check_reports_a_restored_file_with_one_wrong_byte(tmp_path):
    _need_root_and_tools()
    keys = run.ensure_keys(tmp_path / "keys")
    case = FilesCase()
    case.setup(BenchContext(seed=3, size_bytes=2 << 20, work_folder=tmp_path, keys=keys, log=lambda _: None))
    dirs = RunDirs.under(tmp_path / "scratch")
    backup = next(iter(case.shell_backups(dirs).values()))
    assert run_measured(backup).ok
    assert run_measured(case.shell_restore(dirs)).ok
    assert case.check_restore(dirs, with_content=True) is None
    restored = dirs.restore_target / case.corpus.path.resolve().relative_to("/") / "large" / "app.log"
    data = bytearray(restored.read_bytes())
    data[0] ^= 0xFF
    restored.write_bytes(bytes(data))
    assert "differs" in case.check_restore(dirs, with_content=True)


def test_case_not_written_yet_is_a_clear_message(monkeypatch):
    monkeypatch.setitem(run.CASE_MODULES, "future", "bench.future_case")
    with pytest.raises(SystemExit, match="not available yet"):
        run.load_case("future")


def test_keys_are_private_and_reused(tmp_path):
    need_binary("age-keygen")
    first = run.ensure_keys(tmp_path / "keys")
    second = run.ensure_keys(tmp_path / "keys")
    assert first == second
    assert first.recipient.startswith("age1")
    for secret in (first.identity_file, first.password_file):
        assert secret.stat().st_mode & 0o777 == 0o600
    assert "AGE-SECRET-KEY" not in first.recipients_file.read_text()


def test_second_benchmark_waits_for_the_first_instead_of_sharing_its_images(tmp_path, capsys):
    import subprocess
    import sys

    (tmp_path / "work").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; h = open(sys.argv[1], 'a+'); fcntl.flock(h, fcntl.LOCK_EX);"
        "h.write('pid holder\\n'); h.flush(); print('held', flush=True); time.sleep(1)"
    ), str(tmp_path / "work" / ".lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    lock = run.wait_for_other_benchmarks(tmp_path / "work")
    try:
        assert holder.wait(timeout=30) == 0  # we only got the lock once the holder let go
        assert "another benchmark is running" in capsys.readouterr().err
    finally:
        lock.close()
        holder.stdout.close()


def test_plain_folder_scratch_without_root_is_emptied_and_removed(tmp_path):
    with scratch_filesystem(tmp_path, "plain", size_bytes=1 << 20, use_loop=False) as root:
        assert not os.path.ismount(root)
        (root / "deep" / "er").mkdir(parents=True)
        (root / "deep" / "er" / "file").write_bytes(b"x")
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_an_interrupted_run_are_cleared_before_mounting(tmp_path):
    _need_root_and_tools()
    leftover = tmp_path / "again.mnt"
    (leftover / "stale").mkdir(parents=True)
    (tmp_path / "again.img").write_bytes(b"not an image")
    with scratch_filesystem(tmp_path, "again", size_bytes=64 << 20) as root:
        assert os.path.ismount(root)
        assert not (root / "stale").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_broken_peer_is_reported_and_the_other_figures_are_kept(tmp_path, monkeypatch):
    _need_root_and_tools()
    from bench.case import Peer
    from bench.measure import Pipeline

    class BrokenPeerCase(FilesCase):
        def peers(self, dirs):
            return {"cat (a peer whose setup fails)": Peer(prepare=[Pipeline([["false"]])], timed=Pipeline([["true"]]))}

    monkeypatch.setattr(run, "load_case", lambda name: BrokenPeerCase())
    status = run.main([
        "--size", "1MiB", "--runs", "1", "--memory-sizes", "",
        "--work-folder", str(tmp_path / "work"), "--results-folder", str(tmp_path / "results"),
    ])
    document = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    assert status == 1
    assert any("preparing cat (a peer whose setup fails) failed" in error for error in document["errors"])
    shell = [m for m in document["measurements"] if m["role"] == "backup-baseline"]
    assert all(m["summary"]["runs_ok"] == 1 for m in shell)
