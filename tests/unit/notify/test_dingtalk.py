"""The DingTalk custom robot against a local fake that checks the signature as DingTalk documents it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from ncbackup.engine.result import Status
from ncbackup.errors import BackupError
from ncbackup.notify.dingtalk import DingTalkNotifier
from tests.unit.notify.hook_support import running_receiver, sample_message

TOKEN = "c0ffee00d1ng7a1k70ken"
SECRET = "SEC6f1d2a0b9c8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1"
ON = frozenset(Status)


def dingtalk_fake(*, token: str, secret: str):
    """The robot's checks: access_token, then timestamp (ms, within 1 h) and sign = urlencode(base64(HMAC-SHA256(
    key=secret, msg=timestamp + "\\n" + secret))); errcode 310000 when they do not match."""

    def respond(request):
        if request.query.get("access_token") != [token]:
            return 200, json.dumps({"errcode": 300001, "errmsg": "token is not exist"})
        (timestamp,) = request.query.get("timestamp", ["0"])
        # parse_qs undid the URL-encoding once: a sign sent unencoded ('+' read as ' ') or twice would not match.
        (sign,) = request.query.get("sign", [""])
        string_to_sign = f"{timestamp}\n{secret}".encode()
        expected = base64.b64encode(hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()).decode()
        if abs(int(timestamp) - time.time() * 1000) > 3_600_000 or sign != expected:
            return 200, json.dumps({"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc...]"})
        if len(request.body) > 20_000 + 1_000:
            return 200, json.dumps({"errcode": 460101, "errmsg": "message too long"})
        return 200, json.dumps({"errcode": 0, "errmsg": "ok"})

    return respond


@pytest.fixture
def receiver():
    with running_receiver() as server:
        server.respond = dingtalk_fake(token=TOKEN, secret=SECRET)
        yield server


def build(receiver, *, secret=SECRET, **args) -> DingTalkNotifier:
    return DingTalkNotifier.from_section({"URL": receiver.base_url + "/robot/send", **args},
                                         {"ACCESS_TOKEN": TOKEN, "SECRET": secret},
                                         name="NOTIFY_DING", outcomes=ON, section=None)


def test_dingtalk_sends_a_signed_markdown_message(receiver):
    build(receiver).send(sample_message(Status.WARNING))
    request = receiver.only
    assert request.path == "/robot/send"
    body = request.json()
    assert body["msgtype"] == "markdown" and body["markdown"]["title"] == "ncbackup srv-web1: warning"
    assert "srv-web1" in body["markdown"]["text"]


def test_many_signatures_all_verify(receiver):
    # base64 holds '+', '/' and '=' about every other message: the URL-encoding must be right for all.
    notifier = build(receiver)
    for _ in range(20):
        notifier.send(sample_message(Status.OK))
        time.sleep(0.002)    # a new millisecond timestamp, so a new signature
    assert len(receiver.requests) == 20


def test_a_wrong_secret_is_refused_and_the_error_names_neither_secret_nor_token(receiver):
    with pytest.raises(BackupError, match="errcode 310000") as caught:
        build(receiver, secret="SECwrong-secret-0123456789").send(sample_message())
    assert "SECwrong" not in str(caught.value) and TOKEN not in str(caught.value)


def test_text_messages_are_cut_to_the_content_limit(receiver):
    build(receiver, MSGTYPE="text").send(sample_message(text="钉钉 " * 20_000))
    content = receiver.only.json()["text"]["content"]
    assert len(content.encode("utf-8")) <= 20_000 and content.endswith("[... cut ...]")


def test_without_a_secret_no_signature_is_sent(receiver):
    receiver.respond = lambda request: (200, json.dumps({"errcode": 0, "errmsg": "ok"}))
    DingTalkNotifier.from_section({"URL": receiver.base_url + "/robot/send"}, {"ACCESS_TOKEN": TOKEN},
                                  name="NOTIFY_DING", outcomes=ON, section=None).send(sample_message())
    assert set(receiver.only.query) == {"access_token"}
