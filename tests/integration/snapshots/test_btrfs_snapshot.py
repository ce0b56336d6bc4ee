"""A FILESET behind a real btrfs SNAPSHOT (loop-mounted image), run through the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.support import REPO

TIMEOUT_SECONDS = 120


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ncbackup.cli", *args], capture_output=True, text=True,
                          timeout=TIMEOUT_SECONDS, env=_env())


def subvolumes(mount_point: Path) -> list[str]:
    """The paths (relative to the file system's top) of every subvolume on it."""
    listing = subprocess.run(["btrfs", "subvolume", "list", str(mount_point)], capture_output=True, text=True,
                             check=True, timeout=60).stdout
    return sorted(line.split(" path ", 1)[1] for line in listing.splitlines() if " path " in line)


class Site:
    def __init__(self, root: Path, volume: Path) -> None:
        self.root, self.volume = root, volume
        self.www = volume / "www"
        subprocess.run(["btrfs", "subvolume", "create", str(self.www)], check=True, capture_output=True, timeout=60)
        (self.www / "html").mkdir()
        (self.www / "html" / "index.html").write_text("before the snapshot\n")
        (self.www / "data.bin").write_bytes(os.urandom(300_000))
        self.key = root / "key.txt"
        made = _cli("keygen", "--output", str(self.key), "--signing-key", str(root / "signing.key"))
        assert made.returncode == 0, made.stderr
        self.backups = root / "backups"
        self.config = root / "conf.json"
        (root / "home").mkdir()

    def program(self, name: str, body: str) -> dict:
        folder = self.root / "home" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.py").write_text(textwrap.dedent(body))
        return {"ACTION": "execute", "NAME": name, "EXECUTE_WITH": "python", "EXECUTABLE": f"{name}.py"}

    def write_config(self, *, between: dict | None = None, include: str | None = None) -> None:
        sections = {
            "SNAPSHOT": {"ACTION": "execute", "NAME": "snapshot",
                         "PARAMETERS": {"METHOD": "btrfs", "SOURCE": str(self.www)}},
            **(between or {}),
            "FILESET": {"ACTION": "execute", "NAME": "filesbackup",
                        "PARAMETERS": {"FILESET_INCLUDE": include or str(self.www)}},
            "COMPRESSION": {"ACTION": "execute", "NAME": "compression"},
            "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(self.key)}},
            "STORAGE": {"ACTION": "execute", "NAME": "storage",
                        "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": {"LOCAL_BACKUP": str(self.backups)}}},
        }
        general = {"HOSTNAME": "web1", "WORK_FOLDER": str(self.root / "work"), "LOG_FOLDER": str(self.root / "log"),
                   "HOME_FOLDER": str(self.root / "home")}
        self.config.write_text(json.dumps({"GENERAL": general, **sections}, indent=2))

    def snapshots(self) -> list[str]:
        return [path for path in subvolumes(self.volume) if path != "www"]


def _site(tmp_path: Path, btrfs_mount: Path) -> Site:
    root = tmp_path / "site"
    root.mkdir()
    return Site(root, btrfs_mount)


def test_fileset_behind_btrfs_snapshot_backs_up_the_snapshot_under_live_names(tmp_path, btrfs_mount):
    site = _site(tmp_path, btrfs_mount)
    # Runs after the snapshot is taken and before the FILESET reads: what it writes must not be in the backup.
    writer = site.program("writer", f"""
        from pathlib import Path
        Path({str(site.www / "html" / "index.html")!r}).write_text("written during the backup\\n")
        Path({str(site.www / "html" / "new.html")!r}).write_text("new during the backup\\n")
    """)
    site.write_config(between={"WRITER": writer})
    completed = _cli("run", "-c", str(site.config), "--json")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(completed.stdout)
    steps = {step["name"]: step for step in report["steps"]}
    (label,) = steps["SNAPSHOT"]["snapshots"]
    assert label.startswith("btrfs:ncbackup-web1-")
    assert steps["FILESET+COMPRESSION+ENCRYPTION+STORAGE"]["snapshots"] == [label]
    assert site.snapshots() == []                                     # released after success
    assert not (site.volume / ".ncbackup-snapshots").exists()        # and the folder it made is gone

    target = tmp_path / "restored"
    restored = _cli("restore", "-c", str(site.config), "--latest", "--target", str(target))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    live = target / str(site.www).lstrip("/")                        # the live path, not the snapshot's
    assert (live / "html" / "index.html").read_text() == "before the snapshot\n"
    assert not (live / "html" / "new.html").exists()
    assert (live / "data.bin").read_bytes() == (site.www / "data.bin").read_bytes()
    assert not any(".ncbackup-snapshots" in str(path) for path in target.rglob("*"))

    assert _files_metadata(site)["snapshot"] == label                # the manifest says where the stream was read


def _files_metadata(site: Site) -> dict:
    """The files stream's metadata in the one set's manifest, read as `ncbackup restore` reads it (signature checked)."""
    from ncbackup.commands.setselect import trust_for
    from ncbackup.config import load_config
    from ncbackup.setformat import open_set
    from ncbackup.storage.local import LocalStorage

    storage = LocalStorage(site.backups / "web1")
    (set_id,) = [path.name for path in (site.backups / "web1").iterdir() if path.is_dir()]
    manifest = open_set(storage, set_id, trust_for(load_config(site.config), [], allow_unsigned=False)).manifest
    return dict(next(stream for stream in manifest.streams if stream.name == "files").metadata)


def test_no_btrfs_snapshot_remains_after_a_failed_stream(tmp_path, btrfs_mount):
    site = _site(tmp_path, btrfs_mount)
    site.write_config(include=str(site.www / "not-there"))
    completed = _cli("run", "-c", str(site.config), "--json")
    assert completed.returncode == 2, completed.stdout + completed.stderr
    report = json.loads(completed.stdout)
    assert report["steps"][0]["status"] == "ok" and report["steps"][0]["snapshots"]
    assert "not-there" in report["steps"][1]["error"]
    assert site.snapshots() == []


def _start_held_run(site: Site, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """Start `ncbackup run` with a step after the snapshot that sleeps; return once that step runs."""
    marker = tmp_path / "sleeping"
    sleeper = site.program("sleeper", f"""
        import time
        from pathlib import Path
        Path({str(marker)!r}).write_text("x")
        time.sleep(600)
    """)
    site.write_config(between={"SLEEPER": sleeper})
    child = subprocess.Popen([sys.executable, "-m", "ncbackup.cli", "run", "-c", str(site.config), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not marker.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"the run never reached its sleeping step: {child.communicate()}")
        time.sleep(0.1)
    return child, marker


def test_sigterm_mid_run_releases_the_btrfs_snapshot(tmp_path, btrfs_mount):
    site = _site(tmp_path, btrfs_mount)
    child, _marker = _start_held_run(site, tmp_path)
    try:
        assert len(site.snapshots()) == 1                             # held while the run goes on
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=30)               # the 600 s sleep was killed, not waited for
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 2, stdout + stderr
    assert "Traceback" not in stderr
    report = json.loads(stdout)
    assert "stopped by SIGTERM" in report["error"]
    statuses = {step["name"]: step["status"] for step in report["steps"]}
    assert statuses["SLEEPER"] == "failed" and statuses["FILESET+COMPRESSION+ENCRYPTION+STORAGE"] == "skipped"
    assert site.snapshots() == []


def test_the_next_run_removes_what_a_sigkilled_run_left_and_nothing_else(tmp_path, btrfs_mount):
    site = _site(tmp_path, btrfs_mount)
    child, _marker = _start_held_run(site, tmp_path)
    child.kill()
    child.communicate(timeout=30)
    (left,) = site.snapshots()
    assert Path(left).name.startswith("ncbackup-web1-")
    # Not this config's: another host's, another config's, and one a person made.
    folder = site.volume / ".ncbackup-snapshots"
    tag = Path(left).name.split("-")[2]
    others = [f"ncbackup-db2-{tag}-20200101T000000Z", "ncbackup-web1-00000000-20200101T000000Z", f"ncbackup-web1-{tag}-manual"]
    for name in others:
        subprocess.run(["btrfs", "subvolume", "snapshot", "-r", str(site.www), str(folder / name)], check=True,
                       capture_output=True, timeout=60)
    site.write_config()
    completed = _cli("run", "-c", str(site.config), "--json")
    assert completed.returncode == 1, completed.stdout + completed.stderr   # a warning: a killed run left one
    report = json.loads(completed.stdout)
    assert any("an interrupted run left behind" in warning for warning in report["steps"][0]["warnings"])
    assert sorted(Path(path).name for path in site.snapshots()) == sorted(others)
