"""Medians, ratios and the Markdown table are computed from the good runs only."""

from __future__ import annotations

from bench.report import (
    ROLE_BACKUP_BASELINE, ROLE_BACKUP_NCBACKUP, MeasurementResult, MemoryProbe, RunRecord, Targets, markdown, ratios,
)


def _run(seconds: float, **changes) -> RunRecord:
    fields = dict(wall_seconds=seconds, cpu_seconds=seconds, sync_seconds=0.0, max_rss_bytes=50 << 20,
                  tree_rss_peak_bytes=50 << 20, output_bytes=10 << 20)
    fields.update(changes)
    return RunRecord(**fields)


def test_ratio_is_median_over_median_and_failed_runs_do_not_count():
    shell = MeasurementResult("shell | split", ROLE_BACKUP_BASELINE, runs=[_run(2.0), _run(4.0), _run(3.0)])
    ncbackup = MeasurementResult("ncbackup", ROLE_BACKUP_NCBACKUP,
                                 runs=[_run(3.3), _run(3.6), _run(0.1, failure="ncbackup exited 2")])
    assert ratios([shell, ncbackup])["backup_ncbackup_over_shell"] == round(3.45 / 3.0, 2)
    assert ncbackup.summary()["runs_ok"] == 2


def test_table_escapes_pipes_shows_failures_and_the_case_targets():
    shell = MeasurementResult("tar | zstd", ROLE_BACKUP_BASELINE, runs=[_run(2.0)])
    broken = MeasurementResult("ncbackup", ROLE_BACKUP_NCBACKUP, status="failed", runs=[_run(1.0, failure="ncbackup exited 2: disk full")])
    table = markdown(measurements=[broken, shell], memory=[MemoryProbe(size_bytes=1 << 30, status="not available", reason="no run command")],
                     heading="### t", targets=Targets(backup_ratio=1.15, peak_rss_bytes=300 << 20))
    lines = table.splitlines()
    assert lines.index("| tar \\| zstd | 2.00 | 2.00 | 2.00 | 2.00 | 2.00 | 10.0 | 50.0 | 1/1 |") < next(
        i for i, line in enumerate(lines) if line.startswith("| ncbackup |"))  # baselines first
    assert "failed: ncbackup exited 2: disk full" in table
    assert "| backup ncbackup over shell | n/a | <= 1.15 |" in table
    assert "not available: no run command" in table
    assert "peak RSS < 300 MiB" in table


def test_every_run_is_shown_with_its_ratio_and_the_worst_run_is_named():
    from bench.report import ROLE_RESTORE_BASELINE, ROLE_RESTORE_NCBACKUP, run_ratios, worst_ratios

    shell = MeasurementResult("cat | age -d", ROLE_RESTORE_BASELINE,
                              runs=[_run(2.0, load_average=0.5), _run(1.0), _run(2.0), _run(2.0)])
    ncbackup = MeasurementResult("ncbackup restore", ROLE_RESTORE_NCBACKUP,
                                 runs=[_run(2.2), _run(1.4), _run(0.1, failure="exited 2"), _run(2.0)])
    assert run_ratios([shell, ncbackup]) == {"restore": [1.1, 1.4, None, 1.0]}
    assert worst_ratios([shell, ncbackup]) == {"restore": 1.4}
    table = markdown(measurements=[shell, ncbackup], memory=[], heading="### t")
    assert "| 1 | 0.50 | 2.00 | 2.20 | 1.10 |" in table
    assert "| 3 | 0.00 | 2.00 | failed | n/a |" in table
    assert "| restore ncbackup over shell | 1.00 | 1.40 |" in table   # ratio of the medians (good runs), worst run


def test_several_sizes_in_one_call(monkeypatch):
    from bench import run

    seen = []
    monkeypatch.setattr(run, "wait_for_other_benchmarks", lambda folder: type("L", (), {"close": lambda self: None})())
    monkeypatch.setattr(run, "_main", lambda arguments: seen.append((arguments.size, arguments.size_bytes)) or 0)
    assert run.main(["--size", "512MiB,1GiB", "--runs", "5"]) == 0
    assert seen == [("512MiB", 512 << 20), ("1GiB", 1 << 30)]
