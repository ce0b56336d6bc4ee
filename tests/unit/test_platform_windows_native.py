"""platform.py and process.py on a real Windows host: its own lock, taskkill, icacls and path rules.

Every test here needs Windows: on the Linux test machines they are skipped (an allowed CI skip), and
.github/workflows/windows.yml runs them on a Windows runner. Until such a runner has run them, they are
written but unverified (docs/windows.md says so).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from ncbackup import platform, process
from ncbackup.engine.lock import AlreadyRunning, single_instance
from ncbackup.errors import CommandFailed
from tests.support import NOT_WINDOWS, need


@pytest.fixture(autouse=True)
def windows_only():
    need(sys.platform == "win32", NOT_WINDOWS)


def test_a_second_holder_of_the_lock_is_refused_and_told_who_holds_it(tmp_path):
    lock = tmp_path / "ncbackup.lock"
    with single_instance(lock, config="c:\\ncbackup\\conf.json") as me:
        with pytest.raises(AlreadyRunning) as caught, single_instance(lock):
            pass
        assert caught.value.holder.pid == me.pid
    with single_instance(lock):   # released: taken again
        pass


def test_a_timeout_kills_the_program_and_its_child(tmp_path):
    started = time.monotonic()
    script = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; time.sleep(600)'])"
    with pytest.raises(CommandFailed) as caught:
        process.run([sys.executable, "-c", script], timeout_seconds=2)
    assert caught.value.timed_out and time.monotonic() - started < 30


def test_restrict_to_owner_leaves_one_explicit_entry(tmp_path):
    key = tmp_path / "key.txt"
    key.write_text("secret")
    platform.restrict_to_owner(key)
    listing = process.run(["icacls", str(key)]).text
    entries = [line for line in listing.splitlines()[:-1] if ":" in line.replace(str(key), "")]
    assert len(entries) == 1 and "(I)" not in listing and entries[0].rstrip().endswith("(F)")


def test_windows_paths_are_absolute_here():
    assert Path("c:\\backup").is_absolute() and Path("\\\\server\\share\\x").is_absolute()
    assert platform.host_system_name() == "Windows"


def test_an_exclude_under_a_shadowed_volume_is_excluded_in_the_shadow_too():
    from ncbackup.sources.files import SnapshotView, plan_reads

    device = Path("\\\\?\\GLOBALROOT\\Device\\HarddiskVolumeShadowCopy3\\")
    view = SnapshotView("SNAPSHOT", label="vss:{x}", mapping={Path("C:\\"): device})
    plan = plan_reads([Path("c:\\inetpub")], ["c:\\inetpub\\logs"], [view])
    assert plan.roots == [(device / "inetpub", Path("c:\\inetpub"))]
    assert str(device / "inetpub\\logs") in plan.excludes
