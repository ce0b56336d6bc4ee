"""The `prometheus` method: the run's figures as a node_exporter textfile-collector file.

The file (ARGS_DICT TEXTFILE, ending in .prom) is replaced atomically: a temporary file in the same
folder, then os.replace, so node_exporter never reads half a file. The last success time survives a
failed run: it is read back from the previous file, which is what makes "no success for 26 h"
alertable (docs/notify.md has the rule).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ncbackup import platform
from ncbackup.engine.result import Status
from ncbackup.errors import BackupError
from ncbackup.notify.args import args_error, text_arg
from ncbackup.notify.base import Message
from ncbackup.notify.values import RunValues, SectionValues, run_values

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings

PREFIX = "ncbackup_"
TEXTFILE_SUFFIX = ".prom"          # node_exporter's collector reads only these
FILE_MODE = 0o644                  # node_exporter usually runs as its own user
LAST_SUCCESS = "ncbackup_last_success_timestamp_seconds"
STORAGE_LAST_SUCCESS = "ncbackup_storage_last_success_timestamp_seconds"
# One sample line of the exposition format: name, optional {labels}, value (a timestamp after it is ignored).
_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)')
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda match: "\n" if match.group(1) == "n" else match.group(1), value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(families: Iterable[tuple[str, str, str, list[Sample]]]) -> str:
    """The exposition text of (name, type, help, samples) families, each with its HELP and TYPE lines."""
    lines: list[str] = []
    for name, kind, help_text, samples in families:
        if not samples:
            continue
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for sample in samples:
            labels = ",".join(f'{key}="{_escape(value)}"' for key, value in sample.labels)
            lines.append(f"{sample.name}{{{labels}}} {_number(sample.value)}" if labels
                         else f"{sample.name} {_number(sample.value)}")
    return "\n".join(lines) + "\n"


def read_samples(text: str) -> list[Sample]:
    """The samples of an exposition text; lines that do not parse are skipped (the file is ours, but may be old)."""
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if not match:
            continue
        try:
            value = float(match.group("value"))
        except ValueError:
            continue
        labels = tuple((label.group("key"), _unescape(label.group("value")))
                       for label in _LABEL.finditer(match.group("labels") or ""))
        samples.append(Sample(match.group("name"), labels, value))
    return samples


def families(values: RunValues, previous: list[Sample]) -> list[tuple[str, str, str, list[Sample]]]:
    """Every metric family of a run; the last success times come from previous when this run did not succeed."""
    last_success = [sample for sample in previous if sample.name == LAST_SUCCESS and not sample.labels][-1:]
    if values.is_success:
        last_success = [Sample(LAST_SUCCESS, (), values.run_timestamp_seconds)]
    storage_success = {dict(sample.labels).get("storage", ""): sample.value
                       for sample in previous if sample.name == STORAGE_LAST_SUCCESS}
    storage_success.pop("", None)
    for storage in values.storages:
        if storage.is_success:
            storage_success[storage.storage] = values.run_timestamp_seconds

    def gauge(name: str, value: float, **labels: str) -> Sample:
        return Sample(PREFIX + name, tuple(labels.items()), value)

    def section_samples(name: str, figure: Callable[[SectionValues], float]) -> list[Sample]:
        return [gauge(name, figure(section), section=section.section) for section in values.sections]

    return [
        ("ncbackup_last_run_timestamp_seconds", "gauge", "When the last ncbackup run ended (Unix time).",
         [gauge("last_run_timestamp_seconds", values.run_timestamp_seconds)]),
        (LAST_SUCCESS, "gauge", "When the last ncbackup run that stored its backups (ok or warning) ended.",
         last_success),
        ("ncbackup_last_run_status", "gauge", "The last run's result: 1 for its status, 0 for the others.",
         [gauge("last_run_status", 1.0 if status == values.status else 0.0, status=status.value) for status in Status]),
        ("ncbackup_last_run_duration_seconds", "gauge", "How long the last run took.",
         [gauge("last_run_duration_seconds", values.duration_seconds)]),
        ("ncbackup_last_run_input_bytes", "gauge", "Bytes the last run read from its sources.",
         [gauge("last_run_input_bytes", values.bytes_in)]),
        ("ncbackup_last_run_output_bytes", "gauge", "Bytes the last run stored (compressed and encrypted).",
         [gauge("last_run_output_bytes", values.bytes_out)]),
        ("ncbackup_last_run_parts", "gauge", "Parts the last run stored on each storage (backup sets only).",
         [gauge("last_run_parts", values.part_count)] if values.part_count is not None else []),
        ("ncbackup_section_status", "gauge", "Each section's result in the last run: 1 for its status, 0 for the others.",
         [gauge("section_status", 1.0 if status == section.status else 0.0, section=section.section,
                status=status.value) for section in values.sections for status in Status]),
        ("ncbackup_section_duration_seconds", "gauge", "How long each section took in the last run.",
         section_samples("section_duration_seconds", lambda section: section.duration_seconds)),
        ("ncbackup_section_input_bytes", "gauge", "Bytes each section read in the last run.",
         section_samples("section_input_bytes", lambda section: section.bytes_in)),
        ("ncbackup_section_output_bytes", "gauge", "Bytes each section stored in the last run.",
         section_samples("section_output_bytes", lambda section: section.bytes_out)),
        ("ncbackup_section_parts", "gauge", "Parts each backup-set section stored on each storage in the last run.",
         [gauge("section_parts", section.part_count, section=section.section)
          for section in values.sections if section.part_count is not None]),
        ("ncbackup_storage_last_run_success", "gauge",
         "1 when every section writing to this storage (by DESTINATION) succeeded in the last run.",
         [gauge("storage_last_run_success", 1.0 if storage.is_success else 0.0, storage=storage.storage)
          for storage in values.storages]),
        ("ncbackup_storage_output_bytes", "gauge", "Bytes the last run stored on this storage.",
         [gauge("storage_output_bytes", storage.bytes_out, storage=storage.storage) for storage in values.storages]),
        (STORAGE_LAST_SUCCESS, "gauge", "When a run last stored its backups on this storage without failing.",
         [gauge("storage_last_success_timestamp_seconds", moment, storage=storage)
          for storage, moment in sorted(storage_success.items())]),
    ]


@dataclass
class PrometheusTextfile:
    """Writes the run's metrics to a node_exporter textfile-collector file."""

    textfile: Path
    name: str = "prometheus"
    outcomes: frozenset[Status] = frozenset(Status)

    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> PrometheusTextfile:
        textfile = Path(text_arg(args, "TEXTFILE", name=name, section=section))
        if textfile.suffix != TEXTFILE_SUFFIX:
            raise args_error(f"TEXTFILE {textfile} must end in {TEXTFILE_SUFFIX} (node_exporter reads only those); "
                             "rename it", name=name, key="ARGS_DICT.TEXTFILE", section=section)
        if not textfile.is_absolute():
            raise args_error(f"TEXTFILE {textfile} must be an absolute path (the folder node_exporter's "
                             "--collector.textfile.directory reads)", name=name, key="ARGS_DICT.TEXTFILE",
                             section=section)
        return cls(textfile=textfile, name=name, outcomes=outcomes)

    def send(self, message: Message) -> None:
        """Replace TEXTFILE with this run's metrics; a test message only proves the folder is writable."""
        folder = self.textfile.parent
        if not folder.is_dir():
            raise BackupError(f"the folder of TEXTFILE {self.textfile} does not exist; create it or fix TEXTFILE "
                              f"in NOTIFY section {self.name}")
        previous = self._previous_samples()
        text = "" if message.is_test else render(families(run_values(message.result, message.status), previous))
        try:
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, prefix=f".{self.textfile.name}.",
                                             suffix=".tmp", delete=False) as handle:
                temporary = Path(handle.name)
                try:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                except BaseException:
                    temporary.unlink(missing_ok=True)
                    raise
            if message.is_test:  # a test must not overwrite real figures with made-up ones
                temporary.unlink()
                return
            try:
                os.chmod(temporary, FILE_MODE)
                os.replace(temporary, self.textfile)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
            platform.fsync_directory(folder)
        except OSError as error:
            raise BackupError(f"could not write TEXTFILE {self.textfile} ({error.strerror or error}); check that "
                              f"its folder is writable by the user ncbackup runs as") from None

    def _previous_samples(self) -> list[Sample]:
        try:
            return read_samples(self.textfile.read_text(encoding="utf-8", errors="replace"))
        except FileNotFoundError:
            return []
        except OSError as error:
            raise BackupError(f"could not read the previous TEXTFILE {self.textfile} ({error.strerror or error}), "
                              "which keeps the last success time; check its permissions") from None
