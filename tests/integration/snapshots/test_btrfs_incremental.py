"""INCREMENTAL behind a btrfs SNAPSHOT: each run reads a new snapshot (new device numbers), yet an unchanged
file is carried and a changed one stored, under its live name."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time

from ncbackup.setformat import Manifest
from tests.integration.snapshots.test_btrfs_snapshot import _cli, _site


def _plain(site, set_id: str, stream_file: str) -> bytes:
    folder = site.backups / "web1" / set_id
    encrypted = b"".join(path.read_bytes() for path in sorted(folder.glob(f"{stream_file}.age*")))
    plain = subprocess.run(["age", "-d", "-i", str(site.key)], input=encrypted, capture_output=True, check=True).stdout
    return subprocess.run(["zstd", "-d", "-c"], input=plain, capture_output=True, check=True).stdout


def test_incremental_sets_read_from_snapshots_carry_what_did_not_change(tmp_path, btrfs_mount):
    site = _site(tmp_path, btrfs_mount)
    site.write_config()
    config = json.loads(site.config.read_text())
    config["FILESET"]["PARAMETERS"]["INCREMENTAL"] = True
    config["GENERAL"]["STATE_FOLDER"] = str(tmp_path / "state")
    site.config.write_text(json.dumps(config))
    for change in (None, "changed after the first set\n"):
        if change is not None:
            # Take the device number the first snapshot had (btrfs hands a freed one out again), so the next
            # snapshot surely reads under another one.
            holder = site.volume / "holder"
            subprocess.run(["btrfs", "subvolume", "create", str(holder)], check=True, capture_output=True, timeout=60)
            (holder / "x").write_text("x")
            (site.www / "html" / "index.html").write_text(change)
            time.sleep(1.05)
        completed = _cli("run", "-c", str(site.config))
        assert completed.returncode == 0, completed.stdout + completed.stderr
    first, second = sorted(path.name for path in (site.backups / "web1").iterdir())
    manifest = Manifest.from_json((site.backups / "web1" / second / "manifest.json").read_bytes())
    assert manifest.parent == first
    with tarfile.open(fileobj=io.BytesIO(_plain(site, second, "files.tar.zst")), mode="r:") as archive:
        stored = [member.name for member in archive.getmembers()]
    live = str(site.www).lstrip("/")
    assert stored == [f"{live}/html/index.html"]          # data.bin carried although read from a new device
    index = [json.loads(line) for line in _plain(site, second, "files-index.jsonl.zst").splitlines()]
    assert {entry["path"]: entry.get("set") for entry in index}[f"{live}/data.bin"] == first
    assert site.snapshots() == ["holder"]
