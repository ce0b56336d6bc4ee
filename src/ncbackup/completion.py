"""Shell completion scripts (bash, zsh) for ncbackup, written by shtab from the argument parser.

Run at build time (scripts/build-deb): ``python -m ncbackup.completion bash > ncbackup``. shtab is a build
and test dependency (the ``test`` extra), not a run-time one: the installed command never imports this module.
"""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh")

# Where the Debian package puts each script (the places bash-completion and Debian's zsh look by default).
INSTALL_PATHS = {
    "bash": "usr/share/bash-completion/completions/ncbackup",
    "zsh": "usr/share/zsh/vendor-completions/_ncbackup",
}

# Options whose value is a local file or folder complete file names; others (a set id, a section, a glob
# inside a set, a log level) complete their choices or nothing.
_PATH_WORDS = ("config", "file", "key", "input", "output", "target", "signer")


def _takes_a_local_path(action: argparse.Action) -> bool:
    if not action.option_strings or action.nargs == 0 or action.choices is not None:
        return False
    if action.metavar in ("FILE", "PATH", "DIR"):
        return True
    return action.metavar in (None, "FILE") and any(word in action.dest for word in _PATH_WORDS)


def _mark_paths(parser: argparse.ArgumentParser) -> None:
    """Tell shtab which options complete file names, on this parser and every subcommand's."""
    import shtab

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in set(action.choices.values()):
                _mark_paths(subparser)
        elif _takes_a_local_path(action):
            action.complete = shtab.DIRECTORY if action.dest == "target" else shtab.FILE  # type: ignore[attr-defined]


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for shell ("bash" or "zsh") of parser (ncbackup's, from ncbackup.cli.build_parser())."""
    import shtab

    if shell not in SHELLS:
        raise ValueError(f"no completion for shell {shell!r}; use one of: {', '.join(SHELLS)}")
    _mark_paths(parser)
    return shtab.complete(parser, shell=shell)


def main(argv: list[str] | None = None) -> int:
    from ncbackup.cli import build_parser

    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1 or arguments[0] not in SHELLS:
        print(f"usage: python -m ncbackup.completion {{{','.join(SHELLS)}}}", file=sys.stderr)
        return 3
    sys.stdout.write(completion_script(build_parser(), arguments[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
