"""``ncbackup run -c conf.json [-l LEVEL] [--json]``: run every section of the config, in file order."""

from __future__ import annotations

import logging
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from ncbackup import process
from ncbackup.commands.common import add_logging_argument, guarded
from ncbackup.config import load_config
from ncbackup.config.host import host_mismatch
from ncbackup.config.settings import Config
from ncbackup.engine.builtins import Role, role_of
from ncbackup.engine.context import RunContext
from ncbackup.engine.interrupt import Interrupted, stop_on_signals
from ncbackup.engine.lock import AlreadyRunning, lock_file_path, single_instance
from ncbackup.engine.logs import run_logging
from ncbackup.engine.plan import build_plan
from ncbackup.engine.progress import progress_display
from ncbackup.engine.result import RunResult
from ncbackup.engine.run import execute_plan, interrupted_text
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.message import build_message
from ncbackup.notify.registry import build_notifiers, notify_all, notify_started
from ncbackup.stages.keys import holds_a_secret, refuse_if_readable_by_others
from ncbackup.stages.registry import DEFAULT_KEY_FILE

log = logging.getLogger("ncbackup.run")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run every section of the config, in file order",
                                   description="Run every section of the config, in file order, and report.")
    parser.add_argument("-c", "--config", required=True, type=Path, help="the JSON config file")
    add_logging_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the run result as JSON (docs/report-json.md)")
    parser.set_defaults(handler=main)


def prepare_work_folder(config: Config) -> None:
    """Create WORK_FOLDER if needed and prove it is writable; ConfigError naming it otherwise."""
    work = Path(config.general.work_folder)
    line = config.general.position.line if config.general.position else None
    try:
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=work):
            pass
    except OSError as error:
        raise ConfigError(
            f"WORK_FOLDER {work} is not a writable folder ({error.strerror}); create it or fix its permissions",
            file=config.path, line=line, key="WORK_FOLDER",
        ) from None


def run_config(config: Config, *, level: str, dry_progress=None) -> RunResult:
    """Run a loaded config under its lock, with logging and reports; return the result (never raises a BackupError)."""
    result = RunResult(config_path=str(config.path), hostname=config.general.hostname)
    with run_logging(config.general.log_file, level, config_file=config.path) as tail:
        log.info("ncbackup run of %s started", config.path)
        for warning in config.warnings:
            log.warning("%s", warning)
            result.warnings.append(warning)
        # Built before anything runs, so that a run that stops early (lock held, unusable) still reports.
        problems: list[str] = []
        notifiers = build_notifiers(config, problems=problems)
        try:
            if problems:
                raise ConfigError("; ".join(problems))
            # The lock lives in WORK_FOLDER: it must exist first.
            prepare_work_folder(config)
            with single_instance(lock_file_path(config.general.work_folder), config=config.path):
                notify_started(notifiers, result)
                try:
                    with stop_on_signals():
                        _run_plan(config, result, dry_progress)
                except Interrupted as interrupt:   # between steps: no step to blame, the run still reports
                    process.kill_all_running()
                    result.error = interrupted_text(interrupt.signal_name)
                    log.error("%s", result.error)
        except ConfigError as error:
            # WORK_FOLDER or its lock file is unusable: nothing ran.
            log.error("%s", error)
            result.error, result.is_unusable = str(error), True
        except AlreadyRunning as held:
            _record_lock_held(config, result, held)
        result.end = datetime.now(timezone.utc)
        if not result.is_lock_held:
            for line in result.summary().splitlines():
                log.info("%s", line)
        notify_all(notifiers, build_message(result, tail.text()))
    return result


def refuse_readable_key_files(config: Config) -> None:
    """Before anything runs: a secret KEY_FILE that other users may read makes the config unusable (exit 3)."""
    for section in config.sections:
        text = section.parameters.get("KEY_FILE")
        if not text and role_of(section) == Role.ENCRYPTION:
            text = DEFAULT_KEY_FILE
        if not isinstance(text, (str, Path)) or not str(text).strip():
            continue
        path = Path(str(text).strip())
        if holds_a_secret(path):
            position = section.parameter_positions.get("KEY_FILE") or section.position
            refuse_if_readable_by_others(path, "key file", key=f"{section.name}.KEY_FILE", file=config.path,
                                         line=position.line if position else None)


def _run_plan(config: Config, result: RunResult, dry_progress) -> None:
    try:
        plan = build_plan(config)
        refuse_readable_key_files(config)
    except ConfigError as error:
        log.error("%s", error)
        result.error, result.is_unusable = str(error), True
    except BackupError as error:
        # A component refused to be built (e.g. a source probing its server): the run failed.
        log.error("%s", error)
        result.error = str(error)
    else:
        for note in plan.notes:
            log.info("%s", note)
        for warning in _freshness_warnings(plan, config):
            log.warning("%s", warning)
            result.warnings.append(warning)
        context = RunContext(config=config, result=result, logger=logging.getLogger("ncbackup.section"),
                             progress_factory=dry_progress or progress_display)
        execute_plan(plan, context)


def _freshness_warnings(plan, config: Config) -> list[str]:
    """ALERT_AFTER_HOURS: the storages (of backup sets) whose newest complete set is too old, before this run writes."""
    from ncbackup.commands.setselect import can_list, trust_for
    from ncbackup.engine.plan import DataStep, StepKind
    from ncbackup.status.freshness import freshness_warnings

    storages = {section.name: storage for step in plan.steps
                if isinstance(step, DataStep) and step.kind == StepKind.BACKUP_SET
                for section, storage in step.group.storages if can_list(storage)}
    if not storages:
        return []
    try:
        trust = trust_for(config, [], allow_unsigned=False)
    except BackupError as error:
        return [f"could not check the age of the newest complete sets: {error}"]
    return freshness_warnings(list(storages.items()), trust, host=config.general.hostname,
                              now=datetime.now(timezone.utc), alert_after_hours=config.general.alert_after_hours)


def _record_lock_held(config: Config, result: RunResult, held: AlreadyRunning) -> None:
    """Skipped (exit 0, as the original), unless the holder has run longer than MAX_RUNTIME: then it likely hangs (exit 2)."""
    limit_seconds = config.general.max_runtime_seconds
    held_seconds = held.holder.held_seconds(datetime.now(timezone.utc))
    if held_seconds is not None and held_seconds > limit_seconds:
        result.error = (
            f"another ncbackup run ({held.holder.describe()}) has held the run lock {held.lock_path} for "
            f"{duration_text(held_seconds)}, longer than MAX_RUNTIME ({duration_text(limit_seconds)}); it may hang: "
            f"check process {held.holder.pid} and stop it, or raise MAX_RUNTIME"
        )
        log.error("%s", result.error)
        return
    result.is_lock_held = True
    message = (f"another ncbackup run holds the lock {held.lock_path} ({held.holder.describe()}); "
               "this one exits without doing anything")
    result.warnings.append(message)
    log.warning("%s", message)


def duration_text(seconds: float) -> str:
    """A duration the way people read it: 45 s, 90 min, 26.5 h, 3.0 days."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@guarded
def main(args) -> int:
    config = load_config(args.config)
    mismatch = host_mismatch(config)
    if mismatch is not None:
        # Before the log opens: a log at c:\\logs on Linux would be a new folder named so in the current one.
        raise ConfigError(mismatch, file=config.path)
    result = run_config(config, level=args.logging_level)
    if args.json:
        print(result.to_json())
    elif result.is_lock_held:
        print(f"ncbackup: {result.warnings[-1]}", file=sys.stderr)
    else:
        print(result.summary())
    return result.exit_status
