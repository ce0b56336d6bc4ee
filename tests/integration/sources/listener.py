"""A socket that only records who connects: proof that a hostile name or manifest never steers a client to it."""

from __future__ import annotations

import socket
import threading
from pathlib import Path


class RecordingListener:
    """Listen on 127.0.0.1 (or a Unix socket path), accept and close every connection, remember each one."""

    def __init__(self, unix_path: Path | None = None) -> None:
        self.unix_path = unix_path
        family = socket.AF_UNIX if unix_path is not None else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.bind(str(unix_path) if unix_path is not None else ("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self.port: int = 0 if unix_path is not None else self._socket.getsockname()[1]
        self.connections: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="recording-listener", daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                peer, address = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(repr(address))
            peer.close()

    def __enter__(self) -> RecordingListener:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()
        if self.unix_path is not None:
            self.unix_path.unlink(missing_ok=True)
