"""Helpers of the incremental tests: a config with INCREMENTAL on, `ncbackup run` on it, the sets it made."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ncbackup.archive.index import read_index
from ncbackup.setformat import Manifest

CLI = [sys.executable, "-m", "ncbackup.cli"]


@dataclass
class Chain:
    """A tree backed up to one or more local storages with INCREMENTAL on."""

    root: Path          # the tmp folder
    data: Path          # what is backed up
    config: Path
    storages: list[Path]
    key: Path

    @classmethod
    def make(cls, tmp_path: Path, *, storages: int = 1, **fileset: object) -> Chain:
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        key = tmp_path / "key.txt"
        keygen = [*CLI, "keygen", "--output", str(key), "--signing-key", str(tmp_path / "signing.key")]
        assert subprocess.run(keygen, capture_output=True).returncode == 0
        chain = cls(tmp_path, data, tmp_path / "conf.json", [tmp_path / f"backups{n}" for n in range(storages)], key)
        chain.write_config(**fileset)
        return chain

    def write_config(self, *, storages: list[Path] | None = None, **fileset: object) -> None:
        parameters = {"FILESET_INCLUDE": str(self.data), "INCREMENTAL": "true", **fileset}
        config: dict[str, object] = {
            "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(self.root / "work"),
                        "STATE_FOLDER": str(self.root / "state"), "LOG_FOLDER": str(self.root / "run.log")},
            "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": parameters},
            "COMPRESSION": {"ACTION": "execute", "NAME": "compression"},
            "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(self.key)}},
        }
        for number, folder in enumerate(self.storages if storages is None else storages):
            config[f"STORAGE{number}"] = {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {
                "DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{folder}'}}"}}
        self.config.write_text(json.dumps(config))

    def run(self, *, expect_code: int = 0) -> str:
        ran = subprocess.run([*CLI, "run", "-c", str(self.config)], capture_output=True, text=True, timeout=300)
        assert ran.returncode == expect_code, ran.stdout + ran.stderr
        return ran.stdout + ran.stderr

    def set_ids(self, storage: int = 0) -> list[str]:
        host = self.storages[storage] / "web1"
        return sorted(path.name for path in host.iterdir()) if host.exists() else []

    def manifest(self, set_id: str, storage: int = 0) -> Manifest:
        return Manifest.from_json((self.storages[storage] / "web1" / set_id / "manifest.json").read_bytes())

    def files_metadata(self, set_id: str) -> dict:
        return dict(self.manifest(set_id).stream("files").metadata)

    def decrypt(self, set_id: str, stream_file: str) -> bytes:
        """A stream's plain bytes (age then zstd, by the stock tools)."""
        folder = self.storages[0] / "web1" / set_id
        encrypted = b"".join(path.read_bytes() for path in sorted(folder.glob(f"{stream_file}.age*")))
        plain = subprocess.run(["age", "-d", "-i", str(self.key)], input=encrypted, capture_output=True, check=True).stdout
        return subprocess.run(["zstd", "-d", "-c"], input=plain, capture_output=True, check=True).stdout

    def index(self, set_id: str) -> dict[str, tuple[str, str | None]]:
        """path (relative to data) -> (type, set holding it: None for this set)."""
        import io

        prefix = str(self.data).lstrip("/")
        entries = read_index(io.BytesIO(self.decrypt(set_id, "files-index.jsonl.zst")))
        return {entry.path[len(prefix):].lstrip("/") or ".": (entry.type, entry.set) for entry in entries}

    def tar_names(self, set_id: str) -> list[str]:
        """The members stored in a set's files stream (relative to data)."""
        import io
        import tarfile

        prefix = str(self.data).lstrip("/")
        with tarfile.open(fileobj=io.BytesIO(self.decrypt(set_id, "files.tar.zst")), mode="r:") as archive:
            return [member.name[len(prefix):].lstrip("/") or "." for member in archive.getmembers()]

    def log(self) -> str:
        return (self.root / "run.log").read_text()

    def state_files(self) -> list[Path]:
        return sorted((self.root / "state").glob("*.state"))
