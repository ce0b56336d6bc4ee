"""What every subcommand shares: turning errors into one sentence and an exit status."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

from ncbackup import process
from ncbackup.errors import BackupError, ConfigError

EXIT_OK, EXIT_WARNINGS, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2, 3


def say_error(message: str) -> None:
    print(f"ncbackup: error: {message}", file=sys.stderr)


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


def add_logging_argument(parser) -> None:
    parser.add_argument(
        "-l", "--logging_level", "--log-level", dest="logging_level", default="WARNING",
        type=str.upper, choices=["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"],
        help="log level on stderr (default WARNING; any case)",
    )


def setup_console_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level), format="%(levelname)s %(message)s", stream=sys.stderr)
