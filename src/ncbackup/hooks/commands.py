"""The original's command runner (its ``rsync`` plugin, used for LVM snapshots).

``ORIGIN_AND_TARGETS_PARAMS`` is an object of named commands run in order, each split with shlex
into an argument list (never a shell: pipes, redirections and ``&&`` are not interpreted). An
optional ``UNDO_COMMANDS`` object, same shape, runs at the end of the run even when a later step
failed (e.g. ``umount`` and ``lvremove``), so a snapshot is never left behind.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncbackup import process
from ncbackup.config.settings import SectionSettings
from ncbackup.errors import BackupError, CommandFailed, ConfigError

COMMANDS_KEY = "ORIGIN_AND_TARGETS_PARAMS"
UNDO_KEY = "UNDO_COMMANDS"


@dataclass(frozen=True)
class NamedCommand:
    name: str
    argv: list[str]


def parse_commands(value: Any, *, section: SectionSettings, key: str, config_file: Path | None = None) -> list[NamedCommand]:
    """Turn an object of named command lines into argument lists, in order."""
    line = section.position.line if section.position else None
    position = section.parameter_positions.get(key)
    if position is not None:
        line = position.line
    if isinstance(value, str):
        try:
            import ast

            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
    if not isinstance(value, dict):
        raise ConfigError(f"section {section.name}: {key} must be an object of named commands, e.g. "
                          '{"snapshot": "lvcreate --snapshot ..."}', file=config_file, line=line, key=key)
    commands = []
    for name, command_line in value.items():
        if str(name).startswith("__"):
            continue
        try:
            argv = shlex.split(str(command_line))
        except ValueError as error:
            raise ConfigError(f"section {section.name}: command {name!r} cannot be split into arguments ({error}); "
                              "fix its quotes", file=config_file, line=line, key=key) from None
        if argv:
            commands.append(NamedCommand(str(name), argv))
    return commands


@dataclass
class CommandRunner:
    """A Hook: runs its commands on enter, its undo commands on exit."""

    name: str
    commands: list[NamedCommand]
    undo_commands: list[NamedCommand] = field(default_factory=list)
    timeout_seconds: float | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))

    @classmethod
    def from_section(cls, section: SectionSettings, *, config_file: Path | None = None) -> CommandRunner:
        params = section.parameters
        commands = parse_commands(params.get(COMMANDS_KEY, {}), section=section, key=COMMANDS_KEY, config_file=config_file)
        undo = parse_commands(params[UNDO_KEY], section=section, key=UNDO_KEY, config_file=config_file) \
            if UNDO_KEY in params else []
        return cls(section.name, commands, undo, section.timeout_seconds)

    def describe(self) -> str:
        text = f"runs {len(self.commands)} command(s) in order: " + ", ".join(c.name for c in self.commands)
        if self.undo_commands:
            text += f"; at the end of the run: {', '.join(c.name for c in self.undo_commands)}"
        return text

    def _run(self, command: NamedCommand) -> None:
        self.logger.info("%s: running %s: %s", self.name, command.name, shlex.join(command.argv))
        try:
            process.run_streaming_lines(command.argv, timeout_seconds=self.timeout_seconds,
                                        on_line=lambda line: self.logger.info("%s: %s", command.name, line))
        except CommandFailed as failure:
            raise BackupError(f"command {command.name!r} of section {self.name} failed: {failure}") from None

    def enter(self, run: Any) -> None:
        for command in self.commands:
            self._run(command)

    def exit(self, run: Any) -> None:
        """Run every undo command, even if one fails (each failure is logged)."""
        failures = []
        for command in self.undo_commands:
            try:
                self._run(command)
            except BackupError as error:
                self.logger.error("%s", error)
                failures.append(str(error))
        if failures:
            raise BackupError("; ".join(failures))
