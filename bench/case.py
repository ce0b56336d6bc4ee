"""What a benchmark case provides; the runner (bench/run.py) does the timing, the folders and the report.

A case is one kind of data backed up two ways: a reference pipeline of stock tools ("the shell
baseline") and ncbackup from a generated config. ``--case files`` is bench/files_case.py; the database
and S3 cases plug in as ``bench/db_case.py`` and ``bench/s3_case.py``, each defining ``make_case()``
that returns a ``BenchCase`` subclass instance. Override what your case has, leave the rest:

    class DatabaseCase(BenchCase):
        name = "db"
        def setup(self, context): ...            # start the server, load ~1 GiB of rows; return facts
        def shell_backups(self, dirs): ...       # {"mysqldump | zstd | age": Pipeline([...], stdout_path=...)}
        def ncbackup_sections(self, dirs): ...   # {"DBSBACKUP": {...}, "COMPRESSION": {...}, ...}
        def teardown(self): ...                  # stop the server

Every measurement gets a fresh, empty scratch filesystem (``dirs``); passwords go into
``Pipeline.env`` or files, never into argv. ``shell_backups`` and ``peers`` must only build objects
(no side effects): the runner first calls them with placeholder folders to learn the labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import Pipeline
from bench.report import Targets


@dataclass(frozen=True)
class Keys:
    """The benchmark's secrets, made once under bench/work/keys (0600) and reused."""

    identity_file: Path     # AGE-SECRET-KEY-1...: what restores need
    recipients_file: Path   # only the age1... line: what a write-only backup server holds
    recipient: str
    password_file: Path     # one line, for tools that want a passphrase (restic, borg)


@dataclass(frozen=True)
class BenchContext:
    """What the runner gives a case once, before any measurement."""

    seed: int
    size_bytes: int
    work_folder: Path        # bench/work: caches (corpora, keys); not a scratch filesystem
    keys: Keys
    log: Callable[[str], None] = print


@dataclass(frozen=True)
class RunDirs:
    """The folders of one measurement; all on its own fresh scratch filesystem."""

    root: Path              # the scratch filesystem's mount point
    work: Path              # WORK_FOLDER for ncbackup: its size is polled (should stay ~0)
    local_backup: Path      # LOCAL_BACKUP: where ncbackup's local storage writes the set
    output: Path            # where a baseline writes its archive or parts
    restore_target: Path    # an empty folder a restore extracts into

    @classmethod
    def under(cls, root: Path) -> RunDirs:
        dirs = cls(root, root / "work", root / "local", root / "output", root / "restore")
        for folder in (dirs.work, dirs.local_backup, dirs.output, dirs.restore_target):
            folder.mkdir(parents=True, exist_ok=True)
        return dirs


@dataclass(frozen=True)
class Peer:
    """Another backup tool timed on the same data: prepare (untimed, e.g. repo init), then timed."""

    timed: Pipeline
    prepare: list[Pipeline] = field(default_factory=list)
    output_folder: Path | None = None   # whose size is reported as the peer's output


class BenchCase:
    """A benchmark case. The runner calls setup once, the per-measurement methods per run, teardown once."""

    name = "base"
    shell_restore_label = "shell restore"
    targets = Targets()  # the goals, shown in the table: e.g. Targets(backup_ratio=1.15) for db

    def setup(self, context: BenchContext) -> dict:
        """Prepare the data (generate, load, start servers); return facts about it for the report."""
        return {}

    def scratch_size_bytes(self) -> int:
        """Size of each measurement's scratch filesystem (sparse: only what is written uses disk)."""
        return 4 << 30

    def shell_backups(self, dirs: RunDirs) -> dict[str, Pipeline]:
        """Label -> baseline pipeline; the FIRST is the reference for the ncbackup/shell ratio."""
        raise NotImplementedError

    def ncbackup_sections(self, dirs: RunDirs) -> dict[str, dict]:
        """The config sections after GENERAL (the runner writes GENERAL from dirs), in run order."""
        raise NotImplementedError

    def ncbackup_output_folder(self, dirs: RunDirs) -> Path | None:
        """Where ncbackup's set lands, for the output size column (None: not on this machine, e.g. S3)."""
        return dirs.local_backup

    def shell_restore(self, dirs: RunDirs) -> Pipeline | None:
        """The baseline restore, run right after the first shell backup on the same filesystem."""
        return None

    def ncbackup_restore_arguments(self, dirs: RunDirs, config_file: Path) -> list[str] | None:
        """Arguments after ``ncbackup`` that restore the set just written into dirs.restore_target."""
        return None

    def ncbackup_restore_sections(self, dirs: RunDirs) -> dict[str, dict] | None:
        """Sections of the config the restore reads (default: the backup's); e.g. with the identity key."""
        return None

    def check_restore(self, dirs: RunDirs, *, with_content: bool) -> str | None:
        """None if dirs.restore_target holds exactly the original data, else one sentence on what differs."""
        return None

    def peers(self, dirs: RunDirs) -> dict[str, Peer]:
        """Label -> other tools timed on the same data (restic, borg, ...)."""
        return {}

    def teardown(self) -> None:
        """Stop what setup started."""
