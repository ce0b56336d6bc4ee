"""The ncbackup(1) man page in roff, written from the argument parser so it cannot disagree with ``--help``.

Run at build time (scripts/build-deb): ``python -m ncbackup.manpage > ncbackup.1``.
"""

from __future__ import annotations

import argparse
import re
import sys

from ncbackup import __version__
from ncbackup.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE, EXIT_WARNINGS

# Exit statuses every command shares (ncbackup.exitcodes); the meanings are the ones docs/running.md gives.
EXIT_STATUS = (
    (EXIT_OK, "success"),
    (EXIT_WARNINGS, "success with warnings (a file changed while it was read, low disk space)"),
    (EXIT_FAILED, "failed or partly failed: a step, a storage, a database, a check, a restore or a verification failed"),
    (EXIT_UNUSABLE, "unusable: the config or the command line cannot be used"),
)


def roff_text(text: str) -> str:
    """Text escaped for roff: backslashes and hyphens literal, no line starting a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.split("\n"))


def _paragraphs(text: str, parser: argparse.ArgumentParser) -> list[str]:
    """Roff paragraphs of a description or epilog: kept line by line when the parser shows it raw, else reflowed."""
    text = text.strip()
    if not text:
        return []
    formatter = parser.formatter_class
    if isinstance(formatter, type) and issubclass(formatter, argparse.RawDescriptionHelpFormatter):
        return [".nf\n" + roff_text(text) + "\n.fi"]
    return [roff_text(" ".join(block.split())) for block in re.split(r"\n\s*\n", text)]


def _help_of(action: argparse.Action, prog: str) -> str:
    """An action's help with %(default)s and the like filled in, as argparse prints it."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    values = {name: value for name, value in vars(action).items() if value is not argparse.SUPPRESS}
    values["prog"] = prog
    if values.get("choices") is not None:
        values["choices"] = ", ".join(str(choice) for choice in values["choices"])
    return action.help % values


def _option_heading(action: argparse.Action) -> str:
    """``-c, --config CONFIG`` in bold and italics."""
    if action.nargs == 0:
        value = ""
    elif action.choices is not None and action.metavar is None:
        value = " {" + ",".join(str(choice) for choice in action.choices) + "}"
    else:
        metavar = action.metavar
        shown = " ".join(metavar) if isinstance(metavar, tuple) else (metavar or action.dest.upper())
        value = " " + shown
        if action.nargs in ("+", "*"):
            value += " ..."
    names = ", ".join(f"\\fB{roff_text(name)}\\fR" for name in action.option_strings)
    return names + (f"\\fI{roff_text(value)}\\fR" if value else "")


def _options(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        positional = " ".join(action.metavar) if isinstance(action.metavar, tuple) else (action.metavar or action.dest)
        heading = _option_heading(action) if action.option_strings else f"\\fI{roff_text(positional)}\\fR"
        lines += [".TP", heading]
        help_text = _help_of(action, parser.prog)
        if action.required and action.option_strings and "required" not in help_text.lower():
            help_text = "(required) " + help_text
        if help_text:
            lines.append(roff_text(" ".join(help_text.split())))
    return lines


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The visible subcommands of parser by name, in the order --help lists them (aliases left out)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            visible = {choice.dest for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                if name in visible and subparser not in found.values():
                    found[name] = subparser
    return found


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each subcommand's one-line help as the command list of --help shows it."""
    summaries: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                summaries[choice.dest] = choice.help or ""
    return summaries


def _usage(parser: argparse.ArgumentParser) -> str:
    usage = " ".join(parser.format_usage().split())
    return usage.removeprefix("usage: ")


def man_page(parser: argparse.ArgumentParser) -> str:
    """The whole man page of parser (ncbackup's, from ncbackup.cli.build_parser()) in roff."""
    name = parser.prog
    commands = subcommands(parser)
    summaries = _summaries(parser)
    out = [
        f'.TH {name.upper()} 1 "" "{name} {__version__}" "User Commands"',
        ".SH NAME",
        f"{name} \\- {roff_text(parser.description or '')}",
        ".SH SYNOPSIS",
        ".nf",
        roff_text(_usage(parser)),
        *(roff_text(f"{name} {command} [OPTIONS]") for command in commands),
        ".fi",
        ".SH DESCRIPTION",
        *_paragraphs(parser.description or "", parser),
        "Every command takes its own options, listed under its name below and by",
        f"\\fB{name} COMMAND \\-\\-help\\fR.",
        ".SH OPTIONS",
        *_options(parser),
        ".SH COMMANDS",
    ]
    for command, subparser in commands.items():
        out += [f'.SS "{name} {command}"']
        if summaries.get(command):
            out += [roff_text(" ".join(summaries[command].split())), ".PP"]
        out += [f"\\fB{roff_text(name)} {roff_text(command)}\\fR{roff_text(_usage(subparser).removeprefix(f'{name} {command}'))}"]
        for paragraph in _paragraphs(subparser.description or "", subparser):
            out += [".PP", paragraph]
        out += _options(subparser)
        for paragraph in _paragraphs(subparser.epilog or "", subparser):
            out += [".PP", paragraph]
    out += [".SH EXIT STATUS"]
    for status, meaning in EXIT_STATUS:
        out += [".TP", f"\\fB{status}\\fR", roff_text(meaning)]
    out += [
        ".SH FILES",
        ".TP",
        "\\fI/etc/ncbackup/conf.json\\fR",
        "The config the systemd unit ncbackup.service runs (the Debian package ships",
        "\\fI/etc/ncbackup/conf.json.example\\fR to start from).",
        ".SH SEE ALSO",
        "The documentation in the source repository: docs/install.md, docs/config.md, docs/running.md,",
        "docs/restore.md.",
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    from ncbackup.cli import build_parser

    sys.stdout.write(man_page(build_parser()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
