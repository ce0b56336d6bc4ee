"""A local HTTP receiver for the webhook notifiers, and the messages they are sent.

The receiver (http.server in a thread on 127.0.0.1) records each request (method, path, query,
headers, body) and answers what the test's ``respond`` says: a provider fake checks the request the
way the provider documents it (its signature, its fields) and answers like the provider.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ncbackup.engine.result import RunResult, Status, StepResult
from ncbackup.notify.base import Message


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]          # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, str] | tuple[int, str, dict[str, str]]   # status, body[, extra headers]


@dataclass
class Receiver:
    base_url: str
    requests: list[Request] = field(default_factory=list)
    respond: Callable[[Request], Answer] = lambda request: (200, "ok")

    @property
    def only(self) -> Request:
        (request,) = self.requests
        return request


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urllib.parse.urlsplit(self.path)
            request = Request(method=self.command, path=parts.path,
                              query=urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                              headers={name.lower(): value for name, value in self.headers.items()},
                              body=self.rfile.read(length))
            receiver.requests.append(request)
            status, text, *extra = receiver.respond(request)
            data = text.encode()
            try:
                self.send_response(status)
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass    # the client gave up (the timeout tests): nothing left to answer

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def sample_message(status: Status = Status.FAILED, *, text: str | None = None, is_test: bool = False) -> Message:
    """A run of two steps on srv-web1; failed: the database step failed with a one-line error."""
    start = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)
    run = RunResult(config_path="/etc/ncbackup/web1.json", hostname="srv-web1", start=start,
                    end=start + timedelta(seconds=754))
    run.steps.append(StepResult(name="FILESET+STORAGE", kind="backup-set", set_id="20261130T030000Z-web1",
                                bytes_in=5_000_000, bytes_out=1_200_000, duration_seconds=600.0,
                                destinations=["s3"]))
    database = StepResult(name="MYSQL+STORAGE", kind="backup-set", set_id="20261130T030000Z-web1",
                          bytes_in=300, bytes_out=100, duration_seconds=154.0)
    if status == Status.FAILED:
        database.fail("mysqldump exited with status 2: Access denied for user 'backup'")
    elif status == Status.WARNING:
        database.warn("table cache.sessions changed while it was read")
    run.steps.append(database)
    run.is_lock_held = status == Status.SKIPPED
    subject = f"ncbackup srv-web1: {status.value}"
    body = text if text is not None else (
        f"host srv-web1, result {status.value}, set 20261130T030000Z-web1, 12 min 34 s, 4.8 MiB in, 1.1 MiB out\n"
        "MYSQL+STORAGE: mysqldump exited with status 2 <Access & denied>\n"
        "last log lines:\n  dump started\n  dump died")
    return Message(result=run, status=status, subject=subject, text=body, html=f"<p>{subject}</p>",
                   log_tail="dump started\ndump died", is_test=is_test)
