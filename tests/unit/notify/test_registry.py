"""Every notifier module is registered; NOTIFY sections and GENERAL pick the notifiers; ON, retries, warnings."""

from __future__ import annotations

import json
import os
import pkgutil
from pathlib import Path
from typing import ClassVar

import pytest

import ncbackup.notify as notify_package
from ncbackup.config import load_config
from ncbackup.engine.logs import mask_secrets
from ncbackup.engine.plan import build_plan
from ncbackup.engine.result import RunResult, Status, StepResult
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.base import Message
from ncbackup.notify.email import EmailNotifier
from ncbackup.notify.message import build_message
from ncbackup.notify.post_report import PostReport
from ncbackup.notify.registry import NOTIFIERS, Delivery, build_notifiers, deliver, notify_all, notify_started

# Modules of notify/ that are no method: the contract, the framework, and shared helpers.
NOT_NOTIFIERS = {"base", "registry", "message", "sections", "http", "args", "values"}


def write_config(tmp_path: Path, sections: dict, **general: str) -> Path:
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({"GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), **general},
                                **sections}))
    return path


def notify_section(method: str, **parameters) -> dict:
    return {"ACTION": "execute", "NAME": "notify", "PARAMETERS": {"METHOD": method, **parameters}}


def post_section(**parameters) -> dict:
    return notify_section("post", ARGS_DICT={"URL": "http://127.0.0.1:9/r"}, **parameters)


def credentials_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "notify.credentials"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_every_notifier_module_is_registered():
    modules = {m.name for m in pkgutil.iter_modules(notify_package.__path__)} - NOT_NOTIFIERS
    registered = {factory.__module__.rsplit(".", 1)[-1] for factory in NOTIFIERS.values()}
    assert modules == registered


def test_no_report_url_and_no_section_means_no_notifier(tmp_path):
    assert build_notifiers(load_config(write_config(tmp_path, {}))) == []


def test_report_url_builds_the_legacy_post_notifier_for_every_outcome(tmp_path):
    config = load_config(write_config(tmp_path, {}, MESSAGE_CONFIG_COMMAND="http://127.0.0.1:1/r"))
    (delivery,) = build_notifiers(config)
    assert isinstance(delivery.notifier, PostReport)
    assert delivery.name == "post" and delivery.notifier.url == "http://127.0.0.1:1/r"
    assert delivery.notifier.outcomes == frozenset(Status)


def test_notify_sections_of_any_name_build_their_method_with_on_and_retry(tmp_path):
    config = load_config(write_config(tmp_path, {
        "ALERTS": post_section(ON="failure skipped", RETRY_SECONDS="5m"),
        "MAIL": notify_section("email", ARGS_DICT={"SMTP_HOST": "mail.example", "FROM": "b@example", "TO": "a@x b@y"}),
    }))
    alerts, mail = build_notifiers(config)
    assert alerts.name == "ALERTS" and alerts.notifier.outcomes == {Status.FAILED, Status.SKIPPED}
    assert alerts.retry_seconds == 300
    assert isinstance(mail.notifier, EmailNotifier) and mail.notifier.outcomes == {Status.FAILED, Status.WARNING}
    assert mail.notifier.options.recipients == ["a@x", "b@y"] and mail.notifier.port == 587


def test_a_notify_section_is_no_step_of_the_plan(tmp_path):
    plan = build_plan(load_config(write_config(tmp_path, {"ALERTS": post_section()})))
    assert plan.steps == []


def test_unknown_method_is_refused_naming_the_methods(tmp_path):
    config = load_config(write_config(tmp_path, {"ALERTS": notify_section("pigeon")}))
    with pytest.raises(ConfigError, match="unknown notify METHOD 'pigeon'; use one of: .*email.*post") as error:
        build_plan(config)
    assert error.value.key == "ALERTS.METHOD"


def test_unknown_outcome_in_on_is_refused(tmp_path):
    config = load_config(write_config(tmp_path, {"ALERTS": post_section(ON="failure sometimes")}))
    with pytest.raises(ConfigError, match="unknown outcome 'sometimes'"):
        build_plan(config)


@pytest.mark.parametrize("key", ["SMTP_PASSWORD", "TOKEN", "api_key", "SECRET"])
def test_a_secret_in_args_dict_is_refused_pointing_to_the_credentials_file(tmp_path, key):
    config = load_config(write_config(tmp_path, {"MAIL": notify_section(
        "email", ARGS_DICT={"SMTP_HOST": "h", "FROM": "b@example", "TO": "a@x", key: "pw-secret-991"})}))
    with pytest.raises(ConfigError, match="put it in CREDENTIALS_FILE") as error:
        build_plan(config)
    assert "pw-secret-991" not in mask_secrets(str(error.value))
    with pytest.raises(ConfigError, match="put it in CREDENTIALS_FILE"):
        build_notifiers(config)


def test_credentials_file_values_reach_the_method_and_are_registered_as_secrets(tmp_path):
    path = credentials_file(tmp_path, "# SMTP account\nSMTP_USER = backup\n\nSMTP_PASSWORD=pw-cred-5521\n")
    config = load_config(write_config(tmp_path, {"MAIL": notify_section(
        "email", ARGS_DICT={"SMTP_HOST": "h", "FROM": "b@example", "TO": "a@x"}, CREDENTIALS_FILE=str(path))}))
    (mail,) = build_notifiers(config)
    assert mail.notifier.user == "backup" and mail.notifier.password == "pw-cred-5521"
    assert mask_secrets("login with pw-cred-5521") == "login with ***"


def test_a_credentials_file_others_may_read_is_refused(tmp_path):
    path = credentials_file(tmp_path, "SMTP_USER=u\nSMTP_PASSWORD=p-77665544\n", mode=0o644)
    config = load_config(write_config(tmp_path, {"MAIL": notify_section(
        "email", ARGS_DICT={"SMTP_HOST": "h", "FROM": "b@example", "TO": "a@x"}, CREDENTIALS_FILE=str(path))}))
    with pytest.raises(ConfigError, match="can be read by other users .*chmod 600"):
        build_notifiers(config)


def test_a_credentials_line_without_equals_is_refused_without_quoting_it(tmp_path):
    path = credentials_file(tmp_path, "SMTP_USER=u\nbare-secret-4433\n")
    config = load_config(write_config(tmp_path, {"MAIL": notify_section(
        "email", ARGS_DICT={"SMTP_HOST": "h", "FROM": "b@example", "TO": "a@x"}, CREDENTIALS_FILE=str(path))}))
    with pytest.raises(ConfigError, match="line 2 of the credentials file .* is not KEY=value") as error:
        build_notifiers(config)
    assert "bare-secret-4433" not in str(error.value)


def test_problems_are_collected_and_the_usable_notifiers_still_built(tmp_path):
    config = load_config(write_config(tmp_path, {
        "BROKEN": notify_section("email", ARGS_DICT={"SMTP_HOST": "h"}),
        "ALERTS": post_section(),
    }))
    problems: list[str] = []
    (alerts,) = build_notifiers(config, problems=problems)
    assert alerts.name == "ALERTS" and len(problems) == 1 and "BROKEN" in problems[0]


@pytest.mark.parametrize("method", ["email", "sms", "wechat"])
def test_legacy_method_without_its_notify_section_says_what_to_add(tmp_path, method):
    config = load_config(write_config(tmp_path, {}, MESSAGE_CONFIG_METHOD=method))
    with pytest.raises(ConfigError, match=f"MESSAGE_CONFIG_METHOD {method} needs a NOTIFY section with METHOD {method}"):
        build_notifiers(config)


def test_legacy_email_is_delivered_by_its_notify_section(tmp_path):
    config = load_config(write_config(tmp_path, {"MAIL": notify_section(
        "email", ARGS_DICT={"SMTP_HOST": "h", "FROM": "b@example", "TO": "a@x"})}, MESSAGE_CONFIG_METHOD="email"))
    (mail,) = build_notifiers(config)
    assert mail.name == "MAIL"


class Recorder:
    """A notifier that records what it was sent and fails the first ``failures`` attempts."""

    def __init__(self, outcomes=frozenset({Status.FAILED, Status.WARNING}), failures: int = 0, name: str = "rec"):
        self.name, self.outcomes, self.failures = name, frozenset(outcomes), failures
        self.sent: list[Message] = []
        self.attempts = 0
        self.starts = 0

    def send(self, message: Message) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise BackupError("the receiver answered 503")
        self.sent.append(message)


class StartRecorder(Recorder):
    def started(self) -> None:
        self.starts += 1


def run_result(status: Status = Status.OK, *, is_lock_held: bool = False) -> RunResult:
    run = RunResult(config_path="/etc/c.json", hostname="web1", is_lock_held=is_lock_held)
    run.steps.append(StepResult(name="FILESET+STORAGE", kind="backup-set", status=status))
    return run


@pytest.mark.parametrize(("status", "is_sent"), [(Status.OK, False), (Status.WARNING, True), (Status.FAILED, True)])
def test_on_filters_by_the_run_status(status, is_sent):
    recorder = Recorder()
    notify_all([Delivery(recorder, "rec")], build_message(run_result(status), ""))
    assert bool(recorder.sent) == is_sent


def test_a_skipped_run_reaches_only_the_notifiers_whose_on_includes_skipped():
    asking, default = Recorder({Status.SKIPPED}), Recorder()
    notify_all([Delivery(asking, "rec"), Delivery(default, "rec")], build_message(run_result(is_lock_held=True), ""))
    assert len(asking.sent) == 1 and asking.sent[0].status == Status.SKIPPED and default.sent == []


def test_a_test_message_ignores_on():
    recorder = Recorder({Status.FAILED})
    notify_all([Delivery(recorder, "rec")], build_message(run_result(), "", is_test=True))
    assert len(recorder.sent) == 1


def test_retries_stop_at_the_time_budget():
    recorder = Recorder({Status.FAILED}, failures=100)
    waits: list[float] = []
    failure = deliver(Delivery(recorder, "rec", retry_seconds=10), build_message(run_result(Status.FAILED), ""),
                      sleep=waits.append, clock=lambda: sum(waits))
    # 2 + 4 fit in 10 s; the next wait (8 s) would pass the budget: 3 attempts.
    assert waits == [2.0, 4.0] and recorder.attempts == 3
    assert failure == "notifier rec (rec) could not deliver after 3 attempt(s): the receiver answered 503"


def test_a_delivery_that_succeeds_on_retry_adds_no_warning():
    recorder = Recorder(failures=2)
    run = run_result(Status.WARNING)
    assert notify_all([Delivery(recorder, "rec", first_wait_seconds=0.01)], build_message(run, "")) == []
    assert recorder.attempts == 3 and run.warnings == []


def test_a_notifier_outage_turns_a_good_run_into_a_warning_never_a_failure():
    recorder = Recorder({Status.OK}, failures=100)
    run = run_result(Status.OK)
    notify_all([Delivery(recorder, "rec", attempts=2, first_wait_seconds=0.01)], build_message(run, ""))
    assert run.status == Status.WARNING and run.exit_status == 1 and "could not deliver" in run.warnings[0]


def test_a_crashing_notifier_is_not_retried_and_never_raises():
    class Broken(Recorder):
        def send(self, message: Message) -> None:
            self.attempts += 1
            raise KeyError("bug")

    broken = Broken()
    (failure,) = notify_all([Delivery(broken, "rec", first_wait_seconds=0.01)], build_message(run_result(Status.FAILED), ""))
    assert broken.attempts == 1 and "failed unexpectedly (KeyError" in failure


def test_started_is_called_on_start_aware_notifiers_only_and_a_failure_is_a_warning():
    class FailingStart(Recorder):
        def started(self) -> None:
            raise BackupError("the ping server is down")

    aware, plain, failing = StartRecorder(), Recorder(), FailingStart(name="hc")
    run = run_result()
    notify_started([Delivery(aware, "rec"), Delivery(plain, "rec"), Delivery(failing, "rec")], run)
    assert aware.starts == 1 and run.warnings == ["notifier hc could not announce the start of the run: "
                                                  "the ping server is down"]


def test_docs_list_exactly_the_registered_methods():
    import re

    from tests.support import REPO

    page = (REPO / "docs" / "notify.md").read_text()
    methods_part = page.split("\n## Methods\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^### `([a-z0-9_-]+)`", methods_part, flags=re.MULTILINE))
    assert documented == set(NOTIFIERS)


class StartAwareMethod(StartRecorder):
    """A registered method for the test below: records starts and messages in a class-level list."""

    events: ClassVar[list[str]] = []

    @classmethod
    def from_section(cls, args, credentials, *, name, outcomes, section):
        return cls(outcomes, name=name)

    def started(self) -> None:
        self.events.append("started")

    def send(self, message: Message) -> None:
        self.events.append(f"sent {message.status.value}")


def test_a_run_tells_start_aware_notifiers_it_started_then_sends_its_result(tmp_path, monkeypatch):
    from ncbackup.commands.run import run_config

    monkeypatch.setitem(NOTIFIERS, "pinger", StartAwareMethod)
    monkeypatch.setattr(StartAwareMethod, "events", [])
    config = load_config(write_config(tmp_path, {"PING": notify_section("pinger", ON="success")}))
    result = run_config(config, level="WARNING")
    assert result.status == Status.OK and StartAwareMethod.events == ["started", "sent ok"]
