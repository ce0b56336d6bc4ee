"""Run logging: the LOG_FOLDER file (rotated, bounded number of old logs, created 0600; its folder created
0700 when missing), stderr at the -l level, and a bounded in-memory tail of this run's lines for the
report; plus the one registry of secret values that every line, the report and the ``--json`` output
are masked with.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import sys
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast
from urllib.parse import quote

from ncbackup import platform
from ncbackup.errors import ConfigError

LOGGER_NAME = "ncbackup"
LOG_FILE_MAX_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5                      # ncbackup.log.1 .. ncbackup.log.5, older ones are deleted
REPORT_TAIL_BYTES = 64 * 1024             # the report's "log" field keeps the last 64 KiB of the run
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(message)s"
MASK = "***"
SHORT_SECRET_CHARS = 4                    # shorter secrets are still masked, with a warning

_lock = threading.Lock()
_secrets: set[str] = set()
_masking_order: tuple[str, ...] = ()      # longest first: a secret inside another never leaves a piece
_short_secret_sources: list[str] = []
_unannounced_short_sources: list[str] = []
_is_run_logging = False


def add_secret(value: str, *, where: str = "a secret") -> None:
    """Mask value (a password, a token, a credential) in every log line, report and JSON output from now on.

    Any length is masked; one shorter than SHORT_SECRET_CHARS also masks every unrelated occurrence
    of those characters, so it is announced (``where`` names it) as a warning to use a longer one.
    """
    global _masking_order
    if not value or not value.strip():
        return
    forms = {value, quote(value, safe="")}   # as written, and as it stands inside a URL
    with _lock:
        if forms <= _secrets:
            return
        _secrets.update(forms)
        _masking_order = tuple(sorted(_secrets, key=len, reverse=True))
        if len(value) < SHORT_SECRET_CHARS and where not in _short_secret_sources:
            _short_secret_sources.append(where)
            _unannounced_short_sources.append(where)
    if _is_run_logging:
        _announce_short_secrets()


def short_secret_sources() -> list[str]:
    """Where each registered secret shorter than SHORT_SECRET_CHARS came from, for warnings."""
    return list(_short_secret_sources)


def _announce_short_secrets() -> None:
    with _lock:
        sources, _unannounced_short_sources[:] = list(_unannounced_short_sources), []
    for where in sources:
        logging.getLogger(f"{LOGGER_NAME}.secrets").warning(
            "%s is shorter than %d characters: it is masked as %s wherever those characters appear, which "
            "garbles unrelated log text; use a longer one", where, SHORT_SECRET_CHARS, MASK,
        )


def mask_secrets(text: str) -> str:
    """Replace every registered secret in text with ***."""
    for secret in _masking_order:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def clear_secrets() -> None:
    """Forget every registered secret (for tests: the registry lives as long as the process)."""
    global _masking_order
    with _lock:
        _secrets.clear()
        _masking_order = ()
        _short_secret_sources.clear()
        _unannounced_short_sources.clear()


class MaskingFormatter(logging.Formatter):
    """Formats a record, exception text included, then masks every registered secret in the result."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose file, and each new one after a rollover, is created 0600."""

    def _open(self) -> io.TextIOWrapper:  # opened 0600 (the base class opens by mode)
        stream = platform.open_private_for_append(Path(self.baseFilename), encoding=self.encoding, errors=self.errors)
        return cast(io.TextIOWrapper, stream)


class TailBuffer(logging.Handler):
    """Keeps the last REPORT_TAIL_BYTES of formatted lines of this run, for the report."""

    def __init__(self, limit_bytes: int = REPORT_TAIL_BYTES) -> None:
        super().__init__(level=logging.INFO)
        self.limit_bytes = limit_bytes
        self.lines: deque[str] = deque()
        self.size_bytes = 0
        self.dropped_lines = 0
        self.setFormatter(MaskingFormatter(FILE_FORMAT))

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
    global _is_run_logging
    logger = logging.getLogger(LOGGER_NAME)
    console_level = getattr(logging, level.upper(), logging.WARNING)
    file_level = min(console_level, logging.INFO)
    handlers: list[logging.Handler] = []
    created_folder: Path | None = None
    if log_file is not None:
        try:
            if not Path(log_file).parent.is_dir():
                # The original made operators create it by hand; only the last folder is made (load checked its parent).
                created_folder = Path(log_file).parent
                platform.create_private_folder(created_folder)
            file_handler: logging.Handler = PrivateRotatingFileHandler(
                log_file, maxBytes=LOG_FILE_MAX_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8",
            )
            # Old logs written before logs were private (or by another tool) are tightened too.
            for number in range(1, LOG_FILE_BACKUPS + 1):
                platform.make_private(Path(f"{log_file}.{number}"))
        except OSError as error:
            raise ConfigError(
                f"cannot write the log file {log_file} ({error.strerror}); create its folder or fix its permissions",
                file=config_file, key="LOG_FOLDER",
            ) from None
        file_handler.setLevel(file_level)
        file_handler.setFormatter(MaskingFormatter(FILE_FORMAT))
        handlers.append(file_handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level)
    console.setFormatter(MaskingFormatter(CONSOLE_FORMAT))
    handlers.append(console)
    tail = TailBuffer()
    handlers.append(tail)
    for handler in handlers:
        logger.addHandler(handler)
    previous_level, previous_propagate = logger.level, logger.propagate
    logger.setLevel(min(file_level, console_level))
    # Our handlers already print; the root logger's (set up by setup_console_logging) would double lines.
    logger.propagate = False
    _is_run_logging = True
    if created_folder is not None:
        logger.info("created the log folder %s (LOG_FOLDER), readable by its owner only", created_folder)
    _announce_short_secrets()
    try:
        yield tail
    finally:
        _is_run_logging = False
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(previous_level)
        logger.propagate = previous_propagate
