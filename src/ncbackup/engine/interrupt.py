"""SIGTERM and SIGINT during a run: raise one clean stop into the run so that its exit stack unwinds.

systemd stops a service with SIGTERM, a user with Ctrl-C. Either one raises ``Interrupted`` (a
KeyboardInterrupt, so every place that already cleans up after Ctrl-C does the same) in the main thread,
once: a second signal, or one that arrives while the run releases what it took (``shielded``), is only
logged, so that a snapshot's release is never cut short.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ncbackup import platform

log = logging.getLogger(__name__)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived during the run."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


@dataclass
class _State:
    received: str | None = None     # the first stop signal's name
    shield_depth: int = 0


_state = _State()


def received_signal() -> str | None:
    """The name of the stop signal this run got, if any."""
    return _state.received


def _handle(number: int, _frame: object) -> None:
    name = platform.signal_name(number)
    if _state.received is not None or _state.shield_depth:
        _state.received = _state.received or name
        log.warning("%s received: the run is already stopping and releases what it took first", name)
        return
    _state.received = name
    raise Interrupted(name)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While the block runs (in the main thread): SIGTERM and SIGINT raise Interrupted, once; the old handlers after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.received, _state.shield_depth = None, 0
    previous = {number: platform.install_signal_handler(number, _handle) for number in platform.stop_signals()}
    try:
        yield
    finally:
        for number, handler in previous.items():
            platform.restore_signal_handler(number, handler)


@contextmanager
def shielded() -> Iterator[None]:
    """While the block runs, a stop signal is noted, not raised (releasing a snapshot must finish)."""
    _state.shield_depth += 1
    try:
        yield
    finally:
        _state.shield_depth -= 1
