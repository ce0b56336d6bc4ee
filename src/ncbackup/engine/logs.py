"""Run logging: the LOG_FOLDER file (rotated, bounded number of old logs), stderr at the -l level,
and a bounded in-memory tail of this run's lines for the report. Known secrets are masked in all three.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ncbackup.errors import ConfigError

LOGGER_NAME = "ncbackup"
LOG_FILE_MAX_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5                      # ncbackup.log.1 .. ncbackup.log.5, older ones are deleted
REPORT_TAIL_BYTES = 64 * 1024             # the report's "log" field keeps the last 64 KiB of the run
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(message)s"

_secrets: set[str] = set()


def add_secret(value: str) -> None:
    """Mask value (a password, a passphrase) in every log line from now on."""
    if value and len(value) >= 4:  # masking two-letter strings would garble every line
        _secrets.add(value)


def mask_secrets(text: str) -> str:
    """Replace every registered secret in text with ***."""
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


class _MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = mask_secrets(record.getMessage())
            record.args = None
        return True


class TailBuffer(logging.Handler):
    """Keeps the last REPORT_TAIL_BYTES of formatted lines of this run, for the report."""

    def __init__(self, limit_bytes: int = REPORT_TAIL_BYTES) -> None:
        super().__init__(level=logging.INFO)
        self.limit_bytes = limit_bytes
        self.lines: deque[str] = deque()
        self.size_bytes = 0
        self.dropped_lines = 0
        self.setFormatter(logging.Formatter(FILE_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        self.lines.append(line)
        self.size_bytes += len(line) + 1
        while self.size_bytes > self.limit_bytes and len(self.lines) > 1:
            self.size_bytes -= len(self.lines.popleft()) + 1
            self.dropped_lines += 1

    def text(self) -> str:
        head = f"[{self.dropped_lines} earlier lines omitted]\n" if self.dropped_lines else ""
        return head + "\n".join(self.lines)


@contextmanager
def run_logging(log_file: Path | None, level: str, *, config_file: Path | None = None) -> Iterator[TailBuffer]:
    """Send ncbackup's log to log_file (rotated) and stderr for the block; yield the tail for the report."""
    logger = logging.getLogger(LOGGER_NAME)
    console_level = getattr(logging, level.upper(), logging.WARNING)
    file_level = min(console_level, logging.INFO)
    handlers: list[logging.Handler] = []
    masking = _MaskingFilter()
    if log_file is not None:
        try:
            file_handler: logging.Handler = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=LOG_FILE_MAX_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8",
            )
        except OSError as error:
            raise ConfigError(
                f"cannot write the log file {log_file} ({error.strerror}); create its folder or fix its permissions",
                file=config_file, key="LOG_FOLDER",
            ) from None
        file_handler.setLevel(file_level)
        file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
        handlers.append(file_handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level)
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    handlers.append(console)
    tail = TailBuffer()
    handlers.append(tail)
    for handler in handlers:
        handler.addFilter(masking)
        logger.addHandler(handler)
    previous_level, previous_propagate = logger.level, logger.propagate
    logger.setLevel(min(file_level, console_level))
    # Our handlers already print; the root logger's (set up by setup_console_logging) would double lines.
    logger.propagate = False
    try:
        yield tail
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(previous_level)
        logger.propagate = previous_propagate
