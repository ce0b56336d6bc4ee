"""Every notifier module is registered, and GENERAL picks the notifiers."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import ncbackup.notify as notify_package
from ncbackup.config.settings import GeneralSettings
from ncbackup.notify.registry import NOTIFIERS, build_notifiers

NOT_NOTIFIERS = {"base", "registry"}


def test_every_notifier_module_is_registered():
    modules = {m.name for m in pkgutil.iter_modules(notify_package.__path__)} - NOT_NOTIFIERS
    registered = {factory.__module__.rsplit(".", 1)[-1] for factory in NOTIFIERS.values()}
    assert modules == registered


def test_no_report_url_means_no_notifier():
    assert build_notifiers(GeneralSettings(hostname="h", work_folder=Path("/tmp"))) == []


def test_report_url_builds_the_post_notifier():
    general = GeneralSettings(hostname="h", work_folder=Path("/tmp"), report_url="http://127.0.0.1:1/r")
    (notifier,) = build_notifiers(general)
    assert notifier.name == "post" and notifier.url == "http://127.0.0.1:1/r"
