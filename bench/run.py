#!/usr/bin/env python3
"""Benchmark ncbackup against the shell pipeline and its peers: `python3 bench/run.py --size 1GiB --runs 3`.

Writes bench/results/<UTC timestamp>.json and prints the Markdown table (see bench/README.md).
Needs root (every measurement writes into its own fresh loop-mounted ext4 image).
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script, Python puts bench/ first on sys.path, where `tests` would mean bench/tests;
    # the checkout's root instead makes `bench` and `tests` mean what they mean everywhere else.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import report  # noqa: E402
from bench.case import BenchCase, BenchContext, Keys, RunDirs  # noqa: E402
from bench.corpus import parse_size, size_label, warm_up  # noqa: E402
from bench.measure import Measurement, Pipeline, Watch, run_checked, run_measured  # noqa: E402
from bench.ncbackup_cli import ncbackup_command, unavailable_reason, write_config  # noqa: E402
from bench.report import MeasurementResult, MemoryProbe, RunRecord  # noqa: E402
from bench.scratch import ScratchError, scratch_filesystem, sync_filesystem  # noqa: E402

BENCH_FOLDER = Path(__file__).resolve().parent
CASE_MODULES = {"files": "bench.files_case", "db": "bench.db_case", "s3": "bench.s3_case"}
BASELINE_TOOLS = ("tar", "zstd", "age", "age-keygen", "split", "cat")
# Cases are asked for their labels once with these (nothing is run or created with them).
_PLACEHOLDER_DIRS = RunDirs(*(Path("/nonexistent"),) * 5)


def log(message: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASE_MODULES), default="files", help="what to back up (default files)")
    parser.add_argument("--size", default="1GiB",
                        help="corpus size, e.g. 100MiB, 1GiB, 4GiB (default 1GiB); several, comma-separated "
                             "(512MiB,1GiB,4GiB), run one after the other, a table each")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of every measurement (default 3; medians need >= 3)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1); the corpus is cached per seed and size")
    parser.add_argument("--memory-sizes", default="4GiB",
                        help="extra corpus sizes for one ncbackup run each, to show RSS does not grow "
                             "(comma-separated, default 4GiB; '' to skip)")
    parser.add_argument("--skip-peers", action="store_true", help="do not time restic and borg")
    parser.add_argument("--work-folder", type=Path, default=BENCH_FOLDER / "work", help="corpora, keys, images (default bench/work)")
    parser.add_argument("--results-folder", type=Path, default=BENCH_FOLDER / "results")
    parser.add_argument("--no-loop", action="store_true",
                        help="write into plain folders instead of fresh loop-mounted ext4 images (no root needed; noisier)")
    arguments = parser.parse_args(argv)
    if arguments.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        arguments.sizes_bytes = [parse_size(text) for text in arguments.size.split(",") if text.strip()]
        arguments.size_bytes = arguments.sizes_bytes[0]
        arguments.memory_sizes_bytes = [parse_size(s) for s in arguments.memory_sizes.split(",") if s.strip()]
    except ValueError as error:
        parser.error(str(error))
    return arguments


def load_case(name: str) -> BenchCase:
    """Import bench/<name>_case.py and call its make_case(); a case not written yet is a clear error."""
    module_name = CASE_MODULES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise SystemExit(f"bench: the {name!r} case is not available yet ({module_name.replace('.', '/')}.py does not exist)")
    return module.make_case()


def ensure_keys(folder: Path) -> Keys:
    """Make (once) an age identity, its recipient file and a passphrase file for restic/borg, all 0600."""
    folder.mkdir(parents=True, exist_ok=True)
    identity = folder / "identity.txt"
    if not identity.exists():
        run_checked(["age-keygen", "-o", str(identity)])
    identity.chmod(0o600)
    recipient = run_checked(["age-keygen", "-y", str(identity)]).strip()
    recipients = folder / "recipients.txt"
    if not recipients.exists() or recipients.read_text().strip() != recipient:
        recipients.write_text(recipient + "\n")
    password = folder / "password.txt"
    if not password.exists():
        descriptor = os.open(password, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    return Keys(identity_file=identity, recipients_file=recipients, recipient=recipient, password_file=password)


def tree_bytes(folder: Path | None) -> int | None:
    """Apparent size of every regular file under folder (None if no folder is given, 0 if missing)."""
    if folder is None:
        return None
    if not folder.exists():
        return 0
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


class Runner:
    """Runs one case: every measurement on its own fresh scratch filesystem, interleaved run by run."""

    def __init__(self, arguments: argparse.Namespace, case: BenchCase, keys: Keys) -> None:
        self.arguments = arguments
        self.case = case
        self.keys = keys
        self.images = arguments.work_folder / "scratch"
        self.ncbackup = ncbackup_command()
        self.results: dict[str, MeasurementResult] = {}
        self.order: list[str] = []

    def result(self, label: str, role: str, description: str = "") -> MeasurementResult:
        if label not in self.results:
            self.results[label] = MeasurementResult(label=label, role=role, description=description)
            self.order.append(label)
        return self.results[label]

    def scratch(self, label: str):
        return scratch_filesystem(self.images, label, size_bytes=self.case.scratch_size_bytes(), use_loop=not self.arguments.no_loop)

    def measured(self, pipeline: Pipeline, dirs: RunDirs, *, output_folder: Path | None, watch_work: bool = False) -> RunRecord:
        load_average = os.getloadavg()[0]
        watch = Watch(folders=[dirs.work] if watch_work else [], filesystem=dirs.root)
        measurement: Measurement = run_measured(pipeline, watch=watch)
        end_used = _used_bytes(dirs.root)
        sync_started = time.perf_counter()
        sync_filesystem(dirs.root)
        sync_seconds = time.perf_counter() - sync_started
        failure = None
        if not measurement.ok:
            failure = measurement.failure + (f": {measurement.stderr_tail}" if measurement.stderr_tail else "")
        return RunRecord(
            wall_seconds=round(measurement.wall_seconds, 3), cpu_seconds=round(measurement.cpu_seconds, 3),
            sync_seconds=round(sync_seconds, 3), max_rss_bytes=measurement.max_rss_bytes,
            tree_rss_peak_bytes=measurement.tree_rss_peak_bytes, output_bytes=tree_bytes(output_folder),
            work_folder_peak_bytes=measurement.folder_peak_bytes,
            transient_disk_bytes=max(0, measurement.filesystem_peak_used_bytes - end_used),
            load_average=round(load_average, 2), failure=failure,
        )

    def run_shell(self, run_index: int) -> None:
        labels = list(self.case.shell_backups(_PLACEHOLDER_DIRS))
        for position, label in enumerate(labels):
            with self.scratch(f"shell{position}") as root:
                dirs = RunDirs.under(root)
                pipeline = self.case.shell_backups(dirs)[label]
                result = self.result(label, report.ROLE_BACKUP_BASELINE, pipeline.describe())
                record = self.measured(pipeline, dirs, output_folder=dirs.output)
                result.runs.append(record)
                log(f"  {label}: {record.wall_seconds:.2f} s{' FAILED ' + record.failure if record.failure else ''}")
                if position != 0 or record.failure:
                    continue
                restore = self.case.shell_restore(dirs)
                if restore is None:
                    continue
                restore_result = self.result(self.case.shell_restore_label, report.ROLE_RESTORE_BASELINE, restore.describe())
                restore_record = self.measured(restore, dirs, output_folder=None)
                self._check(restore_record, dirs, run_index)
                restore_result.runs.append(restore_record)
                log(f"  shell restore: {restore_record.wall_seconds:.2f} s{_problem(restore_record)}")

    def run_ncbackup(self, run_index: int) -> None:
        backup_label, restore_label = "ncbackup run -c conf.json", "ncbackup restore --latest"
        backup_result = self.result(backup_label, report.ROLE_BACKUP_NCBACKUP)
        reason = unavailable_reason(self.ncbackup, "run")
        if reason:
            backup_result.status, backup_result.reason = "not available", reason
            log(f"  {backup_label}: not available yet: {reason}")
            return
        with self.scratch("ncbackup") as root:
            dirs = RunDirs.under(root)
            config = write_config(root / "conf.json", dirs=dirs, sections=self.case.ncbackup_sections(dirs))
            pipeline = Pipeline([[*self.ncbackup, "run", "-c", str(config)]], ok_exit_codes=(0, 1))
            backup_result.description = pipeline.describe()
            record = self.measured(pipeline, dirs, output_folder=self.case.ncbackup_output_folder(dirs), watch_work=True)
            backup_result.runs.append(record)
            log(f"  {backup_label}: {record.wall_seconds:.2f} s, peak RSS {record.max_rss_bytes / report.MIB:.0f} MiB"
                f"{_problem(record)}")
            if record.failure:
                backup_result.status = "failed"
                return
            restore_sections = self.case.ncbackup_restore_sections(dirs)
            restore_config = config
            if restore_sections is not None:
                restore_config = write_config(root / "restore.json", dirs=dirs, sections=restore_sections)
            arguments = self.case.ncbackup_restore_arguments(dirs, restore_config)
            if arguments is None:
                return
            restore_result = self.result(restore_label, report.ROLE_RESTORE_NCBACKUP)
            reason = unavailable_reason(self.ncbackup, arguments[0])
            if reason:
                restore_result.status, restore_result.reason = "not available", reason
                log(f"  {restore_label}: not available yet: {reason}")
                return
            restore = Pipeline([[*self.ncbackup, *arguments]], ok_exit_codes=(0, 1))
            restore_result.description = restore.describe()
            restore_record = self.measured(restore, dirs, output_folder=None)
            self._check(restore_record, dirs, run_index)
            restore_result.runs.append(restore_record)
            log(f"  {restore_label}: {restore_record.wall_seconds:.2f} s{_problem(restore_record)}")

    def run_peers(self) -> None:
        for position, (label, placeholder) in enumerate(self.case.peers(_PLACEHOLDER_DIRS).items()):
            tool = placeholder.timed.commands[0][0]
            result = self.result(label, report.ROLE_PEER)
            if shutil.which(tool) is None:
                result.status, result.reason = "not available", f"{tool} is not installed"
                continue
            with self.scratch(f"peer{position}") as root:
                dirs = RunDirs.under(root)
                peer = self.case.peers(dirs)[label]
                result.description = peer.timed.describe()
                for step in peer.prepare:
                    outcome = run_measured(step)
                    if not outcome.ok:
                        raise RuntimeError(f"preparing {label} failed: {outcome.failure}: {outcome.stderr_tail}")
                record = self.measured(peer.timed, dirs, output_folder=peer.output_folder)
                result.runs.append(record)
                log(f"  {label}: {record.wall_seconds:.2f} s{_problem(record)}")

    def _check(self, record: RunRecord, dirs: RunDirs, run_index: int) -> None:
        if record.failure:
            return
        # Full byte comparison on the first run; names, sizes and modes on the others (keeps 1 GiB x 3 runs short).
        record.checked_content = run_index == 0
        try:
            record.check = self.case.check_restore(dirs, with_content=record.checked_content)
        except OSError as error:
            record.check = f"the restored tree could not be read back: {error}"

    def memory_probe(self, size_bytes: int, context: BenchContext) -> MemoryProbe:
        """One ncbackup backup of a corpus of size_bytes, for its peak RSS and temporary disk."""
        probe = MemoryProbe(size_bytes=size_bytes)
        reason = unavailable_reason(self.ncbackup, "run")
        if reason:
            probe.status, probe.reason = "not available", reason
            return probe
        case = load_case(self.arguments.case)
        try:
            case.setup(context)
            _warm(case)
            with scratch_filesystem(self.images, "memory", size_bytes=case.scratch_size_bytes(),
                                    use_loop=not self.arguments.no_loop) as root:
                dirs = RunDirs.under(root)
                config = write_config(root / "conf.json", dirs=dirs, sections=case.ncbackup_sections(dirs))
                record = self.measured(Pipeline([[*self.ncbackup, "run", "-c", str(config)]], ok_exit_codes=(0, 1)),
                                       dirs, output_folder=case.ncbackup_output_folder(dirs), watch_work=True)
        finally:
            case.teardown()
        if record.failure:
            probe.status, probe.reason = "failed", record.failure[:300]
        probe.wall_seconds = record.wall_seconds
        probe.max_rss_bytes = record.max_rss_bytes
        probe.tree_rss_peak_bytes = record.tree_rss_peak_bytes
        probe.work_folder_peak_bytes = record.work_folder_peak_bytes
        probe.transient_disk_bytes = record.transient_disk_bytes
        return probe


def _used_bytes(mount_point: Path) -> int:
    stats = os.statvfs(mount_point)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def _problem(record: RunRecord) -> str:
    if record.failure:
        return f" FAILED: {record.failure[:500]}"
    if record.check:
        return f" RESTORE CHECK FAILED: {record.check}"
    return " (restored tree identical)" if record.checked_content else ""


def _warm(case: BenchCase) -> tuple[int, float]:
    corpus = getattr(case, "corpus", None)
    if corpus is None:
        return 0, 0.0
    read_bytes, seconds = warm_up(corpus.path)
    log(f"warm-up read of the corpus: {read_bytes / report.MIB:.0f} MiB in {seconds:.1f} s")
    return read_bytes, seconds


def machine_facts() -> dict:
    versions = {}
    for tool, flag in (("tar", "--version"), ("zstd", "--version"), ("age", "--version"),
                       ("restic", "version"), ("borg", "--version")):
        if shutil.which(tool):
            try:
                versions[tool] = run_checked([tool, flag]).splitlines()[0].strip()
            except RuntimeError:
                versions[tool] = "unknown"
    return {
        "hostname": platform.node(), "kernel": platform.release(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), "tools": versions,
    }


def wait_for_other_benchmarks(work_folder: Path):
    """Hold bench/work/.lock for the whole run: two benchmarks at once would time each other (and share images)."""
    work_folder.mkdir(parents=True, exist_ok=True)
    handle = open(work_folder / ".lock", "a+")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        log(f"another benchmark is running with {work_folder} ({handle.read().strip() or 'unknown pid'}); waiting for it")
        fcntl.flock(handle, fcntl.LOCK_EX)
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    lock = wait_for_other_benchmarks(arguments.work_folder)
    try:
        statuses = [_main(argparse.Namespace(**{**vars(arguments), "size": size_label(size_bytes), "size_bytes": size_bytes}))
                    for size_bytes in arguments.sizes_bytes]
        return max(statuses)
    finally:
        lock.close()


def _main(arguments: argparse.Namespace) -> int:
    missing = [tool for tool in BASELINE_TOOLS if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"bench: missing programs {', '.join(missing)}; install them (scripts/setup lists the Debian packages)")
    started = datetime.now(timezone.utc)
    keys = ensure_keys(arguments.work_folder / "keys")
    context = BenchContext(seed=arguments.seed, size_bytes=arguments.size_bytes, work_folder=arguments.work_folder,
                           keys=keys, log=log)
    case = load_case(arguments.case)
    facts = machine_facts()
    log(f"case {arguments.case}, {size_label(arguments.size_bytes)}, {arguments.runs} runs, seed {arguments.seed}")
    runner = Runner(arguments, case, keys)
    memory: list[MemoryProbe] = []
    errors: list[str] = []
    try:
        case_facts = case.setup(context)
        warm_bytes, warm_seconds = _warm(case)
        for run_index in range(arguments.runs):
            log(f"run {run_index + 1}/{arguments.runs}")
            groups = [("shell", lambda: runner.run_shell(run_index)), ("ncbackup", lambda: runner.run_ncbackup(run_index))]
            if not arguments.skip_peers:
                groups.append(("peers", runner.run_peers))
            for group, step in groups:
                try:
                    step()
                except ScratchError:
                    raise
                except Exception as error:  # noqa: BLE001 - one broken tool must not void the other figures
                    errors.append(f"run {run_index + 1}, {group}: {type(error).__name__}: {error}")
                    log(f"  {group} measurements broke: {errors[-1]}")
    except ScratchError as error:
        raise SystemExit(f"bench: {error}") from None
    finally:
        case.teardown()
    main_record = runner.results.get("ncbackup run -c conf.json")
    if main_record and main_record.good_runs():
        good = main_record.good_runs()
        memory.append(MemoryProbe(
            size_bytes=arguments.size_bytes, wall_seconds=statistics.median(r.wall_seconds for r in good),
            max_rss_bytes=max(r.max_rss_bytes for r in good), tree_rss_peak_bytes=max(r.tree_rss_peak_bytes for r in good),
            work_folder_peak_bytes=max(r.work_folder_peak_bytes for r in good),
            transient_disk_bytes=max(r.transient_disk_bytes for r in good),
        ))
    elif main_record:
        memory.append(MemoryProbe(size_bytes=arguments.size_bytes, status=main_record.status, reason=main_record.reason))
    for size_bytes in arguments.memory_sizes_bytes:
        if size_bytes == arguments.size_bytes or (main_record and main_record.status == "not available"):
            continue
        log(f"memory probe: one ncbackup run on a {size_label(size_bytes)} corpus")
        memory.append(runner.memory_probe(size_bytes, BenchContext(
            seed=arguments.seed, size_bytes=size_bytes, work_folder=arguments.work_folder, keys=keys, log=log)))

    measurements = [runner.results[label] for label in runner.order]
    finished = datetime.now(timezone.utc)
    heading = (
        f"### {arguments.case} case, {size_label(arguments.size_bytes)} corpus (seed {arguments.seed}), "
        f"{arguments.runs} runs, {finished:%Y-%m-%d %H:%M} UTC, {facts['cpus']} CPUs, "
        f"load at start {facts['load_average_at_start'][0]:.2f}"
    )
    table = report.markdown(measurements=measurements, memory=memory, heading=heading, targets=case.targets)
    document = {
        "started_utc": started.isoformat(), "finished_utc": finished.isoformat(),
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(arguments).items()},
        "machine": facts, "case": arguments.case, "facts": case_facts,
        "warm_up": {"bytes": warm_bytes, "seconds": round(warm_seconds, 2)},
        "scratch": "fresh loop-mounted ext4 image per measurement" if not arguments.no_loop else "plain folders (--no-loop)",
        "measurements": [m.to_json() for m in measurements],
        "ratios": report.ratios(measurements),
        "run_ratios": report.run_ratios(measurements),
        "worst_ratios": report.worst_ratios(measurements),
        "targets": vars(case.targets),
        "memory": [vars(probe) for probe in memory],
        "errors": errors,
        "table_markdown": table,
    }
    arguments.results_folder.mkdir(parents=True, exist_ok=True)
    output = arguments.results_folder / f"{started:%Y%m%dT%H%M%SZ}.json"
    output.write_text(json.dumps(document, indent=2, default=str))
    print(table)
    for error in errors:
        print(f"- error: {error}")
    log(f"results written to {output}")
    failed = [m.label for m in measurements if m.runs and not m.good_runs()]
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
