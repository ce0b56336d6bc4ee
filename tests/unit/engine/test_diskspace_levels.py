"""The disk space guard through `ncbackup run` at its exact edges (COMPAT.md section 5, threshold 20%).

Below the threshold: warning; below half of it: critical; both still run every step and end in exit 1,
saying so. Below a tenth of it: the run stops, exit 2. "Below" is strict: exactly at an edge is the
milder level. The free-space reading of platform.py is replaced; everything else runs for real.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ncbackup import platform
from ncbackup.cli import main

TOTAL_BYTES = 10_000        # 1 byte = 0.01%: the edges are 2000 (20%), 1000 (10%) and 200 (2%) bytes free
TERABYTE = 10**12

OK = (0, None)
WARNING = (1, "low disk space: ")
CRITICAL = (1, "critically low disk space: ")
STOP = (2, "the run stops")


def write_config(tmp_path: Path, *, threshold: str = "20") -> Path:
    home = tmp_path / "home" / "touch"
    home.mkdir(parents=True)
    (home / "touch.sh").write_text(f"echo ran >> {tmp_path / 'ran.txt'}\n")
    (tmp_path / "log").mkdir()
    config = {
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "HOME_FOLDER": str(tmp_path / "home"),
                    "LOG_FOLDER": str(tmp_path / "log") + "/", "DISK_SPACE_THRESHOLD": threshold},
        "FIRST": {"ACTION": "execute", "NAME": "touch", "EXECUTABLE": "touch.sh", "EXECUTE_WITH": "bash"},
        "SECOND": {"ACTION": "execute", "NAME": "touch", "EXECUTABLE": "touch.sh", "EXECUTE_WITH": "bash"},
    }
    path = tmp_path / "conf.json"
    path.write_text(json.dumps(config))
    return path


def run_with_free_space(tmp_path, monkeypatch, capsys, *, free_bytes: int, total_bytes: int, threshold: str = "20"):
    monkeypatch.setattr(platform, "disk_usage",
                        lambda path: platform.DiskUsage(total_bytes=total_bytes, free_bytes=free_bytes))
    path = write_config(tmp_path, threshold=threshold)
    exit_status = main(["run", "-c", str(path)])
    ran = (tmp_path / "ran.txt").read_text().count("ran") if (tmp_path / "ran.txt").exists() else 0
    return exit_status, capsys.readouterr(), ran


def shown_percents(summary: str) -> list[float]:
    return [float(found) for found in re.findall(r"([0-9.]+)% free on the filesystem", summary)]


def assert_level(outcome, expected, *, threshold: float = 20) -> None:
    exit_status, captured, ran = outcome
    expected_status, expected_text = expected
    summary = captured.out
    assert exit_status == expected_status, summary
    assert f"result: {['ok', 'warning', 'failed'][expected_status]} (exit {expected_status})" in summary
    warnings = [line.strip() for line in summary.splitlines() if line.startswith("  warning: ")]
    if expected == OK:
        assert warnings == [] and ran == 2
    elif expected == STOP:
        assert "error: only " in summary and expected_text in summary and ran == 0
        assert summary.count("[skipped]") == 2
    else:
        # Said once (not once per step), in the summary and the log, and every step still ran.
        assert len(warnings) == 1 and warnings[0].startswith(f"warning: {expected_text}"), summary
        assert "free some space or raise DISK_SPACE_THRESHOLD" in warnings[0]
        assert ran == 2
    if expected != OK:
        # The percent shown agrees with the verdict: never "20.0% free" for a warning under a 20% threshold.
        edge = {WARNING: threshold, CRITICAL: threshold / 2, STOP: threshold / 10}[expected]
        assert shown_percents(summary) and all(percent < edge for percent in shown_percents(summary)), summary


@pytest.mark.parametrize(("free_bytes", "expected"), [
    (2001, OK), (2000, OK), (1999, WARNING),
    (1001, WARNING), (1000, WARNING), (999, CRITICAL),
    (201, CRITICAL), (200, CRITICAL), (199, STOP),
])
def test_levels_at_the_edges_in_bytes(tmp_path, monkeypatch, capsys, free_bytes, expected):
    assert_level(run_with_free_space(tmp_path, monkeypatch, capsys, free_bytes=free_bytes, total_bytes=TOTAL_BYTES),
                 expected)


@pytest.mark.parametrize(("free_percent", "expected"), [
    (21, OK), (20, OK), (19, WARNING), (11, WARNING), (10, WARNING), (9, CRITICAL),
    (3, CRITICAL), (2, CRITICAL), (1, STOP),
])
def test_levels_at_the_edges_in_percent_of_a_large_disk(tmp_path, monkeypatch, capsys, free_percent, expected):
    outcome = run_with_free_space(tmp_path, monkeypatch, capsys, free_bytes=free_percent * TERABYTE // 100,
                                  total_bytes=TERABYTE)
    assert_level(outcome, expected)


@pytest.mark.parametrize(("threshold", "free_bytes", "expected"), [
    ("15%", 1500, OK), ("15%", 1499, WARNING), ("15%", 750, WARNING), ("15%", 749, CRITICAL),
    ("15%", 150, CRITICAL), ("15%", 149, STOP),
    ("7", 70, CRITICAL), ("7", 69, STOP),
])
def test_levels_at_the_edges_of_other_thresholds(tmp_path, monkeypatch, capsys, threshold, free_bytes, expected):
    outcome = run_with_free_space(tmp_path, monkeypatch, capsys, free_bytes=free_bytes, total_bytes=TOTAL_BYTES,
                                  threshold=threshold)
    assert_level(outcome, expected, threshold=float(threshold.rstrip("%")))


def test_low_disk_warning_is_in_the_log_file_and_the_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(platform, "disk_usage", lambda path: platform.DiskUsage(total_bytes=TOTAL_BYTES, free_bytes=999))
    path = write_config(tmp_path)
    assert main(["run", "-c", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "warning" and report["exit_status"] == 1
    assert [text[:27] for text in report["warnings"]] == ["critically low disk space: "]
    log_lines = (tmp_path / "log" / "ncbackup.log").read_text().splitlines()
    assert [line.split(" ", 2)[2].split(": ")[0] for line in log_lines if "critically low disk space: 9.9% free" in line
            ] == ["CRITICAL ncbackup.engine.run"] * 2 + ["INFO ncbackup.run"]   # before each step, then the summary
