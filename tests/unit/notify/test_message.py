"""The one Message of a run: what it states, masked, bounded, and its HTML escaped."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ncbackup.engine.logs import add_secret
from ncbackup.engine.result import RunResult, Status, StepResult
from ncbackup.notify.message import FAILURE_LOG_LINES, LOG_TAIL_MAX_CHARS, TEXT_MAX_CHARS, build_message

START = datetime(2026, 11, 30, 3, 0, 0, tzinfo=timezone.utc)


def run(*steps: StepResult, **fields) -> RunResult:
    result = RunResult(config_path="/etc/nc/conf.json", hostname="web1", start=START,
                       end=START + timedelta(seconds=754), **fields)
    result.steps.extend(steps)
    return result


def good_step() -> StepResult:
    return StepResult(name="FILESET+STORAGE", kind="backup-set", set_id="20261130T030000Z", bytes_in=3 * 1024**3,
                      bytes_out=1024**3, destinations=["s3"])


def test_success_states_host_result_set_start_duration_and_sizes():
    message = build_message(run(good_step(), size_human="2.9 GiB"), "INFO all fine\n")
    assert message.subject == "ncbackup web1: success" and message.status == Status.OK
    for expected in ("host: web1", "result: ok (exit 0)", "set: 20261130T030000Z", "started: 2026-11-30 03:00:00 UTC",
                     "duration: 754.0 s", "data: 3.0 GiB read, 1.0 GiB stored; backup size 2.9 GiB", "destinations: s3"):
        assert expected in message.text
    assert "problems:" not in message.text and "last log lines" not in message.text
    assert message.log_tail == "INFO all fine\n" and not message.is_test


def test_failure_names_each_failed_and_warning_section_with_why_and_quotes_the_log_tail():
    failed = StepResult(name="MYSQL+STORAGE", kind="backup-set", status=Status.FAILED, error="mysqldump exited with 2\n"
                        "access denied")
    warned = StepResult(name="FILESET", kind="to-folder")
    warned.warn("/var/log/syslog changed while it was read")
    log = "".join(f"log line {n}\n" for n in range(100))
    message = build_message(run(good_step(), failed, warned, warnings=["low disk space: 15% free"]), log)
    assert message.subject == "ncbackup web1: failed (1 of 3 sections)"
    assert "  MYSQL+STORAGE failed: mysqldump exited with 2 access denied\n" in message.text
    assert "  FILESET warning: /var/log/syslog changed while it was read\n" in message.text
    assert "  warning: low disk space: 15% free\n" in message.text
    quoted = message.text.split("last log lines:\n")[1].splitlines()
    assert len(quoted) == FAILURE_LOG_LINES and quoted[-1] == "log line 99" and quoted[0] == "log line 60"


def test_a_warning_run_quotes_no_log():
    warned = good_step()
    warned.warn("slow storage")
    message = build_message(run(warned), "x\ny\n")
    assert message.subject == "ncbackup web1: warning" and "last log lines" not in message.text


def test_a_skipped_run_says_skipped():
    message = build_message(run(is_lock_held=True, warnings=["another ncbackup run holds the lock"]), "")
    assert message.subject == "ncbackup web1: skipped" and "result: skipped (exit 0)" in message.text


def test_every_text_is_masked():
    add_secret("pw-msg-30497")
    failed = StepResult(name="DB", kind="backup-set", status=Status.FAILED, error="login pw-msg-30497 refused",
                        destinations=["sftp://u:pw-msg-30497@h"])
    message = build_message(run(failed), "connecting with pw-msg-30497\n")
    for text in (message.subject, message.text, message.html, message.log_tail):
        assert "pw-msg-30497" not in text
    assert "login *** refused" in message.text and "connecting with ***" in message.log_tail


def test_text_is_bounded_whatever_the_log_and_errors():
    steps = [StepResult(name=f"S{n}", kind="execute", status=Status.FAILED, error="e" * 5000) for n in range(100)]
    message = build_message(run(*steps), ("x" * 900 + "\n") * 500)
    assert len(message.text) <= TEXT_MAX_CHARS and "result: failed (exit 2)" in message.text
    assert "... and 81 more" in message.text
    assert len(message.log_tail) <= LOG_TAIL_MAX_CHARS and message.log_tail.startswith("[... earlier log lines cut")


def test_html_escapes_what_it_quotes():
    failed = StepResult(name="<script>alert(1)</script>", kind="execute", status=Status.FAILED, error="a & b < c")
    message = build_message(run(failed), "<b>log</b>\n")
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "a &amp; b &lt; c" in message.html and "&lt;b&gt;log&lt;/b&gt;" in message.html


def test_a_test_message_says_so():
    message = build_message(run(), "", is_test=True)
    assert message.is_test and message.subject == "ncbackup web1: test message"
    assert "test message from `ncbackup notify-test`; no backup ran" in message.text and "notify-test" in message.html


def test_text_is_bounded_even_when_a_figure_is_huge():
    # The log gives way first; a figure cannot, so the text itself is cut.
    result = run(good_step())
    result.config_path = "/etc/" + "c" * 20_000
    message = build_message(result, "")
    assert len(message.text) == TEXT_MAX_CHARS and message.text.endswith("…")


def test_what_retention_pruned_is_in_the_text_and_the_html():
    step = good_step()
    step.pruned = [{"storage": "s3://acme/web1/", "removed": ["20261101T020000Z", "20261102T020000Z"],
                    "freed_bytes": 3 * 1024**3, "kept": ["20261129T020000Z"], "warnings": ["could not delete x"]}]
    message = build_message(run(step), "")
    line = "pruned s3://acme/web1/: removed 2 set(s), freed 3.0 GiB, kept 1; 1 failed delete(s)"
    assert line in message.text
    assert "pruned s3://acme/web1/: removed 2 set(s)" in message.html
