"""The generic JSON webhook against a local receiver: the documented body, the HMAC signature, the URL rules."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time

import pytest

from ncbackup.engine.logs import add_secret
from ncbackup.engine.result import Status
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.webhook import SCHEMA_VERSION, WebhookNotifier
from tests.unit.notify.hook_support import running_receiver, sample_message

TOKEN = "tok-4f9a1c7e2b"
ON = frozenset({Status.FAILED, Status.WARNING})


@pytest.fixture
def receiver():
    with running_receiver() as server:
        yield server


def build(args=None, credentials=None) -> WebhookNotifier:
    return WebhookNotifier.from_section(args or {}, credentials or {}, name="NOTIFY_HOOK", outcomes=ON, section=None)


def test_webhook_posts_the_documented_json_body(receiver):
    build({"URL": receiver.base_url + "/hooks/backup"}).send(sample_message(Status.FAILED))
    request = receiver.only
    assert request.method == "POST" and request.path == "/hooks/backup"
    assert request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert body["schema_version"] == SCHEMA_VERSION == 1
    assert body["host"] == "srv-web1" and body["status"] == "failed" and body["is_test"] is False
    assert body["subject"] == "ncbackup srv-web1: failed" and "dump died" in body["text"]
    assert body["set_ids"] == ["20261130T030000Z-web1"]
    assert body["start"] == "2026-11-30T03:00:00+00:00" and body["duration_seconds"] == 754.0
    assert body["bytes_in"] == 5_000_300 and body["bytes_out"] == 1_200_100
    assert [(step["name"], step["status"]) for step in body["steps"]] == [
        ("FILESET+STORAGE", "ok"), ("MYSQL+STORAGE", "failed")]
    assert "Access denied" in body["steps"][1]["error"] and body["steps"][0]["error"] is None
    assert body["errors"] == ["MYSQL+STORAGE: mysqldump exited with status 2: Access denied for user 'backup'"]
    assert body["log_tail"] == "dump started\ndump died" and body["sent_at"]
    assert "X-Ncbackup-Signature-256".lower() not in request.headers   # no SECRET, no signature


def test_webhook_signs_the_exact_body_with_hmac_sha256_of_the_secret(receiver):
    build(credentials={"URL": receiver.base_url + "/in", "SECRET": "shared-secret-42"}).send(sample_message())
    request = receiver.only
    # The receiver's check, written as a receiver would (GitHub's X-Hub-Signature-256 scheme).
    expected = "sha256=" + hmac.new(b"shared-secret-42", request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-ncbackup-signature-256"], expected)


def test_webhook_body_masks_registered_secrets_in_every_field(receiver):
    add_secret("hunter2-db-password")
    message = sample_message(Status.FAILED)
    message.result.steps[1].error = "mysql -phunter2-db-password refused"
    build({"URL": receiver.base_url}).send(message)
    assert b"hunter2-db-password" not in receiver.only.body and "***" in receiver.only.json()["steps"][1]["error"]


def test_a_server_error_is_one_sentence_without_the_token(receiver):
    receiver.respond = lambda request: (500, "internal error")
    notifier = build(credentials={"URL": f"{receiver.base_url}/hook/{TOKEN}?token={TOKEN}"})
    with pytest.raises(BackupError) as caught:
        notifier.send(sample_message())
    text = str(caught.value)
    assert "answered HTTP 500" in text and receiver.base_url in text and TOKEN not in text


def test_an_unreachable_server_is_a_backup_error_without_the_token():
    notifier = build(credentials={"URL": f"http://127.0.0.1:9/hook/{TOKEN}"})
    with pytest.raises(BackupError, match="could not reach http://127.0.0.1:9") as caught:
        notifier.send(sample_message())
    assert TOKEN not in str(caught.value)


def test_a_redirect_is_not_followed(receiver):
    # Followed, it would resend the message elsewhere (here: /elsewhere, which would answer 200).
    receiver.respond = lambda request: (302, "", {"Location": "/elsewhere"}) if request.path == "/a" else (200, "ok")
    with pytest.raises(BackupError, match="answered HTTP 302"):
        build({"URL": receiver.base_url + "/a"}).send(sample_message())
    assert [request.path for request in receiver.requests] == ["/a"]


def test_a_server_that_never_answers_is_given_up_after_the_timeout(receiver):
    release = threading.Event()

    def hang(request):
        release.wait(60)
        return 200, "ok"

    receiver.respond = hang
    notifier = build({"URL": receiver.base_url})
    notifier.timeout_seconds = 1
    began = time.monotonic()
    try:
        with pytest.raises(BackupError, match="did not answer within 1 s"):
            notifier.send(sample_message())
        assert time.monotonic() - began < 10   # the server would hold the request for 60 s
    finally:
        release.set()


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/in?token=abc123",
    "https://user:pass@hooks.example.com/in",
])
def test_a_url_with_a_credential_in_args_dict_is_refused(url):
    with pytest.raises(ConfigError, match="move it to the section's CREDENTIALS_FILE") as caught:
        build({"URL": url})
    assert "abc123" not in str(caught.value) and "pass@" not in str(caught.value)


def test_the_same_url_from_the_credentials_file_is_accepted_and_its_token_masked():
    from ncbackup.engine.logs import mask_secrets

    notifier = build(credentials={"URL": f"https://hooks.example.com/in/{TOKEN}?token={TOKEN}"})
    assert notifier.url.endswith(f"?token={TOKEN}")
    # urllib3 logs "POST /in/<path>?token=..." at debug level: the path and query are masked too,
    # also a token that only the path holds (Slack, Feishu, healthchecks).
    build(credentials={"URL": "https://hooks.example.com/services/T0/B0/pathonly7x9q"})
    assert TOKEN not in mask_secrets(f"POST /in/{TOKEN}?token={TOKEN}")
    assert "pathonly7x9q" not in mask_secrets("POST /services/T0/B0/pathonly7x9q HTTP/1.1")


def test_short_parts_of_a_credential_url_are_not_masked_everywhere():
    from ncbackup.engine.logs import mask_secrets

    build(credentials={"URL": "https://hooks.example.com/in?x=1"})
    assert mask_secrets("POST /in?x=1 sent in 1 try") == "POST /in?x=1 sent in 1 try"


@pytest.mark.parametrize(("args", "credentials", "words"), [
    ({}, {}, "has no URL"),
    ({"URL": "https://a.example/x"}, {"URL": "https://b.example/y"}, "both in ARGS_DICT and in its CREDENTIALS_FILE"),
    ({"URL": "ftp://a.example/x"}, {}, "no http(s) URL"),
])
def test_missing_doubled_or_odd_urls_are_config_errors(args, credentials, words):
    with pytest.raises(ConfigError) as caught:
        build(args, credentials)
    assert words in str(caught.value) and "NOTIFY_HOOK" in str(caught.value)


def test_a_config_error_points_at_the_section_in_the_config_file():
    from pathlib import Path

    from ncbackup.config.settings import Position, SectionSettings

    section = SectionSettings(name="NOTIFY_HOOK", action="execute", module="notify",
                              position=Position(file=Path("/etc/ncbackup/web1.json"), line=12))
    with pytest.raises(ConfigError) as caught:
        WebhookNotifier.from_section({}, {}, name="NOTIFY_HOOK", outcomes=ON, section=section)
    assert str(caught.value).startswith("/etc/ncbackup/web1.json, line 12: URL: section NOTIFY_HOOK has no URL")
