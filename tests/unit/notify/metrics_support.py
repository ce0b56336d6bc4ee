"""Runs and Messages for the monitoring methods' tests (prometheus, zabbix, sms)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ncbackup.engine.result import RunResult, Status, StepResult
from ncbackup.notify.base import Message

START = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)


def run_result(status: Status, *, start: datetime = START, hostname: str = "srv-web1") -> RunResult:
    """A run of two sections, the second failed when status is FAILED (or warned when WARNING)."""
    run = RunResult(config_path="/etc/ncbackup/c.json", hostname=hostname, start=start,
                    end=start + timedelta(seconds=125))
    run.steps.append(StepResult(name="FILESET+STORAGE", kind="backup-set", duration_seconds=100.0,
                                bytes_in=4096, bytes_out=1024, destinations=["s3", "local"], set_id="20261130-0300",
                                part_count=3))
    database = StepResult(name="MYSQL+STORAGE", kind="backup-set", duration_seconds=20.5, bytes_in=2048,
                          bytes_out=512, destinations=["s3"], part_count=1)
    if status == Status.FAILED:
        database.fail("mysqldump exited with status 2")
    elif status == Status.WARNING:
        database.warn("table t1 changed while it was read")
    run.steps.append(database)
    return run


def message(result: RunResult, *, is_test: bool = False) -> Message:
    status = result.status
    subject = f"ncbackup {result.hostname}: {status.value}"
    return Message(result=result, status=status, subject=subject, text=result.summary(), html="<p>run</p>",
                   log_tail="last line", is_test=is_test)
