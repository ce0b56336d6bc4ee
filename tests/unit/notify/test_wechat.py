"""The WeChat Work group robot against a local fake of its webhook API (key check, byte limits, errcode)."""

from __future__ import annotations

import json

import pytest

from ncbackup.engine.result import Status
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.wechat import WeChatNotifier
from tests.unit.notify.hook_support import running_receiver, sample_message

KEY = "693a91f6-7aoc-4bc4-97a0-0ec2sifa5aaa"
ON = frozenset(Status)


def wechat_fake(key: str):
    """Answers as the WeCom robot API does: HTTP 200 always, errcode 0 only for a good key and content."""
    limits = {"markdown": 4096, "text": 2048}

    def respond(request):
        if request.path != "/cgi-bin/webhook/send" or request.query.get("key") != [key]:
            return 200, json.dumps({"errcode": 93000, "errmsg": "invalid webhook url, hint: [1700000000_1]"})
        body = request.json()
        msgtype = body["msgtype"]
        if len(body[msgtype]["content"].encode("utf-8")) > limits[msgtype]:
            return 200, json.dumps({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"})
        return 200, json.dumps({"errcode": 0, "errmsg": "ok"})

    return respond


@pytest.fixture
def receiver():
    with running_receiver() as server:
        server.respond = wechat_fake(KEY)
        yield server


def build(receiver, *, key=KEY, **args) -> WeChatNotifier:
    return WeChatNotifier.from_section({"URL": receiver.base_url + "/cgi-bin/webhook/send", **args}, {"KEY": key},
                                       name="NOTIFY_WECHAT", outcomes=ON, section=None)


def test_wechat_sends_markdown_with_the_subject_and_text(receiver):
    build(receiver).send(sample_message(Status.FAILED))
    body = receiver.only.json()
    assert body["msgtype"] == "markdown"
    assert "ncbackup srv-web1: failed" in body["markdown"]["content"]
    assert "mysqldump exited with status 2" in body["markdown"]["content"]


@pytest.mark.parametrize(("msgtype", "limit"), [("markdown", 4096), ("text", 2048)])
def test_wechat_content_is_cut_to_the_byte_limit_without_breaking_a_character(receiver, msgtype, limit):
    long_text = "备份失败 line\n" * 2000    # 3-byte characters: a cut in the middle would be invalid UTF-8
    build(receiver, MSGTYPE=msgtype).send(sample_message(text=long_text))
    content = receiver.only.json()[msgtype]["content"]
    assert limit - 20 < len(content.encode("utf-8")) <= limit and content.endswith("[... cut ...]")


def test_an_errcode_in_a_200_answer_is_a_failure_without_the_key(receiver):
    with pytest.raises(BackupError, match="errcode 93000") as caught:
        build(receiver, key="0000-wrong-key-0000").send(sample_message())
    assert "0000-wrong-key-0000" not in str(caught.value)


def test_the_whole_webhook_url_may_come_from_the_credentials(receiver):
    notifier = WeChatNotifier.from_section({}, {"URL": f"{receiver.base_url}/cgi-bin/webhook/send?key={KEY}"},
                                           name="NOTIFY_WECHAT", outcomes=ON, section=None)
    notifier.send(sample_message(Status.OK))
    assert receiver.only.query["key"] == [KEY]


def test_a_missing_key_is_a_config_error():
    with pytest.raises(ConfigError, match="needs KEY=... in its CREDENTIALS_FILE"):
        WeChatNotifier.from_section({}, {}, name="NOTIFY_WECHAT", outcomes=ON, section=None)
