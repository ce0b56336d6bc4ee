"""Notifier methods by METHOD name (one line per method), and delivery to every notifier of a config.

Delivery never raises and never hangs: each notifier's ``send`` is one attempt with its own timeout,
retried with growing waits within the section's RETRY_SECONDS; a final failure becomes a warning in
the run result (a good backup then exits 1, never 2).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ncbackup.config.credentials import read_credentials
from ncbackup.config.settings import Config
from ncbackup.engine.logs import mask_secrets
from ncbackup.engine.result import RunResult
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.base import Message, Notifier, NotifierFactory, StartAware
from ncbackup.notify.dingtalk import DingTalkNotifier
from ncbackup.notify.email import EmailNotifier
from ncbackup.notify.feishu import FeishuNotifier
from ncbackup.notify.healthchecks import HealthchecksNotifier
from ncbackup.notify.post_report import PostReport
from ncbackup.notify.prometheus import PrometheusTextfile
from ncbackup.notify.sections import (
    DEFAULT_RETRY_SECONDS,
    EVERY_OUTCOME,
    NotifySection,
    is_notify_section,
    read_notify_section,
)
from ncbackup.notify.slack import SlackNotifier
from ncbackup.notify.sms import UCloudSms
from ncbackup.notify.webhook import WebhookNotifier
from ncbackup.notify.wechat import WeChatNotifier
from ncbackup.notify.zabbix import ZabbixSender

log = logging.getLogger(__name__)

NOTIFIERS: dict[str, type[NotifierFactory]] = {
    "post": PostReport,
    "email": EmailNotifier,
    "webhook": WebhookNotifier,
    "wechat": WeChatNotifier,
    "dingtalk": DingTalkNotifier,
    "feishu": FeishuNotifier,
    "slack": SlackNotifier,
    "healthchecks": HealthchecksNotifier,
    "prometheus": PrometheusTextfile,
    "zabbix": ZabbixSender,
    "sms": UCloudSms,
}

# GENERAL MESSAGE_CONFIG_METHOD values besides post: their settings live in a NOTIFY section of the same METHOD.
LEGACY_SECTION_METHODS = ("email", "sms", "wechat")
LEGACY_NAME = "post"   # the notifier built from GENERAL MESSAGE_CONFIG_COMMAND

ATTEMPTS = 5
FIRST_WAIT_SECONDS = 2.0


@dataclass
class Delivery:
    """A notifier with its retry budget: at most ``attempts`` tries, waits doubling, retrying within retry_seconds."""

    notifier: Notifier
    method: str
    retry_seconds: float = DEFAULT_RETRY_SECONDS
    attempts: int = ATTEMPTS
    first_wait_seconds: float = FIRST_WAIT_SECONDS

    @property
    def name(self) -> str:
        return self.notifier.name


def _build_section(entry: NotifySection, config: Config) -> Delivery:
    options = entry.options
    credentials: dict[str, str] = {}
    if options.credentials_file is not None:
        credentials = read_credentials(options.credentials_file, section_name=entry.name, config_file=config.path)
    factory = NOTIFIERS[options.method]
    notifier = factory.from_section(options.args, credentials, name=entry.name, outcomes=entry.outcomes,
                                    section=entry.section)
    return Delivery(notifier, options.method, retry_seconds=options.retry_seconds)


def _legacy_deliveries(config: Config, entries: list[NotifySection]) -> list[Delivery]:
    general = config.general
    method = (general.report_method or "post").lower()
    if method in LEGACY_SECTION_METHODS:
        if not any(entry.options.method == method for entry in entries):
            line = general.position.line if general.position else None
            raise ConfigError(f"GENERAL MESSAGE_CONFIG_METHOD {method} needs a NOTIFY section with METHOD {method} "
                              "holding its settings (see docs/notify.md); add one, or remove MESSAGE_CONFIG_METHOD",
                              file=config.path, line=line, key="GENERAL.MESSAGE_CONFIG_METHOD")
        return []   # that section delivers
    if not general.report_url:
        return []
    notifier = PostReport.from_section({"URL": general.report_url}, {}, name=LEGACY_NAME, outcomes=EVERY_OUTCOME,
                                       section=None)
    return [Delivery(notifier, "post")]


def build_notifiers(config: Config, *, problems: list[str] | None = None,
                    only_section: str | None = None) -> list[Delivery]:
    """Every notifier of the config (NOTIFY sections, then the legacy GENERAL keys), each built once.

    Without ``problems``, the first unusable section raises ConfigError; with it, each problem is
    appended there as a sentence and the usable notifiers are still returned (a run reports its own
    config error through them).
    """
    deliveries: list[Delivery] = []
    entries: list[NotifySection] = []

    def keep(error: ConfigError) -> None:
        if problems is None:
            raise error
        problems.append(str(error))

    for section in config.sections:
        if not is_notify_section(section) or only_section not in (None, section.name):
            continue
        try:
            entry = read_notify_section(section, methods=list(NOTIFIERS), config_file=config.path)
            entries.append(entry)
            deliveries.append(_build_section(entry, config))
        except ConfigError as error:
            keep(error)
    if only_section in (None, LEGACY_NAME):
        try:
            deliveries += _legacy_deliveries(config, entries)
        except ConfigError as error:
            keep(error)
    return deliveries


def notify_started(deliveries: list[Delivery], result: RunResult) -> None:
    """Tell the notifiers that want it that a run started; one attempt each; a failure is a run warning."""
    for delivery in deliveries:
        notifier = delivery.notifier
        if not isinstance(notifier, StartAware):
            continue
        try:
            notifier.started()
        except Exception as error:  # noqa: BLE001 - a notifier never stops a backup
            warning = mask_secrets(f"notifier {delivery.name} could not announce the start of the run: {error}")
            log.warning("%s", warning)
            result.warnings.append(warning)


def deliver(delivery: Delivery, message: Message, *, sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], float] = time.monotonic) -> str | None:
    """Send with retries; None when delivered, else the last problem as a sentence (logged). Never raises."""
    deadline = clock() + delivery.retry_seconds
    wait = delivery.first_wait_seconds
    attempt = 0
    problem = ""
    while True:
        attempt += 1
        try:
            delivery.notifier.send(message)
            log.info("notifier %s (%s): message sent", delivery.name, delivery.method)
            return None
        except BackupError as error:
            problem = str(error)
        except Exception as error:  # noqa: BLE001 - a notifier bug must not turn a good backup into a crash
            problem = f"it failed unexpectedly ({type(error).__name__}: {error})"
            break   # a bug repeats: no retry
        if attempt >= delivery.attempts or clock() + wait > deadline:
            break
        log.warning("notifier %s (%s): attempt %d failed (%s); retrying in %.0f s", delivery.name, delivery.method,
                    attempt, problem, wait)
        sleep(wait)
        wait *= 2
    failure = mask_secrets(f"notifier {delivery.name} ({delivery.method}) could not deliver after {attempt} "
                           f"attempt(s): {problem}")
    log.error("%s", failure)
    return failure


def notify_all(deliveries: list[Delivery], message: Message) -> list[str]:
    """Send to each notifier whose ON includes the run's status; each final failure becomes a run warning."""
    failures = []
    for delivery in deliveries:
        if message.status not in delivery.notifier.outcomes and not message.is_test:
            continue
        failure = deliver(delivery, message)
        if failure is not None:
            failures.append(failure)
            message.result.warnings.append(failure)
    return failures
