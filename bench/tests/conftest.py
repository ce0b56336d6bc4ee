"""The CI skip policy of tests/conftest.py for the benchmark's own tests (conftest hooks only see their folder)."""

from __future__ import annotations

import pytest

from tests.support import fail_unlisted_skip


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    fail_unlisted_skip(outcome.get_result())
