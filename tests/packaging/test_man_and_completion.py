"""The man page and the bash/zsh completion scripts come from the argument parser: every command and option is in each."""

from __future__ import annotations

import argparse
import re
import subprocess

import pytest

from ncbackup.cli import build_parser
from ncbackup.completion import completion_script
from ncbackup.manpage import man_page, roff_text
from tests.support import need_binary


def commands_and_options() -> dict[str, list[str]]:
    """Every subcommand of the real parser -> every option string it accepts ("" -> the top level's)."""
    parser = build_parser()
    found = {"": [name for action in parser._actions for name in action.option_strings]}
    [commands] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    for command, subparser in commands.choices.items():
        found[command] = [name for action in subparser._actions for name in action.option_strings]
    return found


def has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w\\-]){re.escape(word)}(?![\w-])", text) is not None


def test_the_parser_has_the_commands_we_ship():
    # A guard for the tests below: they check whatever the parser has, so it must have something.
    commands = commands_and_options()
    assert {"run", "check", "list", "restore", "verify", "decrypt", "keygen"} <= set(commands)
    assert "--target" in commands["restore"]


def man_sections(page: str) -> dict[str, str]:
    """The text of each command's subsection ("" -> everything before the COMMANDS section)."""
    head, _, body = page.partition("\n.SH COMMANDS\n")
    body = body.split("\n.SH EXIT STATUS")[0]
    sections = {"": head}
    for block in body.split('.SS "ncbackup ')[1:]:
        command, _, text = block.partition('"\n')
        sections[command] = text
    return sections


def test_man_page_has_every_command_and_each_of_its_options():
    sections = man_sections(man_page(build_parser()))
    for command, options in commands_and_options().items():
        assert command in sections, f"no section for `ncbackup {command}` in the man page"
        for option in options:
            # Each option heads its own entry, in bold: \fB\-\-target\fR.
            heading = f"\\fB{roff_text(option)}\\fR"
            assert heading in sections[command], f"{option} of `ncbackup {command}` has no entry in its section"


def test_man_page_shows_help_texts_and_exit_statuses():
    page = man_page(build_parser())
    assert roff_text("the JSON config file") in man_sections(page)["run"]
    assert ".SH EXIT STATUS" in page and "\\fB3\\fR" in page


def test_man_page_renders_without_warnings(tmp_path):
    need_binary("man")
    path = tmp_path / "ncbackup.1"
    path.write_text(man_page(build_parser()))
    rendered = subprocess.run(["man", "--warnings", "-l", str(path)], capture_output=True, text=True, timeout=60,
                              env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MANPAGER": "cat"})
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stderr == ""
    text = re.sub(r".\x08", "", rendered.stdout)   # overstrike bold and underline
    assert "ncbackup restore" in text and "--target" in text


def test_roff_text_cannot_start_a_request_or_lose_a_backslash():
    assert roff_text(".hidden\n'quoted\nC:\\path -x") == "\\&.hidden\n\\&'quoted\nC:\\epath \\-x"


def test_man_page_marks_required_options_and_reflows_plain_descriptions():
    parser = argparse.ArgumentParser(prog="ncbackup", description="Tool.")
    sub = parser.add_subparsers(dest="command").add_parser("demo", help="a demo", description="first\nline\n\nsecond")
    sub.add_argument("--must", required=True, help="needed")
    page = man_page(parser)
    assert "(required) needed" in page
    assert "first line\n.PP\nsecond" in page


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_has_every_command_and_each_of_its_options(shell):
    script = completion_script(build_parser(), shell)
    for command, options in commands_and_options().items():
        word = command.replace("-", "_")          # shtab names `notify-test`'s variables notify_test
        if shell == "bash":
            variable = "_shtab_ncbackup" + (f"_{word}" if command else "") + "_option_strings"
            block = re.search(rf"^{variable}=\((.*)\)$", script, re.MULTILINE)
        else:
            variable = "_shtab_ncbackup" + (f"_{word}" if command else "") + "_options"
            block = re.search(rf"^{variable}=\(\n(.*?)^\)$", script, re.MULTILINE | re.DOTALL)
        assert block is not None, f"no option list for `ncbackup {command}` in the {shell} completion"
        for option in options:
            assert has_word(block.group(1), option), f"{option} of `ncbackup {command}` not completed by {shell}"


def bash_completes(script_path, *words: str) -> list[str]:
    """What bash offers after `ncbackup words...` (the last word being the one completed)."""
    words_text = " ".join(f"'{word}'" for word in words)
    program = (f"source {script_path}; COMP_WORDS=(ncbackup {words_text}); COMP_CWORD={len(words)}; "
               "_shtab_ncbackup; printf '%s\\n' \"${COMPREPLY[@]}\"")
    completed = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                               timeout=60, check=True)
    return [line for line in completed.stdout.splitlines() if line]


def test_bash_completes_commands_options_choices_and_config_files(tmp_path):
    need_binary("bash")
    script = tmp_path / "ncbackup"
    script.write_text(completion_script(build_parser(), "bash"))
    (tmp_path / "conf.json").write_text("{}")
    assert bash_completes(script, "res") == ["restore"]
    assert bash_completes(script, "restore", "--ta") == ["--target"]
    assert bash_completes(script, "check", "-l", "W") == ["WARNING"]
    assert bash_completes(script, "run", "-c", str(tmp_path / "con")) == [str(tmp_path / "conf.json")]


def test_zsh_completion_parses(tmp_path):
    need_binary("zsh")
    script = tmp_path / "_ncbackup"
    script.write_text(completion_script(build_parser(), "zsh"))
    checked = subprocess.run(["zsh", "-n", str(script)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert script.read_text().startswith("#compdef ncbackup")
