"""Healthchecks.io and Uptime Kuma pings against a local receiver: which endpoint per outcome, body, rid."""

from __future__ import annotations

import json

import pytest

from ncbackup.engine.result import Status
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.base import StartAware
from ncbackup.notify.healthchecks import HealthchecksNotifier
from tests.unit.notify.hook_support import running_receiver, sample_message

UUID = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"
PUSH_TOKEN = "4Gdp9cHeNu7MHZ6P"
ON = frozenset(Status)


@pytest.fixture
def receiver():
    with running_receiver() as server:
        server.respond = lambda request: (200, "OK")
        yield server


def healthchecks(receiver) -> HealthchecksNotifier:
    return HealthchecksNotifier.from_section({}, {"URL": f"{receiver.base_url}/ping/{UUID}"}, name="NOTIFY_HC",
                                             outcomes=ON, section=None)


def kuma(url: str, *, in_args: bool = False) -> HealthchecksNotifier:
    args, credentials = ({"STYLE": "kuma", "URL": url}, {}) if in_args else ({"STYLE": "kuma"}, {"URL": url})
    return HealthchecksNotifier.from_section(args, credentials, name="NOTIFY_KUMA", outcomes=ON, section=None)


def test_a_run_pings_start_then_success_with_one_rid_and_the_text_as_body(receiver):
    notifier = healthchecks(receiver)
    aware: StartAware = notifier           # what the framework sees (StartAware is no runtime protocol)
    aware.started()
    notifier.send(sample_message(Status.OK))
    start, end = receiver.requests
    assert (start.method, start.path, end.method, end.path) == ("POST", f"/ping/{UUID}/start", "POST", f"/ping/{UUID}")
    assert start.query["rid"] == end.query["rid"] and len(end.query["rid"][0]) == 36
    assert end.body.decode().startswith("host srv-web1, result ok")


@pytest.mark.parametrize(("status", "is_test", "path"), [
    (Status.WARNING, False, f"/ping/{UUID}"),          # the backup is there: success, the body says warning
    (Status.FAILED, False, f"/ping/{UUID}/fail"),
    (Status.SKIPPED, False, f"/ping/{UUID}/log"),      # the run holding the lock pings for itself
    (Status.OK, True, f"/ping/{UUID}/log"),            # notify-test must not change the check's state
])
def test_each_outcome_pings_its_endpoint(receiver, status, is_test, path):
    healthchecks(receiver).send(sample_message(status, is_test=is_test))
    assert receiver.only.path == path


def test_the_body_is_bounded_to_100_kb(receiver):
    healthchecks(receiver).send(sample_message(Status.FAILED, text="log line\n" * 50_000))
    assert 99_000 < len(receiver.only.body) <= 100_000


def test_a_healthchecks_error_answer_is_a_failure(receiver):
    receiver.respond = lambda request: (404, "not found")
    with pytest.raises(BackupError, match="answered HTTP 404 \\(not found\\)") as caught:
        healthchecks(receiver).send(sample_message())
    assert UUID not in str(caught.value)


def test_kuma_push_replaces_the_query_kuma_shows_with_this_runs_status(receiver):
    receiver.respond = lambda request: (200, json.dumps({"ok": True}))
    notifier = kuma(f"{receiver.base_url}/api/push/{PUSH_TOKEN}?status=up&msg=OK&ping=")
    notifier.started()                     # Kuma has no start: nothing sent
    notifier.send(sample_message(Status.FAILED))
    request = receiver.only
    assert request.method == "GET" and request.path == f"/api/push/{PUSH_TOKEN}"
    assert request.query == {"status": ["down"], "msg": ["ncbackup srv-web1: failed"], "ping": ["754000"]}


def test_kuma_says_up_for_a_warning_and_sends_nothing_for_a_skipped_run(receiver):
    receiver.respond = lambda request: (200, json.dumps({"ok": True}))
    notifier = kuma(f"{receiver.base_url}/api/push/{PUSH_TOKEN}", in_args=True)
    notifier.send(sample_message(Status.SKIPPED))
    notifier.send(sample_message(Status.WARNING))
    assert receiver.only.query["status"] == ["up"]


def test_kuma_ok_false_is_a_failure(receiver):
    receiver.respond = lambda request: (404, json.dumps({"ok": False, "msg": "Monitor not found or not active."}))
    with pytest.raises(BackupError, match="answered HTTP 404"):
        kuma(f"{receiver.base_url}/api/push/{PUSH_TOKEN}").send(sample_message())
    receiver.respond = lambda request: (200, json.dumps({"ok": False, "msg": "Monitor not found or not active."}))
    with pytest.raises(BackupError, match="Uptime Kuma refused the push \\(Monitor not found or not active.\\)"):
        kuma(f"{receiver.base_url}/api/push/{PUSH_TOKEN}").send(sample_message())


def test_args_url_may_carry_kumas_own_query_but_no_other():
    kuma("https://kuma.example/api/push/abc?status=up&msg=OK&ping=", in_args=True)
    with pytest.raises(ConfigError, match="carries a credential"):
        kuma("https://kuma.example/api/push/abc?token=x", in_args=True)
    with pytest.raises(ConfigError, match="STYLE of section NOTIFY_HC is 'nagios'; use one of: healthchecks, kuma"):
        HealthchecksNotifier.from_section({"STYLE": "nagios", "URL": "https://hc.example/ping/x"}, {},
                                          name="NOTIFY_HC", outcomes=ON, section=None)
