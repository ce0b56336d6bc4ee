"""The ``ncbackup`` command line: one argparse parser, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys

from ncbackup import __version__
from ncbackup.exitcodes import EXIT_OK, EXIT_STATUS_HELP, EXIT_UNUSABLE

# Subcommand name -> module under ncbackup.commands. Adding a command is one line here.
COMMANDS: dict[str, str] = {
    "run": "ncbackup.commands.run",
    "check": "ncbackup.commands.check",
    "list": "ncbackup.commands.list_sets",
    "status": "ncbackup.commands.status",
    "restore": "ncbackup.commands.restore",
    "verify": "ncbackup.commands.verify",
    "prune": "ncbackup.commands.prune",
    "decrypt": "ncbackup.commands.decrypt",
    "keygen": "ncbackup.commands.keygen",
    "init": "ncbackup.commands.init",
    "notify-test": "ncbackup.commands.notify_test",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 3 (unusable arguments) instead of 2 (which means 'failed'), every help
    ends with the exit statuses, and required options are listed under their own heading."""

    def __init__(self, *args, **kwargs) -> None:
        epilog = kwargs.get("epilog")
        kwargs["epilog"] = f"{epilog}\n\n{EXIT_STATUS_HELP}" if epilog else EXIT_STATUS_HELP
        super().__init__(*args, **kwargs)
        self._required_options: argparse._ArgumentGroup | None = None

    def add_argument(self, *args, **kwargs):
        # argparse lists a required option among the optional ones, told apart only by its missing [ ] in usage.
        if not kwargs.get("required") or not args or not args[0].startswith("-"):
            return super().add_argument(*args, **kwargs)
        if self._required_options is None:
            self._required_options = self.add_argument_group("required arguments")
            # Shown right after the positional arguments, before the optional ones.
            self._action_groups.remove(self._required_options)
            self._action_groups.insert(1, self._required_options)
        return self._required_options.add_argument(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command named only (so only its module is imported)."""
    parser = _Parser(prog="ncbackup", description="Streaming, encrypted server backups from one JSON config.")
    parser.add_argument("--version", action="version", version=f"ncbackup {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for command, module_name in COMMANDS.items():
        if only is None or command == only:
            module = importlib.import_module(module_name)
            module.add_parser(subparsers)
    return parser


def _command_of(arguments: list[str]) -> str | None:
    """The subcommand the arguments name, when it comes first (options of the top level parser come before it)."""
    for argument in arguments:
        if not argument.startswith("-"):
            return argument if argument in COMMANDS else None
        if argument in ("-h", "--help"):
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments == ["--version"]:
        # Answered before the command modules are imported (pydantic, cryptography...): scripts and
        # package managers probe the install this way, and the imports are most of its time.
        print(f"ncbackup {__version__}")
        return EXIT_OK
    # Import only the named command's module: a restore must not pay for every other command's imports
    # (pydantic models, HTTP clients); the top-level help and a wrong command still see them all.
    parser = build_parser(_command_of(arguments))
    args = parser.parse_args(arguments)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
