"""``execute`` sections that are not built in: run HOME_FOLDER/NAME/EXECUTABLE with the original's arguments.

Argument convention (COMPAT.md section 1-2): for each non-empty PARAMETERS entry ``--KEY value`` (one
argument each, spaces kept; TARGETS passed as --OBJECTIVES), then ``--KEY value`` for every GENERAL
entry. With PARAMETERS_MODE flat, the parameter values are passed positionally (no --KEY); the
GENERAL entries follow as usual.

Secrets (entries whose key names one, those the section lists in SECRET_PARAMETERS, and values
holding a URL credential) follow the section's SECRETS_VIA: ``argv`` (the default, the original's
way: on the command line, visible in ``ps``), ``env`` (left out of the arguments, set as
``NCBACKUP_<KEY>`` in the program's environment) or ``file`` (left out of the arguments, written to
a 0600 JSON file ``{"KEY": "value"}`` whose path is passed last as ``--SECRETS_FILE path``, removed
when the program ends).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncbackup import platform, process
from ncbackup.config.secret_values import is_secret_name, is_secret_value, url_secrets
from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.engine.logs import add_secret
from ncbackup.errors import BackupError, CommandFailed, ConfigError

PYTHON_NAMES = {"", "python", "python3", "py"}
SECRETS_VIA_CHOICES = ("argv", "env", "file")
SECRETS_ENV_PREFIX = "NCBACKUP_"
SECRETS_FILE_OPTION = "--SECRETS_FILE"


@dataclass(frozen=True)
class ExternalProgram:
    """A resolved external program: what to start, and with which arguments."""

    section_name: str
    executable: Path
    argv: list[str]
    timeout_seconds: float | None
    secrets: tuple[str, ...] = ()
    secrets_via: str = "argv"
    secret_names: tuple[str, ...] = ()          # the keys whose values are secrets, for check's warning
    moved_secrets: dict[str, str] = field(default_factory=dict)   # KEY -> value, handed over by env or file
    secrets_folder: Path | None = None          # where the SECRETS_VIA file is written (None: the temp folder)
    warnings: tuple[str, ...] = ()          # e.g. a program other users may rewrite

    def describe(self) -> str:
        """One line for the plan."""
        position = self.argv.index(str(self.executable))
        interpreter = f"{self.argv[0]} " if position else ""
        limit = f", stopped after {self.timeout_seconds:g} s" if self.timeout_seconds else ""
        handed = ""
        if self.moved_secrets:
            handed = (f", {len(self.moved_secrets)} secret(s) in NCBACKUP_<KEY> variables" if self.secrets_via == "env"
                      else f", {len(self.moved_secrets)} secret(s) in a 0600 {SECRETS_FILE_OPTION} file")
        return (f"runs {interpreter}{self.executable} with {len(self.argv) - position - 1} arguments "
                f"(PARAMETERS then GENERAL){handed}{limit}; output into the log")


def argument_value(value: Any) -> str:
    """Render a PARAMETERS value as one command-line argument, the way the original passed it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


def _listed_secret_names(section: SectionSettings, *, config_file: Path | None = None) -> set[str]:
    """SECRET_PARAMETERS: a list, or a string of names separated by commas or spaces."""
    listed = section.extra.get("SECRET_PARAMETERS")
    if listed is None or listed == "":
        return set()
    if isinstance(listed, str):
        return {name for name in re.split(r"[\s,]+", listed) if name}
    if isinstance(listed, list) and all(isinstance(name, str) for name in listed):
        return set(listed)
    position = section.key_positions.get("SECRET_PARAMETERS")
    raise ConfigError('SECRET_PARAMETERS must list parameter names, e.g. ["DB_DSN", "API_URL"]; fix it',
                      file=config_file, line=position.line if position else None, key=f"{section.name}.SECRET_PARAMETERS")


def secrets_via(section: SectionSettings, *, config_file: Path | None = None) -> str:
    """The section's SECRETS_VIA ("argv" when absent); ConfigError naming the choices otherwise."""
    text = section.extra.get("SECRETS_VIA")
    choice = str(text).strip().lower() if text not in (None, "") else "argv"
    if choice not in SECRETS_VIA_CHOICES:
        position = section.key_positions.get("SECRETS_VIA")
        raise ConfigError(
            f'unknown SECRETS_VIA "{text}"; use "argv" (on the command line, the default), "env" '
            f'({SECRETS_ENV_PREFIX}<KEY> variables) or "file" (a 0600 JSON file passed as {SECRETS_FILE_OPTION})',
            file=config_file, line=position.line if position else None, key=f"{section.name}.SECRETS_VIA",
        )
    return choice


def _is_secret_entry(key: str, text: str, listed: set[str]) -> bool:
    if not is_secret_value(text):
        return False
    return key in listed or is_secret_name(key) or bool(url_secrets(text))


def secret_entries(section: SectionSettings, general: GeneralSettings, *,
                   config_file: Path | None = None) -> dict[str, str]:
    """KEY -> value of every PARAMETERS and GENERAL entry the program receives that is a secret."""
    listed = _listed_secret_names(section, config_file=config_file)
    found: dict[str, str] = {}
    for key, value in section.raw_parameters.items():
        if key.startswith("__") or value is None or value == "" or isinstance(value, bool):
            continue
        text = argument_value(value)
        if _is_secret_entry(key, text, listed):
            found["OBJECTIVES" if key == "TARGETS" else key] = text
    for key, text in general.entries.items():
        if _is_secret_entry(key, text, listed):
            found.setdefault(key, text)
    return found


def build_arguments(section: SectionSettings, general: GeneralSettings, *, leave_out: frozenset[str] = frozenset()) -> list[str]:
    """The original's argument list for an external program (without the program itself); leave_out: keys not passed."""
    arguments: list[str] = []
    for key, value in section.raw_parameters.items():
        if key.startswith("__") or value is None or value == "":
            continue
        name = "OBJECTIVES" if key == "TARGETS" else key
        if name in leave_out:
            continue
        if section.parameters_mode == "flat":
            arguments.append(argument_value(value))
            continue
        arguments += [f"--{name}", argument_value(value)]
    for key, value in general.entries.items():
        if key not in leave_out:
            arguments += [f"--{key}", argument_value(value)]
    return arguments


def environment_name(key: str) -> str:
    """The variable a secret travels in with SECRETS_VIA env: NCBACKUP_<KEY>, other characters as '_'."""
    return SECRETS_ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", key)


def writable_by_others_warnings(section_name: str, executable: Path, home_folder: Path) -> list[str]:
    """A warning for the program and each folder from its own up to HOME_FOLDER that group or world may write.

    Whoever can change the program (or swap it, through a folder) runs code as the backup's user.
    """
    home = home_folder.absolute()
    paths = [executable, *[folder for folder in executable.parents if folder == home or home in folder.parents]]
    return [
        f"section {section_name}: {path} is writable by other users (mode {platform.mode_text(path)}), who could "
        f"make the backup run their code as {platform.current_user_name()}; run `chmod go-w {path}`"
        for path in paths if platform.is_writable_by_others(path)
    ]


def resolve(section: SectionSettings, general: GeneralSettings, *, config_file: Path | None = None) -> ExternalProgram:
    """Find the program of an execute section under HOME_FOLDER; ConfigError naming the section if it is missing."""
    line = section.position.line if section.position else None
    if general.home_folder is None:
        raise ConfigError(
            f"section {section.name} runs the external program {section.module!r} but GENERAL has no HOME_FOLDER; "
            "set HOME_FOLDER to the folder holding it", file=config_file, line=line, key="HOME_FOLDER",
        )
    # Absolute: the program runs in its own folder, so a relative HOME_FOLDER must not be re-read from there.
    folder = (Path(general.home_folder) / (section.module or "")).absolute()
    if not folder.is_dir():
        raise ConfigError(
            f"section {section.name}: NAME {section.module!r} is not a built-in and the folder {folder} does not exist; "
            "fix NAME or install the program there", file=config_file, line=line, key="NAME",
        )
    executable_name = (section.executable or "").strip() or f"{section.module}.py"
    executable = folder / executable_name
    if not executable.is_file():
        raise ConfigError(
            f"section {section.name}: the program {executable} does not exist; fix EXECUTABLE or NAME",
            file=config_file, line=line, key="EXECUTABLE",
        )
    interpreter = (section.execute_with or "").strip()
    if interpreter.lower() in PYTHON_NAMES and (executable.suffix == ".py" or interpreter):
        # "python" in old configs meant the system Python; run scripts with ours when none is named so.
        found = process.which(interpreter) if interpreter and interpreter != "py" else None
        command = [str(found) if found else sys.executable]
    elif interpreter:
        found = process.which(interpreter)
        if found is None:
            raise ConfigError(
                f"section {section.name}: EXECUTE_WITH {interpreter!r} was not found; install it or give its full path",
                file=config_file, line=line, key="EXECUTE_WITH",
            )
        command = [str(found)]
    else:
        command = []
    via = secrets_via(section, config_file=config_file)
    entries = secret_entries(section, general, config_file=config_file)
    moved = dict(entries) if via != "argv" else {}
    argv = command + [str(executable)] + build_arguments(section, general, leave_out=frozenset(moved))
    listed = _listed_secret_names(section, config_file=config_file)
    secrets: list[str] = []
    for key, text in entries.items():
        # A value that is a secret by name is masked whole; a URL (the report address) only in its credentials.
        if key in listed or is_secret_name(key):
            add_secret(text, where=f"{section.name} {key}")
            secrets.append(text)
        for secret in url_secrets(text):
            add_secret(secret, where=f"the credential in {section.name} {key}")
            secrets.append(secret)
    folder = Path(general.work_folder)
    warnings = writable_by_others_warnings(section.name, executable, Path(general.home_folder))
    return ExternalProgram(section.name, executable, argv, section.timeout_seconds, tuple(secrets),
                           secrets_via=via, secret_names=tuple(entries), moved_secrets=moved,
                           secrets_folder=folder if folder.is_dir() else None, warnings=tuple(warnings))


@contextmanager
def _handed_secrets(program: ExternalProgram) -> Iterator[tuple[list[str], dict[str, str] | None]]:
    """Yield the argv and environment to start the program with: its secrets moved to env or a 0600 file."""
    if not program.moved_secrets:
        yield program.argv, None
        return
    if program.secrets_via == "env":
        yield program.argv, process.child_env({environment_name(k): v for k, v in program.moved_secrets.items()})
        return
    # mkstemp creates the file 0600 atomically, before any secret is written to it.
    try:
        descriptor, name = tempfile.mkstemp(prefix=".ncbackup-secrets-", suffix=".json", dir=program.secrets_folder)
    except OSError as error:
        raise BackupError(f"cannot create the secrets file for {program.executable.name} in "
                          f"{program.secrets_folder or tempfile.gettempdir()} ({error.strerror}); "
                          "free space there or fix WORK_FOLDER's permissions") from None
    path = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(program.moved_secrets, handle)
        yield [*program.argv, SECRETS_FILE_OPTION, str(path)], None
    finally:
        path.unlink(missing_ok=True)


def run_program(program: ExternalProgram, logger: logging.Logger, *, cwd: Path | None = None) -> None:
    """Run the program, its stdout/stderr into the log; raise BackupError (one sentence) if it fails or times out."""
    program_logger = logger.getChild(program.section_name)

    def on_line(line: str) -> None:
        program_logger.info("%s", line)

    try:
        with _handed_secrets(program) as (argv, env):
            process.run_streaming_lines(argv, on_line=on_line, timeout_seconds=program.timeout_seconds, env=env,
                                        cwd=cwd or program.executable.parent, secrets=program.secrets)
    except CommandFailed as failure:
        if failure.timed_out:
            raise BackupError(
                f"{program.executable} did not finish within TIMEOUT {program.timeout_seconds:g} s and was stopped; "
                "raise the section's TIMEOUT or fix the program"
            ) from None
        tail = failure.stderr_tail.strip().splitlines()[-1:] if failure.stderr_tail else []
        raise BackupError(
            f"{program.executable} exited with status {failure.code}"
            + (f" (last output: {tail[0]})" if tail else "")
            + "; see the log for its output"
        ) from None
