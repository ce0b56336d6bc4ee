#!/usr/bin/env python3
"""Many small files: `python3 bench/smallfiles.py --files 200000 --runs 5` (root: loop-mounted ext4 images).

The tree (N files of ~40 bytes in --folders folders, deterministic) is made once on its own loop-mounted ext4
image under bench/work/ and reused (mounted read-only while measured). Then, interleaved run by run, each
measurement on a fresh scratch image: `ncbackup run` (local storage, zstd -3, age, the files index),
`tar -c | zstd -T0 -3 | age -r` on the same tree, and `restic backup` twice into one repository (the second is
the no-change figure). With --memory-files, one ncbackup run per extra tree size for its peak RSS.
Writes bench/results/smallfiles-<UTC time>.json and prints Markdown tables (medians and every run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # as in bench/run.py

from bench.case import RunDirs
from bench.measure import Pipeline, Watch, run_checked, run_measured
from bench.ncbackup_cli import write_config
from bench.run import BENCH_FOLDER, ensure_keys, log, machine_facts, wait_for_other_benchmarks
from bench.scratch import _unmount, scratch_filesystem, sync_filesystem

GENERATOR_VERSION = 2
MIB = 1 << 20
BASE_MTIME_SECONDS = 1_700_000_000
MARKER = "smallfiles.json"   # in the image's root, written last: the tree is complete
PART_SIZE_MIB = 100
SHELL, NCBACKUP, BEFORE, RESTIC_FIRST, RESTIC_AGAIN = (
    "shell: tar | zstd -T0 -3 | age", "ncbackup run (local, zstd 3, age)", "ncbackup run, --compare-source code",
    "restic backup (first)", "restic backup (again, no change)",
)


@dataclass
class Run:
    wall_seconds: float
    cpu_seconds: float
    max_rss_bytes: int          # largest single process (wait4 ru_maxrss)
    tree_rss_peak_bytes: int    # polled sum over the process tree
    sync_seconds: float
    load_average: float
    failure: str | None = None


@dataclass
class Series:
    label: str
    runs: list[Run] = field(default_factory=list)

    def good(self) -> list[Run]:
        return [run for run in self.runs if run.failure is None]

    def median_seconds(self) -> float | None:
        good = self.good()
        return statistics.median(run.wall_seconds for run in good) if good else None


# --- the tree --------------------------------------------------------------------------------


def content(index: int) -> bytes:
    """~40 bytes, a little different per file (so zstd has real, if repetitive, work)."""
    return b"small file %08d checksum %08x\n" % (index, (index * 2654435761) & 0xFFFFFFFF)


def image_size_bytes(files: int) -> int:
    # One 4 KiB block per file, 256-byte inodes, folders and the journal, with room to spare.
    return max(512 * MIB, files * 5 * 1024 + 256 * MIB)


@contextmanager
def small_tree(work_folder: Path, *, files: int, folders: int) -> Iterator[Path]:
    """Yield the tree's folder on its read-only mounted image, making the image first if it is missing."""
    images = work_folder / "smallfiles"
    images.mkdir(parents=True, exist_ok=True)
    label = f"{files}x{folders}"
    image, mount_point = images / f"{label}.img", images / f"{label}.mnt"
    if os.path.ismount(mount_point):
        _unmount(mount_point)
    mount_point.mkdir(exist_ok=True)
    if image.exists():
        run_checked(["mount", "-o", "loop,ro,noatime", str(image), str(mount_point)])
        if not _is_complete(mount_point, files=files, folders=folders):
            _unmount(mount_point)
            image.unlink()
    if not image.exists():
        log(f"making the {files}-file tree on {image} (once)")
        with open(image, "wb") as handle:
            handle.truncate(image_size_bytes(files))
        run_checked(["mkfs.ext4", "-q", "-F", "-m", "0", "-N", str(files + folders + 10_000), str(image)])
        run_checked(["mount", "-o", "loop,noatime", str(image), str(mount_point)])
        started = time.perf_counter()
        _generate(mount_point, files=files, folders=folders)
        log(f"  made in {time.perf_counter() - started:.0f} s")
        _unmount(mount_point)
        run_checked(["mount", "-o", "loop,ro,noatime", str(image), str(mount_point)])
    try:
        yield mount_point / "tree"
    finally:
        _unmount(mount_point)


def _is_complete(mount_point: Path, *, files: int, folders: int) -> bool:
    try:
        marker = json.loads((mount_point / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker == {"files": files, "folders": folders, "generator_version": GENERATOR_VERSION}


def _generate(mount_point: Path, *, files: int, folders: int) -> None:
    tree = mount_point / "tree"
    tree.mkdir()
    per_folder = -(-files // folders)
    for folder_index in range(folders):
        folder = tree / f"d{folder_index:04d}"
        folder.mkdir()
        first = folder_index * per_folder
        for index in range(first, min(first + per_folder, files)):
            path = folder / f"f{index:07d}.txt"
            path.write_bytes(content(index))
            # Nanosecond times, as files written by programs have (each needs a pax mtime record in the tar).
            mtime_ns = (BASE_MTIME_SECONDS + index) * 1_000_000_000 + (index * 7_919_777) % 1_000_000_000
            os.utime(path, ns=(mtime_ns, mtime_ns))
        os.utime(folder, ns=(BASE_MTIME_SECONDS * 1_000_000_000,) * 2)
    marker = {"files": files, "folders": folders, "generator_version": GENERATOR_VERSION}
    (mount_point / MARKER).write_text(json.dumps(marker))
    run_checked(["sync", "-f", str(mount_point)])


def warm_up(tree: Path) -> tuple[int, float]:
    """Read every file once so every tool finds names, inodes and bytes in memory (we cannot drop caches here)."""
    started = time.perf_counter()
    count = 0
    for folder in sorted(tree.iterdir()):
        for path in folder.iterdir():
            path.read_bytes()
            count += 1
    return count, time.perf_counter() - started


# --- the measurements ------------------------------------------------------------------------


def ncbackup_sections(tree: Path, dirs: RunDirs, recipients_file: Path) -> dict[str, dict]:
    return {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(tree)}},
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {"LEVEL": "3"}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption",
                       "PARAMETERS": {"KEY_FILE": str(recipients_file), "FILE_SIZE": str(PART_SIZE_MIB)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": repr({"LOCAL_BACKUP": str(dirs.local_backup)})}},
    }


def measured(pipeline: Pipeline, root: Path) -> Run:
    load_average = os.getloadavg()[0]
    measurement = run_measured(pipeline, watch=Watch(filesystem=root))
    started = time.perf_counter()
    sync_filesystem(root)
    failure = None
    if not measurement.ok:
        failure = measurement.failure + (f": {measurement.stderr_tail}" if measurement.stderr_tail else "")
    return Run(
        wall_seconds=round(measurement.wall_seconds, 3), cpu_seconds=round(measurement.cpu_seconds, 3),
        max_rss_bytes=measurement.max_rss_bytes, tree_rss_peak_bytes=measurement.tree_rss_peak_bytes,
        sync_seconds=round(time.perf_counter() - started, 3), load_average=round(load_average, 2), failure=failure,
    )


class Bench:
    def __init__(self, arguments: argparse.Namespace) -> None:
        self.arguments = arguments
        self.keys = ensure_keys(arguments.work_folder / "keys")
        self.images = arguments.work_folder / "scratch"
        self.ncbackup = [sys.executable, "-m", "ncbackup.cli"]   # this checkout's code, as bench/ncbackup_cli does
        self.series: dict[str, Series] = {label: Series(label) for label in (SHELL, NCBACKUP, BEFORE, RESTIC_FIRST, RESTIC_AGAIN)}

    def scratch(self, label: str):
        return scratch_filesystem(self.images, label, size_bytes=image_size_bytes(self.arguments.files))

    def shell(self, tree: Path) -> Run:
        with self.scratch("smallfiles-shell") as root:
            pipeline = Pipeline([
                ["tar", "-C", "/", "-cf", "-", str(tree.relative_to("/"))],
                ["zstd", "-T0", "-3", "-q", "-c"],
                ["age", "-r", self.keys.recipient],
            ], stdout_path=root / "files.tar.zst.age")
            return measured(pipeline, root)

    def ncbackup_run(self, tree: Path, *, images_label: str = "smallfiles-ncbackup", source: Path | None = None) -> Run:
        with self.scratch(images_label) as root:
            dirs = RunDirs.under(root)
            config = write_config(root / "conf.json", dirs=dirs,
                                  sections=ncbackup_sections(tree, dirs, self.keys.recipients_file))
            # Another checkout's src/ first on the path: its ncbackup package instead of this one's.
            env = {"PYTHONPATH": str(source)} if source is not None else None
            run = measured(Pipeline([[*self.ncbackup, "run", "-c", str(config)]], ok_exit_codes=(0, 1), env=env), root)
            sets = list(dirs.local_backup.rglob("manifest.json"))
            if run.failure is None and len(sets) != 1:
                run.failure = f"no complete set was written ({len(sets)} manifests)"
            return run

    def restic(self, tree: Path) -> tuple[Run, Run]:
        with self.scratch("smallfiles-restic") as root:
            env = {"RESTIC_REPOSITORY": str(root / "repo"), "RESTIC_PASSWORD_FILE": str(self.keys.password_file),
                   "RESTIC_CACHE_DIR": str(root / "cache")}
            run_checked(["restic", "init", "-q"], env=env)
            backup = Pipeline([["restic", "backup", "-q", str(tree)]], env=env)
            return measured(backup, root), measured(backup, root)


def summary_markdown(series: list[Series]) -> str:
    lines = ["| measurement | median s | min s | max s | median CPU s | median s incl. sync | peak RSS MiB | runs ok |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for item in series:
        good = item.good()
        if not good:
            why = next((run.failure for run in item.runs if run.failure), "not run")
            lines.append(f"| {item.label.replace('|', chr(92) + '|')} | failed: {str(why)[:200]} | | | | | | 0/{len(item.runs)} |")
            continue
        walls = [run.wall_seconds for run in good]
        lines.append(
            f"| {item.label.replace('|', chr(92) + '|')} | {statistics.median(walls):.2f} | {min(walls):.2f} | {max(walls):.2f} "
            f"| {statistics.median(run.cpu_seconds for run in good):.2f} "
            f"| {statistics.median(run.wall_seconds + run.sync_seconds for run in good):.2f} "
            f"| {max(run.max_rss_bytes for run in good) / MIB:.0f} | {len(good)}/{len(item.runs)} |"
        )
    by_label = {item.label: item for item in series}
    shell, ours = by_label[SHELL].median_seconds(), by_label[NCBACKUP].median_seconds()
    if shell and ours:
        lines += ["", f"ncbackup / shell pipeline (medians): {ours / shell:.2f} (target <= 1.5)"]
    before = by_label[BEFORE].median_seconds() if BEFORE in by_label else None
    if shell and before:
        lines += ["", f"--compare-source ncbackup / shell pipeline (medians): {before / shell:.2f}"]
    lines += ["", "Every run (interleaved):", "",
              "| run | load | " + " | ".join(item.label.replace("|", "\\|") + " s" for item in series) + " | ncbackup/shell |",
              "|---|---:|" + "---:|" * (len(series) + 1)]
    count = max(len(item.runs) for item in series)
    for index in range(count):
        runs = [item.runs[index] if index < len(item.runs) else None for item in series]
        load = next((run.load_average for run in runs if run is not None), 0.0)
        cells = [f"{run.wall_seconds:.2f}" if run and run.failure is None else "failed" for run in runs]
        shell_run, our_run = by_label[SHELL].runs[index:index + 1], by_label[NCBACKUP].runs[index:index + 1]
        ratio = "n/a"
        if shell_run and our_run and shell_run[0].failure is None and our_run[0].failure is None:
            ratio = f"{our_run[0].wall_seconds / shell_run[0].wall_seconds:.2f}"
        lines.append(f"| {index + 1} | {load:.2f} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines) + "\n"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000, help="files in the timed tree (default 200000)")
    parser.add_argument("--folders", type=int, default=200, help="folders they are spread over (default 200)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of every measurement (default 5)")
    parser.add_argument("--memory-files", default="",
                        help="extra tree sizes (comma-separated file counts, e.g. 100000,1000000) for one ncbackup "
                             "run each: its peak RSS (the trees are made once and kept)")
    parser.add_argument("--skip-peers", action="store_true", help="do not time restic")
    parser.add_argument("--compare-source", type=Path,
                        help="another checkout's src/ folder (e.g. the code before a change, from git archive): "
                             "its ncbackup is timed too, in the same interleaved runs")
    parser.add_argument("--work-folder", type=Path, default=BENCH_FOLDER / "work")
    parser.add_argument("--results-folder", type=Path, default=BENCH_FOLDER / "results")
    arguments = parser.parse_args(argv)
    if arguments.runs < 0 or arguments.files < 1 or arguments.folders < 1:
        parser.error("--runs must be >= 0, --files and --folders >= 1")
    try:
        arguments.memory_counts = [int(text) for text in arguments.memory_files.split(",") if text.strip()]
    except ValueError:
        parser.error("--memory-files takes file counts separated by commas, e.g. 100000,1000000")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench/smallfiles.py: run as root (the trees and scratch filesystems are loop-mounted images)")
    lock = wait_for_other_benchmarks(arguments.work_folder)
    try:
        return _main(arguments)
    finally:
        lock.close()


def _timed_runs(bench: Bench, arguments: argparse.Namespace) -> None:
    """The side-by-side runs on the main tree, interleaved run by run so a burst of load hits every tool alike."""
    with small_tree(arguments.work_folder, files=arguments.files, folders=arguments.folders) as tree:
        count, seconds = warm_up(tree)
        log(f"warm-up: read {count} files in {seconds:.1f} s")
        for run_index in range(arguments.runs):
            log(f"run {run_index + 1}/{arguments.runs}")
            steps = [(SHELL, bench.shell), (NCBACKUP, bench.ncbackup_run)]
            if arguments.compare_source is not None:
                steps.append((BEFORE, lambda tree: bench.ncbackup_run(tree, source=arguments.compare_source)))
            for label, step in steps:
                run = step(tree)
                bench.series[label].runs.append(run)
                log(f"  {label}: {run.wall_seconds:.2f} s, peak RSS {run.max_rss_bytes / MIB:.0f} MiB"
                    + (f" FAILED {run.failure}" if run.failure else ""))
            if not arguments.skip_peers:
                first, again = bench.restic(tree)
                bench.series[RESTIC_FIRST].runs.append(first)
                bench.series[RESTIC_AGAIN].runs.append(again)
                log(f"  restic: {first.wall_seconds:.2f} s first, {again.wall_seconds:.2f} s again")


def _main(arguments: argparse.Namespace) -> int:
    started = datetime.now(timezone.utc)
    bench = Bench(arguments)
    facts = machine_facts()
    memory: list[dict] = []
    if arguments.runs:
        _timed_runs(bench, arguments)
    for files in arguments.memory_counts:
        with small_tree(arguments.work_folder, files=files, folders=arguments.folders) as tree:
            count, seconds = warm_up(tree)
            log(f"warm-up: read {count} files in {seconds:.1f} s")
            run = bench.ncbackup_run(tree, images_label="smallfiles-memory")
        memory.append({"files": files, **asdict(run)})
        log(f"memory probe, {files} files: {run.wall_seconds:.2f} s, peak RSS {run.max_rss_bytes / MIB:.0f} MiB"
            + (f" FAILED {run.failure}" if run.failure else ""))
    series = [bench.series[label] for label in (SHELL, NCBACKUP, BEFORE, RESTIC_FIRST, RESTIC_AGAIN)
              if bench.series[label].runs]
    finished = datetime.now(timezone.utc)
    table = (f"### {arguments.files} files of ~40 bytes in {arguments.folders} folders, {arguments.runs} runs, "
             f"{finished:%Y-%m-%d %H:%M} UTC, {facts['cpus']} CPUs, load at start {facts['load_average_at_start'][0]:.2f}\n\n")
    if series:
        table += summary_markdown(series)
    if memory:
        table += "\n| ncbackup footprint | wall s | peak RSS MiB (largest process) | peak RSS MiB (process tree) |\n"
        table += "|---|---:|---:|---:|\n"
        for probe in memory:
            state = "" if probe["failure"] is None else f" (FAILED: {probe['failure'][:200]})"
            table += (f"| {probe['files']} files{state} | {probe['wall_seconds']:.2f} | {probe['max_rss_bytes'] / MIB:.0f} "
                      f"| {probe['tree_rss_peak_bytes'] / MIB:.0f} |\n")
    document = {
        "started_utc": started.isoformat(), "finished_utc": finished.isoformat(), "machine": facts,
        "arguments": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(arguments).items()},
        "series": [asdict(item) for item in series], "memory": memory, "table_markdown": table,
    }
    arguments.results_folder.mkdir(parents=True, exist_ok=True)
    output = arguments.results_folder / f"smallfiles-{started:%Y%m%dT%H%M%SZ}.json"
    output.write_text(json.dumps(document, indent=2))
    print(table)
    log(f"results written to {output}")
    failed = [item.label for item in series if len(item.good()) != len(item.runs)]
    failed += [str(probe["files"]) for probe in memory if probe["failure"] is not None]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
