"""NOTIFY sections through the CLI: `run` delivers by ON, an outage is a warning, a skipped run reports,
`check` refuses secrets in ARGS_DICT, `notify-test` says which notifier works."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.test_run_cli import HOLDER, add_program, assert_no_traceback, run_cli, write_config
from tests.support import REPO


@pytest.fixture
def receiver():
    """An HTTP server on 127.0.0.1 recording (path, form fields) of every POST; answers 200."""
    received: list[tuple[str, dict[str, list[str]]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            received.append((self.path, urllib.parse.parse_qs(body, keep_blank_values=True)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/down"


def post_section(url: str, **parameters: str) -> dict:
    return {"ACTION": "execute", "NAME": "notify", "PARAMETERS": {"METHOD": "post", "ARGS_DICT": {"URL": url},
                                                                   **parameters}}


def hello(tmp_path) -> dict:
    add_program(tmp_path, "hello", "hello.sh", "echo hello\n")
    return {"ACTION": "execute", "NAME": "hello", "EXECUTABLE": "hello.sh", "EXECUTE_WITH": "bash"}


def test_run_delivers_to_each_notify_section_whose_on_matches(tmp_path, ncbackup_cmd, receiver):
    url, received = receiver
    path = write_config(tmp_path, {
        "ON_SUCCESS": post_section(f"{url}/success", ON="success"),
        "HELLO": hello(tmp_path),
        "ON_FAILURE": post_section(f"{url}/failure"),
    })
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path))
    assert completed.returncode == 0, completed.stderr
    ((where, fields),) = received
    assert where == "/success" and fields["srvname"] == ["web1"] and fields["status"] == ["ok"]
    # The NOTIFY sections are no steps: only HELLO ran.
    assert "HELLO" in completed.stdout and "ON_SUCCESS" not in completed.stdout


def test_an_unreachable_notifier_keeps_the_backup_and_makes_the_run_a_warning(tmp_path, ncbackup_cmd):
    path = write_config(tmp_path, {"HELLO": hello(tmp_path),
                                   "ALERTS": post_section(closed_port_url(), ON="success", RETRY_SECONDS="3")})
    started = time.monotonic()
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path), "--json")
    assert time.monotonic() - started < 60
    document = json.loads(completed.stdout)
    assert completed.returncode == 1 and document["status"] == "warning"
    assert document["steps"][0]["status"] == "ok"
    (warning,) = document["warnings"]
    assert warning.startswith("notifier ALERTS (post) could not deliver after 2 attempt(s)")
    assert_no_traceback(completed)


def test_a_skipped_run_reaches_the_notifiers_that_ask_for_skipped(tmp_path, ncbackup_cmd, receiver):
    url, received = receiver
    path = write_config(tmp_path, {"SKIPS": post_section(f"{url}/skipped", ON="skipped"),
                                   "DEFAULT": post_section(f"{url}/default")})
    (tmp_path / "work").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.replace("timedelta(days=2)", "timedelta(0)"),
                               str(tmp_path / "work" / "ncbackup.lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    try:
        assert holder.stdout.readline().strip() == "held"
        completed = run_cli(ncbackup_cmd, "run", "-c", str(path))
    finally:
        holder.kill()
        holder.wait()
    assert completed.returncode == 0
    ((where, fields),) = received
    assert where == "/skipped" and fields["status"] == ["skipped"]


def test_check_refuses_a_secret_in_args_dict_without_showing_it(tmp_path, ncbackup_cmd):
    section = post_section("http://127.0.0.1:9/r")
    section["PARAMETERS"]["ARGS_DICT"]["API_TOKEN"] = "tok-e2e-66120"
    path = write_config(tmp_path, {"ALERTS": section})
    for command in ("check", "run"):
        completed = run_cli(ncbackup_cmd, command, "-c", str(path))
        assert completed.returncode == 3
        assert "ALERTS: API_TOKEN in ARGS_DICT holds a secret" in completed.stderr
        assert "put it in CREDENTIALS_FILE" in completed.stderr
        assert "tok-e2e-66120" not in completed.stdout + completed.stderr
        assert_no_traceback(completed)


def test_check_lists_the_notifiers_without_contacting_them(tmp_path, ncbackup_cmd):
    path = write_config(tmp_path, {"ALERTS": post_section(closed_port_url(), ON="failure skipped")})
    (tmp_path / "work").mkdir()
    (tmp_path / "home").mkdir()
    completed = run_cli(ncbackup_cmd, "check", "-c", str(path))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ok   notifier ALERTS: METHOD post, sent on failure skipped (not contacted by check" in completed.stdout


def test_notify_test_says_which_notifier_worked(tmp_path, ncbackup_cmd, receiver):
    url, received = receiver
    path = write_config(tmp_path, {
        "WORKS": post_section(f"{url}/works", ON="failure"),
        "DOWN": post_section(closed_port_url(), RETRY_SECONDS="1"),  # shorter than the first wait: 1 attempt
    })
    completed = run_cli(ncbackup_cmd, "notify-test", "-c", str(path))
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    assert lines[0] == "WORKS (post): ok"
    assert lines[1].startswith("DOWN (post): FAILED: notifier DOWN (post) could not deliver after 1 attempt(s)")
    # ON is ignored: the test reached WORKS although the "run" is no failure.
    ((where, fields),) = received
    assert where == "/works" and fields["srvname"] == ["web1"]
    only = run_cli(ncbackup_cmd, "notify-test", "-c", str(path), "--section", "WORKS")
    assert only.returncode == 0 and only.stdout == "WORKS (post): ok\n"
    missing = run_cli(ncbackup_cmd, "notify-test", "-c", str(path), "--section", "NOPE")
    assert missing.returncode == 3 and "no notifier named NOPE" in missing.stderr
    assert_no_traceback(completed)
