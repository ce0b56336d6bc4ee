"""The command runner hook: ordered commands as argument lists, undo always attempted."""

from __future__ import annotations

import json

import pytest

from ncbackup.config import loads_config
from ncbackup.errors import BackupError, ConfigError
from ncbackup.hooks.commands import CommandRunner


def section(tmp_path, parameters):
    text = json.dumps({"GENERAL": {"HOSTNAME": "h", "WORK_FOLDER": str(tmp_path)},
                       "SNAP": {"ACTION": "execute", "NAME": "rsync", "PARAMETERS": parameters}})
    return loads_config(text, path=tmp_path / "c.json").sections[0]


def test_commands_run_in_order(tmp_path):
    log = tmp_path / "order"
    runner = CommandRunner.from_section(section(tmp_path, {"ORIGIN_AND_TARGETS_PARAMS": {
        "first": f"sh -c 'echo 1 >> {log}'", "second": f"sh -c 'echo 2 >> {log}'"}}))
    runner.enter(None)
    assert log.read_text() == "1\n2\n"


def test_a_failing_command_stops_the_hook_with_its_name(tmp_path):
    runner = CommandRunner.from_section(section(tmp_path, {"ORIGIN_AND_TARGETS_PARAMS": {"bad": "false"}}))
    with pytest.raises(BackupError, match="command 'bad' of section SNAP failed"):
        runner.enter(None)


def test_every_undo_command_runs_even_if_one_fails(tmp_path):
    marker = tmp_path / "m"
    runner = CommandRunner.from_section(section(tmp_path, {
        "ORIGIN_AND_TARGETS_PARAMS": {}, "UNDO_COMMANDS": {"bad": "false", "good": f"touch {marker}"}}))
    with pytest.raises(BackupError):
        runner.exit(None)
    assert marker.exists()


def test_commands_must_be_an_object(tmp_path):
    with pytest.raises(ConfigError, match="must be an object of named commands"):
        CommandRunner.from_section(section(tmp_path, {"ORIGIN_AND_TARGETS_PARAMS": "lvcreate x"}))
