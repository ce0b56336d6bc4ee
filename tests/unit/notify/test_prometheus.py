"""The prometheus method: the textfile parsed with prometheus_client's own parser, atomic replacement, last success kept."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ncbackup.engine.result import Status
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.prometheus import PrometheusTextfile
from tests.unit.notify.metrics_support import START, message, run_result


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the file, keyed by name and sorted labels, read by the reference parser."""
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def notifier(path: Path) -> PrometheusTextfile:
    return PrometheusTextfile.from_section({"TEXTFILE": str(path)}, {}, name="PROMETHEUS",
                                           outcomes=frozenset(Status), section=None)


def test_successful_run_writes_every_value(tmp_path):
    path = tmp_path / "ncbackup.prom"
    notifier(path).send(message(run_result(Status.OK)))
    values = samples(path)
    end = (START + timedelta(seconds=125)).timestamp()
    assert values[("ncbackup_last_run_timestamp_seconds", ())] == end
    assert values[("ncbackup_last_success_timestamp_seconds", ())] == end
    assert values[("ncbackup_last_run_duration_seconds", ())] == 125
    assert values[("ncbackup_last_run_input_bytes", ())] == 4096 + 2048
    assert values[("ncbackup_last_run_output_bytes", ())] == 1024 + 512
    assert values[("ncbackup_last_run_status", (("status", "ok"),))] == 1
    assert values[("ncbackup_last_run_status", (("status", "failed"),))] == 0
    assert values[("ncbackup_section_status", (("section", "MYSQL+STORAGE"), ("status", "ok")))] == 1
    assert values[("ncbackup_section_duration_seconds", (("section", "MYSQL+STORAGE"),))] == 20.5
    assert values[("ncbackup_section_output_bytes", (("section", "FILESET+STORAGE"),))] == 1024
    assert values[("ncbackup_last_run_parts", ())] == 3 + 1
    assert values[("ncbackup_section_parts", (("section", "FILESET+STORAGE"),))] == 3
    assert values[("ncbackup_storage_output_bytes", (("storage", "s3"),))] == 1024 + 512
    assert values[("ncbackup_storage_output_bytes", (("storage", "local"),))] == 1024
    assert values[("ncbackup_storage_last_success_timestamp_seconds", (("storage", "s3"),))] == end
    text = path.read_text()
    assert "# HELP ncbackup_last_success_timestamp_seconds " in text
    assert "# TYPE ncbackup_last_success_timestamp_seconds gauge" in text
    assert all(key[0].startswith("ncbackup_") for key in values)


def test_last_success_survives_a_failed_run(tmp_path):
    path = tmp_path / "ncbackup.prom"
    notifier(path).send(message(run_result(Status.OK)))
    good_end = (START + timedelta(seconds=125)).timestamp()
    later = START + timedelta(days=1)
    notifier(path).send(message(run_result(Status.FAILED, start=later)))
    values = samples(path)
    assert values[("ncbackup_last_run_timestamp_seconds", ())] == (later + timedelta(seconds=125)).timestamp()
    assert values[("ncbackup_last_success_timestamp_seconds", ())] == good_end
    assert values[("ncbackup_last_run_status", (("status", "failed"),))] == 1
    assert values[("ncbackup_section_status", (("section", "MYSQL+STORAGE"), ("status", "failed")))] == 1
    # s3 got a failed section in the second run: its last success stays the first run's; local was fine.
    assert values[("ncbackup_storage_last_run_success", (("storage", "s3"),))] == 0
    assert values[("ncbackup_storage_last_success_timestamp_seconds", (("storage", "s3"),))] == good_end
    assert values[("ncbackup_storage_last_success_timestamp_seconds", (("storage", "local"),))] == (
        later + timedelta(seconds=125)).timestamp()


def test_a_warning_run_is_a_success(tmp_path):
    path = tmp_path / "ncbackup.prom"
    notifier(path).send(message(run_result(Status.WARNING)))
    values = samples(path)
    assert values[("ncbackup_last_success_timestamp_seconds", ())] == (START + timedelta(seconds=125)).timestamp()
    assert values[("ncbackup_last_run_status", (("status", "warning"),))] == 1


def test_a_host_that_never_succeeded_has_no_last_success(tmp_path):
    path = tmp_path / "ncbackup.prom"
    notifier(path).send(message(run_result(Status.FAILED)))
    assert not [key for key in samples(path) if key[0] == "ncbackup_last_success_timestamp_seconds"]


def test_parts_are_left_out_when_unknown(tmp_path):
    path = tmp_path / "ncbackup.prom"
    run = run_result(Status.OK)
    for step in run.steps:
        step.part_count = None
    notifier(path).send(message(run))
    assert not [key for key in samples(path) if "parts" in key[0]]


def test_file_is_replaced_atomically_and_world_readable(tmp_path):
    path = tmp_path / "ncbackup.prom"
    path.write_text("old content\n")
    old_inode = path.stat().st_ino
    notifier(path).send(message(run_result(Status.OK)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.stat().st_ino != old_inode              # a new file renamed over, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ncbackup.prom"]   # no temporary file left


def test_section_names_with_quotes_are_escaped(tmp_path):
    path = tmp_path / "ncbackup.prom"
    run = run_result(Status.OK)
    run.steps[0].name = 'odd "name"\\x'
    notifier(path).send(message(run))
    assert samples(path)[("ncbackup_section_output_bytes", (("section", 'odd "name"\\x'),))] == 1024


def test_test_message_leaves_the_figures_alone(tmp_path):
    path = tmp_path / "ncbackup.prom"
    notifier(path).send(message(run_result(Status.FAILED)))
    before = path.read_text()
    notifier(path).send(message(run_result(Status.OK), is_test=True))
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ncbackup.prom"]


def test_missing_folder_is_one_sentence(tmp_path):
    with pytest.raises(BackupError, match="does not exist; create it"):
        notifier(tmp_path / "nowhere" / "ncbackup.prom").send(message(run_result(Status.OK)))


@pytest.mark.parametrize(("args", "problem"), [
    ({}, "TEXTFILE is missing"),
    ({"TEXTFILE": "/var/lib/node_exporter/ncbackup.txt"}, r"must end in \.prom"),
    ({"TEXTFILE": "relative/ncbackup.prom"}, "must be an absolute path"),
])
def test_bad_textfile_is_refused(args, problem):
    with pytest.raises(ConfigError, match=problem) as caught:
        PrometheusTextfile.from_section(args, {}, name="PROMETHEUS", outcomes=frozenset(Status), section=None)
    assert caught.value.key == "PROMETHEUS.ARGS_DICT.TEXTFILE"
