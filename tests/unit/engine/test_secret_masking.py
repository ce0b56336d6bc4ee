"""The one registry of secret values: masked whatever their length, in every log line (tracebacks too),
in the RunResult's summary, JSON and errors; log files private (0600), rotated ones included."""

from __future__ import annotations

import json
import logging
import stat
from urllib.parse import quote

import pytest

import ncbackup.engine.logs as logs
from ncbackup.engine.logs import add_secret, mask_secrets, run_logging, short_secret_sources
from ncbackup.engine.result import RunResult, StepResult


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("secret", ["x", "ab", "q7!", "hunter22", "a much longer passphrase with spaces " * 8])
def test_a_secret_of_any_length_is_masked(secret):
    add_secret(secret)
    assert mask_secrets(f"before {secret} after") == "before *** after"


def test_a_short_secret_is_masked_and_named_as_too_short_when_logging_starts(tmp_path):
    add_secret("pw1", where="MONGO_PWD")
    assert short_secret_sources() == ["MONGO_PWD"]
    with run_logging(tmp_path / "ncbackup.log", "CRITICAL"):
        logging.getLogger("ncbackup.test").info("login pw1 refused")
    text = (tmp_path / "ncbackup.log").read_text()
    assert "MONGO_PWD is shorter than 4 characters" in text
    assert "login *** refused" in text and "pw1" not in text


def test_a_secret_inside_a_longer_one_leaves_no_piece_of_either():
    add_secret("pass")
    add_secret("mongodb://u:pass@db1/admin")
    assert mask_secrets("uri mongodb://u:pass@db1/admin") == "uri ***"


def test_the_url_encoded_form_of_a_secret_is_masked_too():
    add_secret("p@ss/w rd")
    assert mask_secrets(f"GET https://h/?token={quote('p@ss/w rd', safe='')}") == "GET https://h/?token=***"


def test_blank_values_are_not_secrets():
    add_secret("")
    add_secret("   ")
    assert mask_secrets("a b  c") == "a b  c"


def test_a_secret_in_an_exception_traceback_is_masked_in_every_handler(tmp_path, capsys):
    add_secret("tok-3b9f1e")
    with run_logging(tmp_path / "ncbackup.log", "ERROR") as tail:
        try:
            raise RuntimeError("server said: bad token tok-3b9f1e")
        except RuntimeError:
            logging.getLogger("ncbackup.test").exception("step crashed")
    for text in ((tmp_path / "ncbackup.log").read_text(), tail.text(), capsys.readouterr().err):
        assert "RuntimeError: server said: bad token ***" in text and "tok-3b9f1e" not in text


def test_the_log_file_is_created_0600_and_an_existing_one_is_tightened(tmp_path):
    log_file = tmp_path / "ncbackup.log"
    with run_logging(log_file, "CRITICAL"):
        logging.getLogger("ncbackup.test").info("x")
    assert mode(log_file) == 0o600
    log_file.chmod(0o644)
    with run_logging(log_file, "CRITICAL"):
        pass
    assert mode(log_file) == 0o600


def test_rotated_log_files_are_0600(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "LOG_FILE_MAX_BYTES", 2000)
    log_file = tmp_path / "ncbackup.log"
    (tmp_path / "ncbackup.log.3").write_text("an old log written world-readable\n")
    (tmp_path / "ncbackup.log.3").chmod(0o644)
    with run_logging(log_file, "CRITICAL"):
        for number in range(40):   # about two rollovers: the old .3 is renamed, not yet deleted
            logging.getLogger("ncbackup.test").info("line %d %s", number, "x" * 50)
    files = sorted(tmp_path.iterdir())
    assert len(files) >= 4 and (tmp_path / "ncbackup.log.1").exists()
    assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}


def test_errors_summary_and_json_of_a_run_are_masked():
    add_secret("S3cr3t-key-77")
    run = RunResult(config_path="/etc/c.json", hostname="web1")
    run.error = "credentials S3cr3t-key-77 refused"
    step = StepResult(name="STORAGE", kind="backup-set")
    step.fail("upload failed: S3cr3t-key-77 is not valid")
    step.warn("retried with S3cr3t-key-77")
    step.notes.append("note S3cr3t-key-77")
    run.steps.append(step)
    outputs = [run.to_json(), run.summary(), "\n".join(run.errors())]
    for text in outputs:
        assert "S3cr3t-key-77" not in text and "***" in text
    data = json.loads(run.to_json())
    assert data["error"] == "credentials *** refused"
    assert data["steps"][0]["warnings"] == ["retried with ***"] and data["steps"][0]["notes"] == ["note ***"]
