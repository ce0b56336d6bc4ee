"""Notifiers by GENERAL MESSAGE_CONFIG_METHOD. One line per notifier."""

from __future__ import annotations

import logging
from typing import Any

from ncbackup.config.settings import GeneralSettings
from ncbackup.engine.result import RunResult
from ncbackup.errors import BackupError
from ncbackup.notify.base import Notifier
from ncbackup.notify.post_report import PostReport

log = logging.getLogger(__name__)

NOTIFIERS: dict[str, Any] = {
    "post": PostReport,
}


def build_notifiers(general: GeneralSettings) -> list[Notifier]:
    """The notifiers GENERAL asks for (none without MESSAGE_CONFIG_COMMAND)."""
    if not general.report_url:
        return []
    factory = NOTIFIERS.get((general.report_method or "post").lower())
    return [factory.from_general(general)] if factory else []


def notify_all(notifiers: list[Notifier], result: RunResult, *, log_text: str) -> list[str]:
    """Send to every notifier; return the failures as sentences (already logged), never raise."""
    failures = []
    for notifier in notifiers:
        try:
            notifier.send(result, log_text=log_text)  # type: ignore[call-arg, arg-type]  # until notifiers take a Message
            log.info("report sent via %s", notifier.name)
        except BackupError as error:
            log.error("the report via %s could not be sent: %s", notifier.name, error)
            failures.append(str(error))
        except Exception as error:  # noqa: BLE001 - a notifier bug must not turn a good backup into a crash
            log.error("the report via %s failed unexpectedly: %s: %s", notifier.name, type(error).__name__, error)
            failures.append(str(error))
    return failures
