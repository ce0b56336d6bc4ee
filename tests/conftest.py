"""Shared fixtures; the helpers (need, need_binary, REPO) live in tests/support.py.

On CI (CI=1/yes/true) a missing tool or server fails, and so does any skip ALLOWED_CI_SKIPS does not list.
"""

from __future__ import annotations

import sys

import pytest

from tests.support import fail_unlisted_skip


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    fail_unlisted_skip(outcome.get_result())


@pytest.fixture
def ncbackup_cmd() -> list[str]:
    """How the e2e tests start the CLI: the installed module under this interpreter."""
    return [sys.executable, "-m", "ncbackup.cli"]


@pytest.fixture(autouse=True)
def _forget_registered_secrets():
    """The masking registry lives as long as the process: each test starts with none registered."""
    from ncbackup.engine.logs import clear_secrets

    clear_secrets()
    yield
    clear_secrets()
