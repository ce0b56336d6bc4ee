"""What every subcommand shares: turning errors into one sentence and an exit status."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

from ncbackup import process
from ncbackup.engine.logs import MaskingFormatter, mask_secrets
from ncbackup.errors import BackupError, ConfigError
from ncbackup.exitcodes import EXIT_FAILED, EXIT_UNUSABLE


def one_line(text: str) -> str:
    """Text with every character that could break or hide a line (CR, LF, NUL, U+2028, ...) written as an escape."""
    return "".join(
        char.encode("unicode_escape").decode("ascii") if not char.isprintable() and char not in " \t" else char
        for char in text
    )


def say_error(message: str) -> None:
    """Print the one sentence of an error, secrets masked; a newline inside a config key or value cannot split it."""
    print(f"ncbackup: error: {one_line(mask_secrets(message))}", file=sys.stderr)


def guarded(handler: Callable[..., int]) -> Callable[..., int]:
    """Run a subcommand; a BackupError becomes one sentence on stderr and an exit status, never a traceback."""

    @functools.wraps(handler)
    def wrapper(args) -> int:
        try:
            return handler(args)
        except ConfigError as error:
            say_error(str(error))
            return EXIT_UNUSABLE
        except BackupError as error:
            say_error(str(error))
            return EXIT_FAILED
        except KeyboardInterrupt:
            # Programs run in their own process groups: the terminal's Ctrl-C never reached them.
            process.kill_all_running()
            say_error("interrupted; nothing was marked complete")
            return EXIT_FAILED

    return wrapper


LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def add_logging_argument(parser) -> None:
    # metavar: without it argparse repeats the choices after each of the three spellings.
    parser.add_argument(
        "-l", "--logging_level", "--log-level", dest="logging_level", default="WARNING",
        type=str.upper, choices=LOG_LEVELS, metavar="LEVEL",
        help=f"log level on stderr: {', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}, in any case (default WARNING)",
    )


def setup_console_logging(level: str) -> None:
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(MaskingFormatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=getattr(logging, level), handlers=[console])
