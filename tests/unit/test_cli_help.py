"""Every command's --help, as a user runs it: plain text, choices shown once, required options under their
own heading, and the exit statuses at the end."""

from __future__ import annotations

import argparse
import re

import pytest

from ncbackup.cli import COMMANDS, build_parser, main
from ncbackup.exitcodes import EXIT_STATUS_HELP


def _help_of(command: list[str], capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--help"])
    assert stopped.value.code == 0
    return capsys.readouterr().out


def _subparser(name: str) -> argparse.ArgumentParser:
    subparsers = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    return subparsers.choices[name]


def _sections(help_text: str) -> dict[str, str]:
    """The help's headed blocks ("options:", "required arguments:", ...) by heading."""
    sections: dict[str, str] = {}
    heading = None
    for line in help_text.splitlines():
        match = re.fullmatch(r"([a-z][a-z ]*):", line)
        if match:
            heading = match.group(1)
            sections[heading] = ""
        elif heading is not None:
            sections[heading] += line + "\n"
    return sections


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)], ids=lambda command: " ".join(command) or "ncbackup")
def test_help_is_plain_text_and_ends_with_the_exit_statuses(command, capsys, monkeypatch):
    help_text = _help_of(command, capsys, monkeypatch)
    assert "`" not in help_text, f"reStructuredText/Markdown backticks in 'ncbackup {' '.join(command)} --help'"
    assert " ".join(help_text.split()).endswith(EXIT_STATUS_HELP)


def test_exit_status_line_names_the_exit_values():
    assert EXIT_STATUS_HELP == "exit status: 0 ok, 1 warnings, 2 failed, 3 unusable config or arguments"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_choices_are_shown_once(name, capsys, monkeypatch):
    help_text = _help_of([name], capsys, monkeypatch)
    # argparse writes {A,B,C} after every spelling of an option (three times for -l): a metavar hides
    # them there, and the help sentence names them once.
    assert "{" not in help_text, f"{name} --help repeats a list of choices in braces"
    for action in _subparser(name)._actions:
        for choice in action.choices or ():
            assert re.search(rf"\b{re.escape(str(choice))}\b", help_text), (
                f"{name} --help never names {choice!r}, a choice of {action.option_strings}"
            )


@pytest.mark.parametrize("name", list(COMMANDS))
def test_required_options_are_listed_as_required(name, capsys, monkeypatch):
    help_text = _help_of([name], capsys, monkeypatch)
    sections = _sections(help_text)
    required = [action for action in _subparser(name)._actions if action.required and action.option_strings]
    for action in required:
        assert action.option_strings[0] in sections.get("required arguments", ""), (
            f"{name}: {action.option_strings[0]} is required but not under 'required arguments:'"
        )
        assert f"  {action.option_strings[0]} " not in sections.get("options", "")
    if not required:
        assert "required arguments" not in sections


def test_log_level_lists_its_choices_once(capsys, monkeypatch):
    help_text = _help_of(["run"], capsys, monkeypatch)
    assert help_text.count("CRITICAL") == 1 and "-l LEVEL, --logging_level LEVEL, --log-level LEVEL" in help_text
