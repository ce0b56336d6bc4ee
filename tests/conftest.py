"""Shared fixtures; the helpers live in tests/support.py. On CI (CI=true) a missing tool or server fails."""

from __future__ import annotations

import sys

import pytest

from tests.support import REPO, need, need_binary  # noqa: F401 - re-exported for older imports


@pytest.fixture

def ncbackup_cmd() -> list[str]:
    """How the e2e tests start the CLI: the installed module under this interpreter."""
    return [sys.executable, "-m", "ncbackup.cli"]
