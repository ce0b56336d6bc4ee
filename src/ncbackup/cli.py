"""The ``ncbackup`` command line: one argparse parser, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys

from ncbackup import __version__

# Subcommand name -> module under ncbackup.commands. Adding a command is one line here.
COMMANDS: dict[str, str] = {
    "run": "ncbackup.commands.run",
    "check": "ncbackup.commands.check",
    "list": "ncbackup.commands.list_sets",
    "restore": "ncbackup.commands.restore",
    "verify": "ncbackup.commands.verify",
    "decrypt": "ncbackup.commands.decrypt",
    "keygen": "ncbackup.commands.keygen",
    "init": "ncbackup.commands.init",
}

EXIT_OK, EXIT_WARNINGS, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 3 (unusable arguments) instead of 2 (which means 'failed')."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ncbackup", description="Streaming, encrypted server backups from one JSON config.")
    parser.add_argument("--version", action="version", version=f"ncbackup {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments == ["--version"]:
        # Answered before the command modules are imported (pydantic, cryptography...): scripts and
        # package managers probe the install this way, and the imports are most of its time.
        print(f"ncbackup {__version__}")
        return EXIT_OK
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
