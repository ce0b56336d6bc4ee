"""Helpers every test module imports (`from tests.support import need`). On CI (CI=true) a missing tool or server is a failure, never a skip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ON_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, why: str) -> None:
    """Skip locally when a prerequisite is missing; fail on CI."""
    if condition:
        return
    if ON_CI:
        pytest.fail(f"prerequisite missing on CI: {why}")
    pytest.skip(why)


def need_binary(*names: str) -> str:
    """Return the path of the first program found among names; skip (fail on CI) if none is."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    need(False, f"none of {', '.join(names)} is installed")
    return ""  # unreachable


