"""Turn the benchmark's raw runs into medians, ratios and the Markdown table of bench/README.md."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from bench.corpus import size_label

MIB = 1 << 20


@dataclass(frozen=True)
class Targets:
    """The issue's goals for a case, printed next to the figures (never asserted)."""

    backup_ratio: float = 1.25          # ncbackup / shell baseline, medians
    restore_ratio: float = 1.25
    peak_rss_bytes: int = 200 * MIB

ROLE_BACKUP_BASELINE = "backup-baseline"
ROLE_BACKUP_NCBACKUP = "backup-ncbackup"
ROLE_RESTORE_BASELINE = "restore-baseline"
ROLE_RESTORE_NCBACKUP = "restore-ncbackup"
ROLE_PEER = "peer"


@dataclass
class RunRecord:
    """One timed execution of one measurement."""

    wall_seconds: float
    cpu_seconds: float
    sync_seconds: float              # syncfs of the scratch filesystem right after the command exited
    max_rss_bytes: int               # largest single process
    tree_rss_peak_bytes: int         # polled sum over the process tree
    output_bytes: int | None         # None: the measurement writes no archive (a restore)
    work_folder_peak_bytes: int = 0
    transient_disk_bytes: int = 0    # scratch-fs peak use minus its use at the end: temporary files
    load_average: float = 0.0        # 1-minute load just before the run: how busy the machine was
    failure: str | None = None
    check: str | None = None         # restore check result: None = identical tree
    checked_content: bool = False

    @property
    def ok(self) -> bool:
        return self.failure is None and self.check is None


@dataclass
class MeasurementResult:
    label: str
    role: str
    description: str = ""
    status: str = "ok"               # ok | failed | not available
    reason: str | None = None
    runs: list[RunRecord] = field(default_factory=list)

    def good_runs(self) -> list[RunRecord]:
        return [run for run in self.runs if run.ok]

    def median_wall(self, *, with_sync: bool = False) -> float | None:
        good = self.good_runs()
        if not good:
            return None
        return statistics.median(run.wall_seconds + (run.sync_seconds if with_sync else 0.0) for run in good)

    def summary(self) -> dict:
        good = self.good_runs()
        if not good:
            return {"label": self.label, "role": self.role, "status": self.status, "reason": self.reason,
                    "runs_ok": 0, "runs": len(self.runs)}
        walls = [run.wall_seconds for run in good]
        return {
            "label": self.label, "role": self.role, "status": self.status, "reason": self.reason,
            "runs_ok": len(good), "runs": len(self.runs),
            "median_seconds": statistics.median(walls), "min_seconds": min(walls), "max_seconds": max(walls),
            "median_cpu_seconds": statistics.median(run.cpu_seconds for run in good),
            "median_with_sync_seconds": statistics.median(run.wall_seconds + run.sync_seconds for run in good),
            "output_bytes": good[-1].output_bytes,
            "peak_rss_bytes": max(run.max_rss_bytes for run in good),
            "tree_rss_peak_bytes": max(run.tree_rss_peak_bytes for run in good),
            "work_folder_peak_bytes": max(run.work_folder_peak_bytes for run in good),
            "transient_disk_bytes": max(run.transient_disk_bytes for run in good),
        }

    def to_json(self) -> dict:
        return {**asdict(self), "summary": self.summary()}


@dataclass
class MemoryProbe:
    """ncbackup's footprint at one corpus size (issue 3: flat RSS, ~0 extra disk in WORK_FOLDER)."""

    size_bytes: int
    status: str = "ok"
    reason: str | None = None
    wall_seconds: float = 0.0
    max_rss_bytes: int = 0
    tree_rss_peak_bytes: int = 0
    work_folder_peak_bytes: int = 0
    transient_disk_bytes: int = 0


def ratios(measurements: list[MeasurementResult]) -> dict[str, float | None]:
    """ncbackup median / shell-baseline median for backup (first baseline) and restore."""

    def first(role: str) -> MeasurementResult | None:
        return next((m for m in measurements if m.role == role), None)

    def ratio(numerator: MeasurementResult | None, denominator: MeasurementResult | None, *, with_sync: bool) -> float | None:
        if not numerator or not denominator:
            return None
        top, bottom = numerator.median_wall(with_sync=with_sync), denominator.median_wall(with_sync=with_sync)
        return round(top / bottom, 2) if top and bottom else None

    found = {}
    for suffix, with_sync in (("", False), ("_incl_sync", True)):
        found["backup_ncbackup_over_shell" + suffix] = ratio(
            first(ROLE_BACKUP_NCBACKUP), first(ROLE_BACKUP_BASELINE), with_sync=with_sync)
        found["restore_ncbackup_over_shell" + suffix] = ratio(
            first(ROLE_RESTORE_NCBACKUP), first(ROLE_RESTORE_BASELINE), with_sync=with_sync)
    return found


def run_ratios(measurements: list[MeasurementResult]) -> dict[str, list[float | None]]:
    """Run by run (runs are interleaved, so run i of ncbackup and of the shell met the same load): ncbackup's wall time
    over the shell baseline's, for backup and restore; None where either run failed."""

    def first(role: str) -> MeasurementResult | None:
        return next((m for m in measurements if m.role == role), None)

    found: dict[str, list[float | None]] = {}
    for name, top, bottom in (("backup", ROLE_BACKUP_NCBACKUP, ROLE_BACKUP_BASELINE),
                              ("restore", ROLE_RESTORE_NCBACKUP, ROLE_RESTORE_BASELINE)):
        numerator, denominator = first(top), first(bottom)
        if not numerator or not denominator:
            continue
        found[name] = [
            round(mine.wall_seconds / theirs.wall_seconds, 2) if mine.ok and theirs.ok and theirs.wall_seconds else None
            for mine, theirs in zip(numerator.runs, denominator.runs)
        ]
    return found


def worst_ratios(measurements: list[MeasurementResult]) -> dict[str, float | None]:
    """The largest run-by-run ratio of backup and restore (the issue asks worst run <= 1.25 besides the median)."""
    return {name: max((r for r in values if r is not None), default=None) for name, values in run_ratios(measurements).items()}


def run_by_run_markdown(measurements: list[MeasurementResult]) -> str:
    """Every run's wall times and ratio, not only the medians."""

    def first(role: str) -> MeasurementResult | None:
        return next((m for m in measurements if m.role == role), None)

    columns = [(role, first(role)) for role in (ROLE_BACKUP_BASELINE, ROLE_BACKUP_NCBACKUP, ROLE_RESTORE_BASELINE,
                                                ROLE_RESTORE_NCBACKUP)]
    columns = [(role, m) for role, m in columns if m is not None]
    if not columns:
        return ""
    per_run = run_ratios(measurements)
    count = max(len(m.runs) for _, m in columns)
    header = ["run", "load"] + [_cell(m.label) + " s" for _, m in columns] + [f"{name} ratio" for name in per_run]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for index in range(count):
        runs = [m.runs[index] if index < len(m.runs) else None for _, m in columns]
        load = next((run.load_average for run in runs if run is not None), 0.0)
        cells = [str(index + 1), f"{load:.2f}"]
        cells += [_seconds(run.wall_seconds) if run is not None and run.ok else "failed" for run in runs]
        for values in per_run.values():
            value = values[index] if index < len(values) else None
            cells.append("n/a" if value is None else f"{value:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    worst = worst_ratios(measurements)
    lines += ["", "| ratio | of the medians | worst run |", "|---|---:|---:|"]
    medians = ratios(measurements)
    for name in per_run:
        median = medians.get(f"{name}_ncbackup_over_shell")
        lines.append(f"| {name} ncbackup over shell | {'n/a' if median is None else f'{median:.2f}'} "
                     f"| {'n/a' if worst[name] is None else f'{worst[name]:.2f}'} |")
    return "\n".join(lines) + "\n"


ROLE_ORDER = [ROLE_BACKUP_BASELINE, ROLE_BACKUP_NCBACKUP, ROLE_RESTORE_BASELINE, ROLE_RESTORE_NCBACKUP, ROLE_PEER]


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (labels are pipelines: they contain '|')."""
    return text.replace("|", "\\|").replace("\n", " ")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _mib(value: int | None) -> str:
    return "" if value is None else f"{value / MIB:.1f}"


def markdown(*, measurements: list[MeasurementResult], memory: list[MemoryProbe], heading: str,
             targets: Targets = Targets()) -> str:
    """The results as the Markdown tables bench/README.md shows."""
    lines = [
        heading, "",
        "| measurement | median s | min s | max s | CPU s | median s incl. sync | output MiB | peak RSS MiB | runs ok |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for measurement in sorted(measurements, key=lambda m: ROLE_ORDER.index(m.role)):
        summary = measurement.summary()
        if not summary.get("runs_ok"):
            why = measurement.reason or measurement.status
            if measurement.runs:
                why = next((run.failure or run.check for run in measurement.runs if not run.ok), why)
            lines.append(f"| {_cell(measurement.label)} | {measurement.status}: {_cell(str(why)[:300])} | | | | | | | 0/{len(measurement.runs)} |")
            continue
        lines.append(
            f"| {_cell(measurement.label)} | {_seconds(summary['median_seconds'])} | {_seconds(summary['min_seconds'])} "
            f"| {_seconds(summary['max_seconds'])} | {_seconds(summary['median_cpu_seconds'])} "
            f"| {_seconds(summary['median_with_sync_seconds'])} | {_mib(summary['output_bytes'])} "
            f"| {_mib(summary['peak_rss_bytes'])} | {summary['runs_ok']}/{summary['runs']} |"
        )
    found = ratios(measurements)
    lines += ["", "| ratio (medians) | value | target |", "|---|---:|---:|"]
    for key, target in (("backup_ncbackup_over_shell", targets.backup_ratio), ("restore_ncbackup_over_shell", targets.restore_ratio)):
        for variant, label in (("", ""), ("_incl_sync", " (incl. sync)")):
            value = found[key + variant]
            lines.append(f"| {key.replace('_', ' ')}{label} | {'n/a' if value is None else f'{value:.2f}'} | <= {target} |")
    if memory:
        lines += [
            "",
            "| ncbackup footprint | wall s | peak RSS MiB (largest process) | peak RSS MiB (process tree) | WORK_FOLDER peak MiB | temporary disk MiB |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for probe in memory:
            if probe.status != "ok":
                lines.append(f"| {size_label(probe.size_bytes)} of data | {probe.status}: {_cell(str(probe.reason))} | | | | |")
                continue
            lines.append(
                f"| {size_label(probe.size_bytes)} of data | {_seconds(probe.wall_seconds)} | {_mib(probe.max_rss_bytes)} "
                f"| {_mib(probe.tree_rss_peak_bytes)} | {_mib(probe.work_folder_peak_bytes)} | {_mib(probe.transient_disk_bytes)} |"
            )
        lines.append(f"\nTarget: peak RSS < {targets.peak_rss_bytes // MIB} MiB and the same at every size; WORK_FOLDER ~0.")
    by_run = run_by_run_markdown(measurements)
    if by_run:
        lines += ["", "Every run (interleaved: run i of each tool met the same load):", "", by_run.rstrip("\n")]
    return "\n".join(lines) + "\n"
