"""The Feishu custom bot against a local fake that checks the signature as Feishu documents it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from ncbackup.engine.result import Status
from ncbackup.errors import BackupError
from ncbackup.notify.feishu import FeishuNotifier
from tests.unit.notify.hook_support import running_receiver, sample_message

TOKEN = "2f6b1c0e-feed-4a1b-9c3d-8e7f6a5b4c3d"
SECRET = "qwErTy0987654321fEiShU"
ON = frozenset(Status)


def feishu_fake(*, token: str, secret: str | None):
    """The bot's checks: the token in the path; with a secret, timestamp (s, within 1 h) and
    sign = base64(HMAC-SHA256(key=timestamp + "\\n" + secret, msg="")); the body at most 20 KB."""

    def respond(request):
        if request.path != f"/open-apis/bot/v2/hook/{token}":
            return 404, json.dumps({"code": 19001, "msg": "param invalid: incoming webhook access token invalid"})
        if len(request.body) > 20 * 1024:
            return 200, json.dumps({"code": 9499, "msg": "request body too large"})
        body = request.json()
        if secret is not None:
            key = f"{body.get('timestamp')}\n{secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if abs(int(body.get("timestamp", 0)) - time.time()) > 3600 or body.get("sign") != expected:
                return 200, json.dumps({"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
        return 200, json.dumps({"code": 0, "msg": "success", "data": {}})

    return respond


@pytest.fixture
def receiver():
    with running_receiver() as server:
        server.respond = feishu_fake(token=TOKEN, secret=SECRET)
        yield server


def build(receiver, *, secret=SECRET, **args) -> FeishuNotifier:
    return FeishuNotifier.from_section({"URL": receiver.base_url + "/open-apis/bot/v2/hook", **args},
                                       {"TOKEN": TOKEN, "SECRET": secret},
                                       name="NOTIFY_FEISHU", outcomes=ON, section=None)


def test_feishu_sends_a_signed_post_message(receiver):
    build(receiver).send(sample_message(Status.FAILED))
    body = receiver.only.json()
    assert body["msg_type"] == "post"
    post = body["content"]["post"]["zh_cn"]
    assert post["title"] == "ncbackup srv-web1: failed"
    assert ["tag" in item[0] for item in post["content"]] and \
        any("mysqldump" in item[0]["text"] for item in post["content"])


def test_feishu_text_message_and_a_url_from_the_credentials(receiver):
    FeishuNotifier.from_section({"MSGTYPE": "text"}, {"URL": f"{receiver.base_url}/open-apis/bot/v2/hook/{TOKEN}",
                                                      "SECRET": SECRET},
                                name="NOTIFY_FEISHU", outcomes=ON, section=None).send(sample_message(Status.OK))
    assert receiver.only.json()["content"]["text"].startswith("ncbackup srv-web1: ok\n")


def test_a_wrong_secret_is_refused_without_quoting_it(receiver):
    with pytest.raises(BackupError, match="code 19021") as caught:
        build(receiver, secret="not-the-secret-at-all").send(sample_message())
    assert "not-the-secret-at-all" not in str(caught.value) and TOKEN not in str(caught.value)


def test_a_bad_token_is_an_error_without_the_token(receiver):
    notifier = FeishuNotifier.from_section({"URL": receiver.base_url + "/open-apis/bot/v2/hook"},
                                           {"TOKEN": "wrong-token-5555", "SECRET": SECRET},
                                           name="NOTIFY_FEISHU", outcomes=ON, section=None)
    with pytest.raises(BackupError, match="answered HTTP 404") as caught:
        notifier.send(sample_message())
    assert "wrong-token-5555" not in str(caught.value)


def test_a_huge_message_stays_under_the_body_limit(receiver):
    build(receiver).send(sample_message(text="飞书 line\n" * 10_000))
    assert len(receiver.only.body) <= 20 * 1024
