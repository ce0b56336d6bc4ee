"""bench/smallfiles.py on a tiny tree: the tree image made once and reused, every measurement run, a JSON report."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench import smallfiles
from tests.support import need, need_binary


def test_tiny_small_files_benchmark_runs_every_measurement_and_reuses_its_tree(tmp_path, capsys):
    need(os.geteuid() == 0, "loop-mounting the tree and scratch filesystems needs root")
    for tool in ("tar", "zstd", "age", "age-keygen", "mkfs.ext4", "restic"):
        need_binary(tool)
    arguments = ["--files", "300", "--folders", "3", "--runs", "1", "--memory-files", "200",
                 "--work-folder", str(tmp_path / "work"), "--results-folder", str(tmp_path / "results")]
    source = Path(smallfiles.__file__).resolve().parent.parent / "src"
    assert smallfiles.main([*arguments, "--compare-source", str(source)]) == 0
    document = json.loads(next((tmp_path / "results").glob("smallfiles-*.json")).read_text())
    labels = {series["label"]: series for series in document["series"]}
    assert set(labels) == {smallfiles.SHELL, smallfiles.NCBACKUP, smallfiles.BEFORE, smallfiles.RESTIC_FIRST,
                           smallfiles.RESTIC_AGAIN}
    for series in labels.values():
        assert [run["failure"] for run in series["runs"]] == [None]
        assert series["runs"][0]["max_rss_bytes"] > 0
    assert [probe["files"] for probe in document["memory"]] == [200]
    assert document["memory"][0]["failure"] is None
    assert "ncbackup / shell pipeline (medians)" in capsys.readouterr().out
    images = tmp_path / "work" / "smallfiles"
    made = {path.name: path.stat().st_mtime_ns for path in images.glob("*.img")}
    assert set(made) == {"300x3.img", "200x3.img"}
    assert smallfiles.main([*arguments[:4], "--runs", "0", *arguments[6:]]) == 0
    assert {path.name: path.stat().st_mtime_ns for path in images.glob("*.img")} == made   # reused, not made again
    assert not any(os.path.ismount(path) for path in images.glob("*.mnt"))


def test_tree_files_are_about_forty_bytes_and_differ():
    sizes = {len(smallfiles.content(index)) for index in range(1000)}
    assert min(sizes) >= 35 and max(sizes) <= 45
    assert len({smallfiles.content(index) for index in range(1000)}) == 1000
