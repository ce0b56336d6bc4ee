"""The Slack incoming webhook against a local fake that answers as Slack does ("ok", or an error word)."""

from __future__ import annotations

import pytest

from ncbackup.engine.result import Status
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.slack import SlackNotifier
from tests.unit.notify.hook_support import running_receiver, sample_message

PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
ON = frozenset(Status)


def slack_fake(request):
    """Slack's checks of an incoming-webhook payload: a known path, text present, block limits kept."""
    if request.path != PATH:
        return 404, "no_service"
    body = request.json()
    header, section = body["blocks"]
    if not body.get("text") or len(header["text"]["text"]) > 150 or len(section["text"]["text"]) > 3000:
        return 400, "invalid_blocks"
    return 200, "ok"


@pytest.fixture
def receiver():
    with running_receiver() as server:
        server.respond = slack_fake
        yield server


def build(url: str) -> SlackNotifier:
    return SlackNotifier.from_section({}, {"URL": url}, name="NOTIFY_SLACK", outcomes=ON, section=None)


def test_slack_sends_text_and_two_small_blocks_with_markup_escaped(receiver):
    build(receiver.base_url + PATH).send(sample_message(Status.FAILED))
    body = receiver.only.json()
    assert body["text"].startswith("ncbackup srv-web1: failed")
    header, section = body["blocks"]
    assert header["type"] == "header" and "ncbackup srv-web1: failed" in header["text"]["text"]
    assert "&lt;Access &amp; denied&gt;" in section["text"]["text"] and "<Access" not in body["text"]


def test_a_long_message_stays_within_slacks_block_limits(receiver):
    build(receiver.base_url + PATH).send(sample_message(text="x" * 50_000))
    assert len(receiver.only.json()["text"]) <= 3000


def test_an_error_word_is_a_failure_without_the_webhook_path(receiver):
    with pytest.raises(BackupError, match="answered HTTP 404 \\(no_service\\)") as caught:
        build(receiver.base_url + "/services/T0/B0/secretpart99").send(sample_message())
    assert "secretpart99" not in str(caught.value)


def test_a_200_answer_other_than_ok_is_a_failure(receiver):
    receiver.respond = lambda request: (200, "rate limited")
    with pytest.raises(BackupError, match="Slack did not accept the message \\(rate limited\\)"):
        build(receiver.base_url + PATH).send(sample_message())


def test_the_slack_url_in_args_dict_is_refused():
    with pytest.raises(ConfigError, match="move it from ARGS_DICT to the section's CREDENTIALS_FILE"):
        SlackNotifier.from_section({"URL": "https://hooks.slack.com" + PATH}, {}, name="NOTIFY_SLACK",
                                   outcomes=ON, section=None)
