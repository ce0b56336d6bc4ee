"""The legacy POST report against a real HTTP server on 127.0.0.1: exact fields, bounded log, retries."""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ncbackup.engine.logs import MaskingFormatter, add_secret, mask_secrets
from ncbackup.engine.result import RunResult, Status, StepResult
from ncbackup.errors import BackupError
from ncbackup.notify.message import build_message
from ncbackup.notify.post_report import LOG_FIELD_MAX_CHARS, PostReport
from ncbackup.notify.registry import Delivery, deliver, notify_all


@pytest.fixture
def report_server():
    received: list[dict[str, list[str]]] = []
    answers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True))
            self.send_response(answers.pop(0) if answers else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/report", received, answers
    finally:
        server.shutdown()
        server.server_close()


def result(status: Status = Status.OK) -> RunResult:
    run = RunResult(config_path="/etc/c.json", hostname="srv-web1")
    step = StepResult(name="FILESET+STORAGE", kind="backup-set", status=status, destinations=["s3"])
    if status == Status.FAILED:
        step.error = "mysqldump exited with status 2"
    run.steps.append(step)
    run.size_human = "1.5 GiB"
    return run


def test_report_posts_the_original_fields_plus_status(report_server):
    url, received, _answers = report_server
    PostReport(url).send(build_message(result(), "line one\nline two"))
    (fields,) = received
    # Old servers parse the original seven; "status" is the one extra key they ignore.
    assert set(fields) == {"srvname", "result", "bckmethod", "size", "log", "error", "destination", "status"}
    assert fields["status"] == ["ok"]
    assert fields["srvname"] == ["srv-web1"] and fields["result"] == ["0"]
    assert fields["bckmethod"] == ["ncscript-py"] and fields["size"] == ["1.5 GiB"]
    assert fields["log"] == ["line one\nline two"] and fields["destination"] == ["s3"] and fields["error"] == [""]


def test_failed_run_reports_result_1_with_the_error(report_server):
    url, received, _answers = report_server
    PostReport(url).send(build_message(result(Status.FAILED), ""))
    assert received[0]["result"] == ["1"]
    assert "mysqldump exited with status 2" in received[0]["error"][0]


def test_a_run_skipped_by_the_lock_is_no_failure_for_old_servers_and_says_skipped(report_server):
    url, received, _answers = report_server
    skipped = RunResult(config_path="/etc/c.json", hostname="srv-web1", is_lock_held=True)
    skipped.warnings.append("another ncbackup run holds the lock /var/tmp/ncbackup/ncbackup.lock (pid 42)")
    PostReport(url).send(build_message(skipped, "another ncbackup run holds the lock"))
    (fields,) = received
    assert fields["result"] == ["0"] and fields["status"] == ["skipped"] and fields["error"] == [""]


def test_log_is_bounded_and_keeps_the_tail(report_server):
    url, received, _answers = report_server
    log = "".join(f"line {n}\n" for n in range(50_000))
    PostReport(url).send(build_message(result(), log))
    sent = received[0]["log"][0]
    assert len(sent) <= LOG_FIELD_MAX_CHARS and sent.endswith("line 49999\n")


def fast(notifier: PostReport, *, attempts: int = 5) -> Delivery:
    """The framework's delivery of the legacy post, with waits of 0.01 s, 0.02 s, ... instead of 2 s, 4 s, ..."""
    return Delivery(notifier, "post", attempts=attempts, first_wait_seconds=0.01)


def test_report_is_retried_until_the_server_answers_200(report_server):
    url, received, answers = report_server
    answers.extend([500, 503])
    assert deliver(fast(PostReport(url)), build_message(result(), "x")) is None
    assert len(received) == 3


def test_one_send_is_one_attempt_and_says_what_the_server_answered(report_server):
    url, received, answers = report_server
    answers.append(500)
    with pytest.raises(BackupError, match="answered 500"):
        PostReport(url).send(build_message(result(), "x"))
    assert len(received) == 1


def test_the_legacy_post_keeps_its_5_attempts_with_growing_waits_by_default(report_server):
    url, received, answers = report_server
    answers.extend([500] * 10)
    waits: list[float] = []
    delivery = Delivery(PostReport(url), "post")
    failure = deliver(delivery, build_message(result(), "x"), sleep=waits.append)
    assert len(received) == 5 and waits == [2.0, 4.0, 8.0, 16.0]
    assert failure is not None and "after 5 attempt(s)" in failure and "answered 500" in failure


def test_report_gives_up_after_5_attempts_and_notify_all_makes_it_a_warning(report_server):
    url, received, answers = report_server
    answers.extend([500] * 10)
    run = result()
    failures = notify_all([fast(PostReport(url))], build_message(run, "x"))  # returned, not raised
    assert len(received) == 5 and len(failures) == 1 and "after 5 attempt(s)" in failures[0]
    assert run.warnings == failures and run.status == Status.WARNING and run.exit_status == 1


def test_unreachable_report_server_never_raises_from_notify_all():
    notifier = PostReport("http://127.0.0.1:9/nothing", timeout_seconds=2)
    failures = notify_all([fast(notifier, attempts=2)], build_message(result(), "x"))
    assert len(failures) == 1 and "after 2 attempt(s)" in failures[0] and "ConnectionError" in failures[0]


def test_size_falls_back_to_the_bytes_stored_without_a_size_section(report_server):
    url, received, _answers = report_server
    run = result()
    run.size_human = None
    run.steps[0].bytes_out = 3 * 1024 * 1024
    PostReport(url).send(build_message(run, ""))
    assert received[0]["size"] == ["3.0 MiB"]


def test_a_step_warning_run_reports_result_0(report_server):
    # The original's result is binary: "0" the backup is there, "1" it is not. Warnings keep the backup.
    url, received, _answers = report_server
    run = result()
    run.steps[0].warn("files: /var/log/syslog changed while it was read")
    assert run.exit_status == 1
    PostReport(url).send(build_message(run, "WARNING files: /var/log/syslog changed while it was read"))
    assert received[0]["result"] == ["0"] and received[0]["error"] == [""]
    assert "changed while it was read" in received[0]["log"][0]


def test_a_warning_only_run_posts_result_0_with_the_warning_in_its_log(report_server, tmp_path, monkeypatch, capsys):
    # A whole `ncbackup run` whose only problem is low disk space (15% free, threshold 20%): exit 1, report "0".
    import json

    from ncbackup import platform
    from ncbackup.cli import main

    url, received, _answers = report_server
    monkeypatch.setattr(platform, "disk_usage", lambda path: platform.DiskUsage(total_bytes=100, free_bytes=15))
    (tmp_path / "home" / "hello").mkdir(parents=True)
    (tmp_path / "home" / "hello" / "hello.sh").write_text("echo hello\n")
    (tmp_path / "log").mkdir()
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "srv-web1", "WORK_FOLDER": str(tmp_path / "work"), "HOME_FOLDER": str(tmp_path / "home"),
                    "LOG_FOLDER": str(tmp_path / "log") + "/", "MESSAGE_CONFIG_COMMAND": url},
        "HELLO": {"ACTION": "execute", "NAME": "hello", "EXECUTABLE": "hello.sh", "EXECUTE_WITH": "bash"},
    }))
    assert main(["run", "-c", str(path)]) == 1
    assert "result: warning (exit 1)" in capsys.readouterr().out
    (fields,) = received
    assert fields["srvname"] == ["srv-web1"] and fields["result"] == ["0"] and fields["bckmethod"] == ["ncscript-py"]
    assert fields["error"] == [""] and fields["size"] == ["N/A"] and fields["destination"] == ["N/A"]
    assert "low disk space: 15.0% free" in fields["log"][0] and "result: warning (exit 1)" in fields["log"][0]


def test_an_unusable_run_reports_result_1(report_server):
    url, received, _answers = report_server
    run = RunResult(config_path="/etc/c.json", hostname="srv-web1", error="WORK_FOLDER /x is not a writable folder",
                    is_unusable=True)
    PostReport(url).send(build_message(run, ""))
    assert received[0]["result"] == ["1"] and "WORK_FOLDER" in received[0]["error"][0]


def test_a_token_in_the_report_url_is_masked_in_the_retry_log_and_the_final_error(report_server, caplog):
    url, received, answers = report_server
    answers.extend([500] * 10)
    notifier = PostReport(f"{url}?token=tok-8d7c6b5a")
    caplog.set_level(logging.WARNING)
    with pytest.raises(BackupError) as failure:
        notifier.send(build_message(result(), "x"))
    assert "tok-8d7c6b5a" not in mask_secrets(str(failure.value))
    run = result()
    (warning,) = notify_all([fast(notifier, attempts=2)], build_message(run, "x"))
    lines = [MaskingFormatter("%(message)s").format(record) for record in caplog.records]
    assert lines and all("tok-8d7c6b5a" not in line and "token=***" in line for line in lines)
    assert "tok-8d7c6b5a" not in warning and "token=***" in warning and run.warnings == [warning]


def test_every_report_field_is_masked(report_server):
    url, received, _answers = report_server
    add_secret("pw-4471-secret")
    run = result(Status.FAILED)
    run.steps[0].error = "mysqldump: access denied with pw-4471-secret"
    run.steps[0].destinations = ["s3://user:pw-4471-secret@host"]
    PostReport(url).send(build_message(run, "connecting with pw-4471-secret\n"))
    (fields,) = received
    sent = json.dumps(fields)
    assert "pw-4471-secret" not in sent
    assert "***" in fields["log"][0] and "***" in fields["error"][0] and "***" in fields["destination"][0]
