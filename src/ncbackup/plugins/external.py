"""``execute`` sections that are not built in: run HOME_FOLDER/NAME/EXECUTABLE with the original's arguments.

Argument convention (COMPAT.md section 1-2): for each non-empty PARAMETERS entry ``--KEY value`` (one
argument each, spaces kept; TARGETS passed as --OBJECTIVES), then ``--KEY value`` for every GENERAL
entry. With PARAMETERS_MODE flat, the parameter values are passed positionally (no --KEY); the
GENERAL entries follow as usual.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncbackup import platform, process
from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.engine.logs import add_secret
from ncbackup.errors import BackupError, CommandFailed, ConfigError

PYTHON_NAMES = {"", "python", "python3", "py"}
# PARAMETERS whose values are secrets (MONGO_PWD, SECRET_KEY...): the original convention puts them on
# the script's command line, so at least keep them out of every log line. Paths to key files are not secrets.
_SECRET_KEY = re.compile(r"PASS|PWD|SECRET|TOKEN|PRIVATE|(^|_)KEY$", re.IGNORECASE)
_PATH_KEY = re.compile(r"_(PATH|FILE|DIR|FOLDER)$", re.IGNORECASE)


@dataclass(frozen=True)
class ExternalProgram:
    """A resolved external program: what to start, and with which arguments."""

    section_name: str
    executable: Path
    argv: list[str]
    timeout_seconds: float | None
    secrets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()          # e.g. a program other users may rewrite

    def describe(self) -> str:
        """One line for the plan."""
        position = self.argv.index(str(self.executable))
        interpreter = f"{self.argv[0]} " if position else ""
        limit = f", stopped after {self.timeout_seconds:g} s" if self.timeout_seconds else ""
        return (f"runs {interpreter}{self.executable} with {len(self.argv) - position - 1} arguments "
                f"(PARAMETERS then GENERAL){limit}; output into the log")


def argument_value(value: Any) -> str:
    """Render a PARAMETERS value as one command-line argument, the way the original passed it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


def secret_values(section: SectionSettings) -> tuple[str, ...]:
    """The PARAMETERS values that are secrets (by key name), to mask in logs."""
    return tuple(
        argument_value(value) for key, value in section.raw_parameters.items()
        if value not in (None, "") and _SECRET_KEY.search(key) and not _PATH_KEY.search(key)
    )


def build_arguments(section: SectionSettings, general: GeneralSettings) -> list[str]:
    """The original's argument list for an external program (without the program itself)."""
    arguments: list[str] = []
    for key, value in section.raw_parameters.items():
        if key.startswith("__") or value is None or value == "":
            continue
        if section.parameters_mode == "flat":
            arguments.append(argument_value(value))
            continue
        name = "OBJECTIVES" if key == "TARGETS" else key
        arguments += [f"--{name}", argument_value(value)]
    for key, value in general.entries.items():
        arguments += [f"--{key}", argument_value(value)]
    return arguments


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
    argv = command + [str(executable)] + build_arguments(section, general)
    secrets = secret_values(section)
    for secret in secrets:
        add_secret(secret)
    warnings = writable_by_others_warnings(section.name, executable, Path(general.home_folder))
    return ExternalProgram(section.name, executable, argv, section.timeout_seconds, secrets, tuple(warnings))


def run_program(program: ExternalProgram, logger: logging.Logger, *, cwd: Path | None = None) -> None:
    """Run the program, its stdout/stderr into the log; raise BackupError (one sentence) if it fails or times out."""
    program_logger = logger.getChild(program.section_name)

    def on_line(line: str) -> None:
        program_logger.info("%s", line)

    try:
        process.run_streaming_lines(program.argv, on_line=on_line, timeout_seconds=program.timeout_seconds,
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
