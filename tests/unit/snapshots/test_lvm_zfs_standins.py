"""LVM and ZFS snapshots against stand-in executables: the exact commands, and the release on every failure path.

The test machines have no device-mapper and no ZFS module, so nothing here touches a real volume.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ncbackup.errors import BackupError
from ncbackup.snapshots.lvm import default_mount_options, parse_volume, size_bytes
from ncbackup.snapshots.naming import is_own_name
from tests.support import REPO
from tests.unit.snapshots import standins

TIMEOUT_SECONDS = 120


@pytest.fixture
def stand(tmp_path, monkeypatch):
    folder = standins.install(tmp_path / "bin", sys.executable)
    log = tmp_path / "calls.jsonl"
    for key, value in standins.environment(folder, log).items():
        monkeypatch.setenv(key, value)
    return log


def _config(tmp_path: Path, snapshot: dict, *, between: dict | None = None, include: str | None = None) -> Path:
    live = tmp_path / "live"
    live.mkdir(exist_ok=True)
    (live / "index.html").write_text("live\n")
    (tmp_path / "home").mkdir(exist_ok=True)
    sections = {
        "SNAPSHOT": {"ACTION": "execute", "NAME": "snapshot", "PARAMETERS": snapshot},
        **(between or {}),
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": include or str(live)}},
    }
    general = {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log"),
               "HOME_FOLDER": str(tmp_path / "home")}
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({"GENERAL": general, **sections}))
    return path


def _snapshot(config_path: Path):
    from ncbackup.config import load_config
    from ncbackup.engine.plan import SnapshotStep, build_plan

    (step,) = [step for step in build_plan(load_config(config_path)).steps if isinstance(step, SnapshotStep)]
    return step.snapshot


def _lvm(tmp_path: Path, **extra: str) -> dict:
    return {"METHOD": "lvm", "SOURCE": "/dev/vg0/data", "SIZE": "1G", "MOUNT_POINT": str(tmp_path / "live"), **extra}


def test_lvm_takes_mounts_unmounts_and_removes_with_the_exact_commands(tmp_path, stand):
    snapshot = _snapshot(_config(tmp_path, _lvm(tmp_path)))
    taken = snapshot.take()
    (lv,) = taken.ids
    name = lv.removeprefix("vg0/")
    mount_dir = tmp_path / "work" / "snapshots" / name
    assert is_own_name(name, snapshot.prefix)
    assert standins.calls(stand) == [
        ["lvcreate", "--snapshot", "--size", "1G", "--name", name, "vg0/data"],
        ["mount", "-o", "ro", f"/dev/vg0/{name}", str(mount_dir)],
    ]
    assert taken.mapping == {(tmp_path / "live").resolve(): mount_dir}
    assert snapshot.release() == []
    assert standins.calls(stand)[2:] == [["umount", str(mount_dir)], ["lvremove", "-f", lv]]
    assert not mount_dir.exists()
    assert snapshot.release() == [] and len(standins.calls(stand)) == 4     # idempotent


def test_lvm_freeze_thaws_even_when_lvcreate_fails_and_removes_the_half_made_volume(tmp_path, stand, monkeypatch):
    monkeypatch.setenv("STANDIN_FAIL", "lvcreate")
    snapshot = _snapshot(_config(tmp_path, _lvm(tmp_path, FREEZE="yes")))
    with pytest.raises(BackupError, match="lvcreate exited with status 5"):
        snapshot.take()
    live = str(tmp_path / "live")
    programs = [call[:2] for call in standins.calls(stand)]
    assert programs == [["fsfreeze", "--freeze"], ["lvcreate", "--snapshot"], ["fsfreeze", "--unfreeze"],
                        ["lvremove", "-f"]]
    assert standins.calls(stand)[0][2] == live and standins.calls(stand)[2][2] == live
    assert snapshot.release() == []   # nothing left to do, and no warning for a volume that was never made


def test_lvm_mount_failure_removes_the_snapshot_volume(tmp_path, stand, monkeypatch):
    monkeypatch.setenv("STANDIN_FAIL", "mount")
    snapshot = _snapshot(_config(tmp_path, _lvm(tmp_path, MOUNT_OPTIONS="ro,noexec")))
    with pytest.raises(BackupError, match="mount exited with status 5"):
        snapshot.take()
    calls = standins.calls(stand)
    assert calls[1][:3] == ["mount", "-o", "ro,noexec"]
    assert [call[0] for call in calls] == ["lvcreate", "mount", "umount", "lvremove"]
    assert list((tmp_path / "work" / "snapshots").iterdir()) == []


def test_lvm_a_volume_that_cannot_be_removed_is_a_warning_naming_the_command(tmp_path, stand, monkeypatch):
    snapshot = _snapshot(_config(tmp_path, _lvm(tmp_path)))
    (lv,) = snapshot.take().ids
    monkeypatch.setenv("STANDIN_FAIL", "lvremove")
    (warning,) = snapshot.release()
    assert f"lvremove -f {lv}" in warning and "the next run removes it" in warning


def test_lvm_cleanup_removes_only_this_configs_leftovers(tmp_path, stand, monkeypatch):
    snapshot = _snapshot(_config(tmp_path, _lvm(tmp_path)))
    own = snapshot.prefix + "20200101T000000Z"
    foreign = ["data", "ncbackup-db2-12345678-20200101T000000Z", snapshot.prefix + "manual", "backup-snap"]
    monkeypatch.setenv("STANDIN_LVS_OUTPUT", "".join(f"  {name}\n" for name in [*foreign, own]))
    lines = snapshot.cleanup_leftovers()
    assert len(lines) == 1 and own in lines[0]
    assert [call for call in standins.calls(stand) if call[0] == "lvremove"] == [["lvremove", "-f", f"vg0/{own}"]]


def test_lvm_check_compares_the_free_space_with_size(tmp_path, stand, monkeypatch):
    snapshot = _snapshot(_config(tmp_path, _lvm(tmp_path, SIZE="2G")))
    monkeypatch.setenv("STANDIN_VGS_OUTPUT", f"  {1 << 30}\n")
    lines = snapshot.check()
    assert all(line.ok for line in lines if "free" not in line.text)
    (free,) = [line for line in lines if "free" in line.text]
    assert not free.ok and "less than SIZE 2G" in free.text
    monkeypatch.setenv("STANDIN_VGS_OUTPUT", f"  {3 << 30}\n")
    assert all(line.ok for line in snapshot.check())
    assert ["vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_free", "vg0"] in standins.calls(stand)
    assert ["lvs", "--noheadings", "-o", "lv_name", "vg0/data"] in standins.calls(stand)


def test_lvm_size_volume_names_and_mount_options_as_data():
    assert size_bytes("5G") == 5 << 30 and size_bytes("512m") == 512 << 20 and size_bytes("10%ORIGIN") is None
    assert parse_volume("vg0/data") == parse_volume("/dev/vg0/data") == ("vg0", "data")
    assert parse_volume("/dev/mapper/my--vg-web--data") == ("my-vg", "web-data")
    assert parse_volume("data") is None
    assert default_mount_options("xfs") == "ro,nouuid" and default_mount_options("ext4") == "ro"


def test_lvm_without_size_is_a_config_error_naming_the_key(tmp_path, stand):
    from ncbackup.errors import ConfigError

    with pytest.raises(ConfigError, match="SIZE"):
        _snapshot(_config(tmp_path, {"METHOD": "lvm", "SOURCE": "vg0/data"}))


def test_zfs_snapshot_is_read_through_dot_zfs_and_destroyed(tmp_path, stand, monkeypatch):
    monkeypatch.setenv("STANDIN_ZFS_OUTPUT", f"{tmp_path / 'live'}\n")    # what `zfs get mountpoint` answers
    snapshot = _snapshot(_config(tmp_path, {"METHOD": "zfs", "SOURCE": "tank/www"}))
    taken = snapshot.take()
    (full,) = taken.ids
    dataset, _, name = full.partition("@")
    assert dataset == "tank/www" and is_own_name(name, snapshot.prefix)
    assert taken.mapping == {(tmp_path / "live").resolve(): tmp_path / "live" / ".zfs" / "snapshot" / name}
    assert snapshot.release() == []
    assert standins.calls(stand) == [
        ["zfs", "get", "-H", "-o", "value", "mountpoint", "tank/www"],
        ["zfs", "snapshot", full],
        ["zfs", "destroy", full],
    ]


def test_zfs_failed_snapshot_is_destroyed_quietly_and_cleanup_spares_others(tmp_path, stand, monkeypatch):
    snapshot = _snapshot(_config(tmp_path, {"METHOD": "zfs", "SOURCE": "tank/www", "MOUNT_POINT": str(tmp_path / "live")}))
    monkeypatch.setenv("STANDIN_FAIL", "zfs:snapshot")
    with pytest.raises(BackupError, match="zfs exited with status 5"):
        snapshot.take()
    assert [call[1] for call in standins.calls(stand)] == ["snapshot", "destroy"]
    assert snapshot.release() == []
    own = f"tank/www@{snapshot.prefix}20200101T000000Z"
    others = ["tank/www@daily-2020", f"tank/www/child@{snapshot.prefix}20200101T000000Z", "tank/www@ncbackup-x"]
    monkeypatch.setenv("STANDIN_ZFS_OUTPUT", "".join(f"{name}\n" for name in [*others, own]))
    monkeypatch.delenv("STANDIN_FAIL")
    assert len(snapshot.cleanup_leftovers()) == 1
    assert [call for call in standins.calls(stand) if call[1] == "destroy"][-1] == ["zfs", "destroy", own]


def _cli_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


def test_lvm_is_released_when_the_backup_fails(tmp_path, stand):
    path = _config(tmp_path, _lvm(tmp_path), include=str(tmp_path / "live" / "not-there"))
    completed = subprocess.run([sys.executable, "-m", "ncbackup.cli", "run", "-c", str(path), "--json"],
                               capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=_cli_env(tmp_path))
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert [call[0] for call in standins.calls(stand)] == ["lvs", "lvcreate", "mount", "umount", "lvremove"]


def test_lvm_is_released_when_the_run_gets_sigterm(tmp_path, stand):
    marker = tmp_path / "sleeping"
    (tmp_path / "home" / "sleeper").mkdir(parents=True)
    (tmp_path / "home" / "sleeper" / "sleeper.py").write_text(textwrap.dedent(f"""
        import time
        from pathlib import Path
        Path({str(marker)!r}).write_text("x")
        time.sleep(600)
    """))
    sleeper = {"ACTION": "execute", "NAME": "sleeper", "EXECUTE_WITH": "python", "EXECUTABLE": "sleeper.py"}
    path = _config(tmp_path, _lvm(tmp_path), between={"SLEEPER": sleeper})
    child = subprocess.Popen([sys.executable, "-m", "ncbackup.cli", "run", "-c", str(path), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_cli_env(tmp_path))
    try:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not marker.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the run never reached its sleeping step"
            time.sleep(0.1)
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 2, stdout + stderr
    assert "stopped by SIGTERM" in json.loads(stdout)["error"]
    assert [call[0] for call in standins.calls(stand)] == ["lvs", "lvcreate", "mount", "umount", "lvremove"]


def test_every_method_module_is_registered():
    import pkgutil

    import ncbackup.snapshots as package
    from ncbackup.snapshots.registry import SNAPSHOTS

    shared = {"base", "naming", "freeze", "local", "registry"}
    # _cloud is the cloud methods' shared base, as sources/_dbsupport is the database sources'.
    modules = {info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_")} - shared
    registered = {factory.__module__.rpartition(".")[2] for factory in SNAPSHOTS.values()}
    assert modules <= registered, f"modules without a METHOD in snapshots/registry.py: {sorted(modules - registered)}"
