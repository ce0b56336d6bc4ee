"""``ncbackup check -c conf.json``: load, validate, print the plan, check every component; run nothing.

Exit 0 when every check passes, 2 when one fails, 3 when the config is unusable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ncbackup import process
from ncbackup.commands.common import add_logging_argument, guarded
from ncbackup.config import load_config
from ncbackup.config.host import host_mismatch
from ncbackup.config.settings import Config
from ncbackup.engine.diskspace import Level, check_space
from ncbackup.engine.logs import SHORT_SECRET_CHARS, mask_secrets, short_secret_sources
from ncbackup.engine.plan import (
    CommandsStep,
    DataGroup,
    DataStep,
    Plan,
    PluginStep,
    ProgramStep,
    SnapshotStep,
    Step,
    build_plan,
)
from ncbackup.errors import BackupError
from ncbackup.exitcodes import EXIT_FAILED, EXIT_OK
from ncbackup.sources.base import CheckLine, check_writable_folder
from ncbackup.storage.base import Storage, prune_support


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("check", help="validate the config, print the plan and check reachability; run nothing",
                                   description="Load and validate the config, print one line per step, check paths, "
                                               "binaries and servers through each component's check(); write nothing.")
    parser.add_argument("-c", "--config", required=True, type=Path, help="the JSON config file")
    add_logging_argument(parser)
    parser.set_defaults(handler=main)


def general_checks(config: Config) -> list[CheckLine]:
    general = config.general
    mismatch = host_mismatch(config)
    if mismatch is not None:
        # Another system's paths mean other folders here: checking them would say nothing true.
        return [CheckLine(False, mismatch),
                CheckLine(True, f"not checked on this host: WORK_FOLDER {general.work_folder}, the log, free space, "
                                "and every step's paths, programs and servers; the plan below is what a run there does")]
    lines = [check_writable_folder(Path(general.work_folder), "WORK_FOLDER")]
    if general.log_file is not None:
        log_file = Path(general.log_file)
        if log_file.exists():
            ok = os.access(log_file, os.W_OK)
            lines.append(CheckLine(ok, f"LOG_FOLDER file {log_file} " + ("is writable" if ok else "is not writable")))
        else:
            lines.append(check_writable_folder(log_file.parent, "LOG_FOLDER folder"))
    if general.home_folder is not None:
        home = Path(general.home_folder)
        lines.append(CheckLine(home.is_dir(), f"HOME_FOLDER {home} " + ("exists" if home.is_dir() else "does not exist")))
    verdict = check_space(general)
    lines.append(CheckLine(verdict.level != Level.STOP, verdict.message))
    lines += notifier_checks(config)
    lines += [CheckLine(True, f"warning: {where} is shorter than {SHORT_SECRET_CHARS} characters; it is masked as *** "
                              "wherever those characters appear in logs and reports; use a longer one")
              for where in short_secret_sources()]
    return lines


def notifier_checks(config: Config) -> list[CheckLine]:
    """One line per notifier (built, so an unusable CREDENTIALS_FILE raises ConfigError); none is contacted."""
    from ncbackup.notify.registry import LEGACY_NAME, build_notifiers
    from ncbackup.notify.sections import OUTCOME_WORDS

    lines = []
    for delivery in build_notifiers(config):
        if delivery.name == LEGACY_NAME and delivery.method == "post" and config.general.report_url:
            lines.append(CheckLine(True, f"the report goes to {config.general.report_url} (not contacted by check)"))
            continue
        on = " ".join(word for word, status in OUTCOME_WORDS.items() if status in delivery.notifier.outcomes)
        lines.append(CheckLine(True, f"notifier {delivery.name}: METHOD {delivery.method}, sent on {on} (not "
                                     "contacted by check; `ncbackup notify-test` sends a test message)"))
    return lines


def _component_lines(component: Any, label: str) -> list[CheckLine]:
    check = getattr(component, "check", None)
    if not callable(check):
        return [CheckLine(True, f"{label}: no check available")]
    try:
        return [CheckLine(line.ok, f"{label}: {line.text}") for line in check()]
    except BackupError as error:
        return [CheckLine(False, f"{label}: {error}")]
    except Exception as error:  # noqa: BLE001 - a broken check is a failed check, not a traceback
        return [CheckLine(False, f"{label}: check crashed ({type(error).__name__}: {error})")]


def _encryption_lines(group: DataGroup, config: Config) -> list[CheckLine]:
    from ncbackup.stages.registry import DEFAULT_KEY_FILE, encryption_from_section

    section = group.encryption
    if section is None:
        return []
    key_file = Path(str(section.parameters.get("KEY_FILE") or DEFAULT_KEY_FILE))
    if not key_file.exists():
        # encryption_from_section would create it: check must write nothing.
        return [CheckLine(True, f"{section.name}: KEY_FILE {key_file} does not exist; the first run creates a new "
                                "age identity there (copy it somewhere safe)")]
    try:
        choice = encryption_from_section(section, config.general)
    except BackupError as error:
        return [CheckLine(False, f"{section.name}: {error}")]
    lines = [CheckLine(True, f"{section.name}: KEY_FILE {key_file} usable ({choice.stage.name})")]
    lines += [CheckLine(True, f"{section.name}: warning: {text}") for text in choice.warnings]
    return lines


def _prune_line(label: str, storage: Storage, config: Config) -> CheckLine:
    """Whether prune can work on this storage; printed always, so a user can tell before writing a CLEANUP
    section, and a FAIL only when the config has one (it asks for pruning that cannot happen there)."""
    from ncbackup.retention.policy import cleanup_section

    why_not = prune_support(storage)
    if why_not is None:
        return CheckLine(True, f"{label}: prune works here (lists and deletes)")
    has_cleanup = cleanup_section(config) is not None
    return CheckLine(not has_cleanup, f"{label}: {why_not}")


def step_checks(step: Step, config: Config) -> list[CheckLine]:
    if isinstance(step, DataStep):
        from ncbackup.stages.registry import compression_from_section

        group = step.group
        lines: list[CheckLine] = []
        for section, source in group.sources:
            lines += _component_lines(source, section.name)
        if group.folder_input is not None and group.input_section is not None:
            lines += _component_lines(group.folder_input, group.input_section.name)
        if group.compression is not None:
            try:
                stage = compression_from_section(group.compression, config.general)
                lines.append(CheckLine(True, f"{group.compression.name}: {stage.name} compression"))
            except BackupError as error:
                lines.append(CheckLine(False, f"{group.compression.name}: {error}"))
        lines += _encryption_lines(group, config)
        for section, storage in group.storages:
            lines += _component_lines(storage, f"{section.name} ({storage.name})")
            lines.append(_prune_line(f"{section.name} ({storage.name})", storage, config))
        return lines
    if isinstance(step, ProgramStep):
        program = step.program
        is_executable = os.access(program.executable, os.X_OK) or program.argv[0] != str(program.executable)
        lines = [CheckLine(is_executable, f"{program.executable} " + (
            "found" if is_executable else "is not executable; chmod +x it or set EXECUTE_WITH"))]
        if program.secrets_via == "argv" and program.secret_names:
            lines.append(CheckLine(True, f"warning: the secret(s) {', '.join(program.secret_names)} go on the "
                                         f"command line of {program.executable.name}, where every local user can read "
                                         f'them (ps); set "SECRETS_VIA": "env" or "file" in section {program.section_name}'))
        return lines
    if isinstance(step, PluginStep):
        return [CheckLine(True, f"{step.plugin.file} found (not imported by check)")]
    if isinstance(step, CommandsStep):
        lines = []
        for command in step.runner.commands + step.runner.undo_commands:
            found = process.which(command.argv[0])
            lines.append(CheckLine(found is not None, f"{command.name}: {command.argv[0]} "
                                   + (f"found at {found}" if found else "not found")))
        return lines
    if isinstance(step, SnapshotStep):
        try:
            return step.snapshot.check()
        except BackupError as error:
            return [CheckLine(False, f"{step.name}: {error}")]
    return []


def say(text: str) -> None:
    """Print one line of check's output, every registered secret masked (a report URL's token, a check's error)."""
    print(mask_secrets(text))


def print_plan(plan: Plan, config: Config) -> bool:
    """Print the plan and every check; return True when all checks pass."""
    is_ok = True
    say(f"config {config.path}: host {config.general.hostname}, {len(plan.steps)} step(s)")
    for warning in config.warnings:
        say(f"  warning: {warning}")
    for line in general_checks(config):
        is_ok &= line.ok
        say(f"  {'ok  ' if line.ok else 'FAIL'} {line.text}")
    is_other_systems = host_mismatch(config) is not None
    for number, step in enumerate(plan.steps, start=1):
        say(f"{number}. {step.name} [{step.kind.value}]: {step.description}")
        for line in [] if is_other_systems else step_checks(step, config):
            is_ok &= line.ok
            say(f"     {'ok  ' if line.ok else 'FAIL'} {line.text}")
    for note in plan.notes:
        say(f"  note: {note}")
    print("check: all checks passed" if is_ok else "check: some checks FAILED")
    return is_ok


@guarded
def main(args) -> int:
    config = load_config(args.config)
    plan = build_plan(config)
    return EXIT_OK if print_plan(plan, config) else EXIT_FAILED
