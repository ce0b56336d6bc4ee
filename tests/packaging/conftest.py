"""One build of the wheel and the .deb per test session, shared by the pipx and the Debian package tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.packaging.installed import Built, build_all
from tests.support import need, need_binary


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Built:
    need_binary("dpkg-deb")
    need_binary("dpkg")
    need(Path("/usr/bin/python3").exists(), "Debian's /usr/bin/python3 (the .deb's interpreter) is missing")
    return build_all(tmp_path_factory.mktemp("dist"))
