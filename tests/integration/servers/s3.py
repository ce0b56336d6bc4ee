"""A real S3 server for tests: moto's ThreadedMotoServer on 127.0.0.1, plus a fault-injecting proxy.

The proxy sits between the unmodified boto3 client and moto and can answer 500/503 to the first
requests, flip a byte of a request body, or stop dead in the middle of an upload.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support import need

try:
    from moto.server import ThreadedMotoServer
except ImportError:  # pragma: no cover - reported by need() below
    ThreadedMotoServer = None

ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"   # moto's well-known fake pair
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@dataclass
class MotoServer:
    endpoint_url: str
    port: int

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def reset(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("POST", "/moto-api/reset")
        connection.getresponse().read()
        connection.close()

    def require_auth(self, is_on: bool) -> None:
        """Make moto check access keys against its IAM (on) or accept anything (off)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("POST", "/moto-api/reset-auth", body=b"0" if is_on else b"inf")
        connection.getresponse().read()
        connection.close()


_shared: MotoServer | None = None


def shared_moto() -> MotoServer:
    """One moto server per test process, started on first use (for factories that cannot take fixtures)."""
    global _shared
    if _shared is None:
        need(ThreadedMotoServer is not None, "moto[server] is not installed")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        _shared = MotoServer(endpoint_url=f"http://{host}:{port}", port=port)
    return _shared


def write_credentials_file(path) -> None:
    """An AWS credentials file with moto's fake pair under profile [ncbackup-test]."""
    path.write_text(
        f"[ncbackup-test]\naws_access_key_id = {ACCESS_KEY_ID}\naws_secret_access_key = {SECRET_ACCESS_KEY}\n"
    )


@contextmanager
def moto_in_a_child_process() -> Iterator[MotoServer]:
    """A moto server in its own process: what it keeps in memory (moto stores objects in RAM) does not
    grow the test process; for tests that upload hundreds of MiB."""
    need(ThreadedMotoServer is not None, "moto[server] is not installed")
    script = (
        "import sys\n"
        "from moto.server import ThreadedMotoServer\n"
        "server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)\n"
        "server.start()\n"
        "print(server.get_host_and_port()[1], flush=True)\n"
        "sys.stdin.read()  # until the test closes our stdin\n"
        "server.stop()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"the moto child process did not start (said {line!r})")
        port = int(line)
        yield MotoServer(endpoint_url=f"http://127.0.0.1:{port}", port=port)
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()


@pytest.fixture(scope="session")
def moto_server():
    """One moto S3 server for the session on a free loopback port."""
    need(ThreadedMotoServer is not None, "moto[server] is not installed")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(endpoint_url=f"http://{host}:{port}", port=port)
    finally:
        server.stop()


@pytest.fixture
def s3_env(moto_server, monkeypatch, tmp_path):
    """Fake credentials in the environment (the AWS chain), no user config files; a clean moto."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    moto_server.reset()
    yield moto_server
    moto_server.require_auth(False)
    moto_server.reset()


@dataclass
class Faults:
    """What the proxy does to the requests it forwards; counters say what happened."""

    fail_first: int = 0                 # answer this many matching requests with fail_status
    fail_status: int = 503
    fail_method: str | None = "PUT"     # None: any method
    corrupt_first: int = 0              # flip one byte in the body of this many PUT requests
    die_after_puts: int | None = None   # after forwarding this many PUTs, cut the next one and stop
    requests_seen: int = 0
    failures_sent: int = 0
    puts_forwarded: int = 0
    put_headers: list[dict[str, str]] = field(default_factory=list)   # headers of every PUT seen
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (method, path?query, headers) seen
    lock: threading.Lock = field(default_factory=threading.Lock)


class FaultProxy:
    """An HTTP reverse proxy on 127.0.0.1 in front of moto that injects Faults."""

    def __init__(self, upstream_port: int, faults: Faults) -> None:
        self.faults = faults
        self.upstream_port = upstream_port
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self._read_body(length)
                if body is None:
                    return
                with faults.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    faults.requests.append((self.command, self.path, headers))
                    if self.command == "PUT":
                        faults.put_headers.append(headers)
                decision = proxy._decide(self.command)
                if decision == "fail":
                    status = faults.fail_status
                    code = "SlowDown" if status == 503 else "InternalError"
                    payload = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                               f"<Message>injected</Message></Error>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if decision == "die":
                    # Read only part of the body would be equivalent: the connection drops mid-request.
                    proxy.stop_listening()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if decision == "corrupt" and body:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                self._forward(body)

            def _read_body(self, length: int) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(length) if length else b""

            def _forward(self, body: bytes) -> None:
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"transfer-encoding", "content-length"}}
                headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in {"transfer-encoding", "content-length", "connection", "server", "date"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815 - http.server's names

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._stopped = False

    def _decide(self, method: str) -> str:
        faults = self.faults
        with faults.lock:
            faults.requests_seen += 1
            if faults.failures_sent < faults.fail_first and (faults.fail_method in (None, method)):
                faults.failures_sent += 1
                return "fail"
            if method == "PUT":
                if faults.die_after_puts is not None and faults.puts_forwarded >= faults.die_after_puts:
                    return "die"
                faults.puts_forwarded += 1
                if faults.corrupt_first > 0:
                    faults.corrupt_first -= 1
                    return "corrupt"
            return "forward"

    def stop_listening(self) -> None:
        """Close the listening socket: later connections are refused, as with a dead server."""
        if not self._stopped:
            self._stopped = True
            threading.Thread(target=self._server.shutdown, daemon=True).start()
            self._server.socket.close()

    def close(self) -> None:
        self.stop_listening()


@pytest.fixture
def fault_proxy(s3_env):
    """Factory: fault_proxy(Faults(...)) -> a FaultProxy in front of the test's moto."""
    proxies: list[FaultProxy] = []

    def make(faults: Faults) -> FaultProxy:
        proxy = FaultProxy(s3_env.port, faults)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()
