"""``ncbackup list / verify / restore`` as a user runs them, on sets made by ``ncbackup run`` from a legacy-style config."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from ncbackup.sources.base import StreamReport
from tests.support import need_binary


@dataclass
class Site:
    root: Path
    data: Path
    config: Path
    key: Path
    backups: Path

    @property
    def host_folder(self) -> Path:
        return self.backups / "web1"

    def set_ids(self) -> list[str]:
        return sorted(p.name for p in self.host_folder.iterdir() if p.is_dir())

    def parts(self, set_id: str, stream_file: str) -> list[Path]:
        return sorted((self.host_folder / set_id).glob(f"{stream_file}.[0-9]*"))


def _run(cmd: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300)


def _make_data(data: Path) -> None:
    (data / "etc" / "app").mkdir(parents=True)
    for index in range(40):
        (data / "etc" / "app" / f"setting-{index:02}.conf").write_text(f"key{index} = value {index}\n" * 40)
    (data / "var").mkdir()
    (data / "var" / "blob.bin").write_bytes(os.urandom(2_500_000))
    (data / "var" / "empty-dir").mkdir()
    os.symlink("blob.bin", data / "var" / "link-to-blob")


def _config(site_root: Path, data: Path, key: Path, backups: Path, *, file_size_mb: str = "1") -> str:
    return json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(site_root / "work"), "LOG_FOLDER": str(site_root / "log"),
                    "HOME_FOLDER": str(site_root)},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "EXECUTE_WITH": "python", "EXECUTABLE": "filesbackup.py",
                    "PARAMETERS": {"FILESET_INCLUDE": f"{data} ", "TAR_COMMAND": "tar"}},
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {"REMOVE_OBJECTIVES": "True"}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption",
                       "PARAMETERS": {"KEY_FILE": str(key), "FILE_SIZE": file_size_mb, "REMOVE_OBJECTIVES": "True"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{backups}'}}"}},
    }, indent=2)


@pytest.fixture
def site(tmp_path, ncbackup_cmd) -> Site:
    """A server with data, an age identity, a legacy-style config, and one backup made by `ncbackup run`."""
    root = tmp_path / "site"
    data = root / "data"
    _make_data(data)
    key = root / "key.txt"
    result = _run(ncbackup_cmd, "keygen", "--output", str(key), "--signing-key", str(key.parent / "signing.key"))
    assert result.returncode == 0, result.stderr
    backups = root / "backups"
    config = root / "conf.json"
    config.write_text(_config(root, data, key, backups))
    result = _run(ncbackup_cmd, "run", "-c", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    return Site(root=root, data=data, config=config, key=key, backups=backups)


def _tree(root: Path) -> dict[str, object]:
    """Relative path -> file bytes, link target, or 'dir', for comparing restored trees."""
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_symlink():
            out[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            out[relative] = "dir"
        else:
            out[relative] = path.read_bytes()
    return out


def _restored_data(target: Path, site: Site) -> Path:
    # Members are stored relative to / (COMPAT: etc/hosts), so the tree lands under target/<abs path>.
    return target / str(site.data).lstrip("/")


def test_list_verify_restore_round_trip(site, ncbackup_cmd, tmp_path):
    listed = _run(ncbackup_cmd, "list", "-c", str(site.config))
    assert listed.returncode == 0, listed.stderr
    (set_id,) = site.set_ids()
    assert set_id in listed.stdout and "complete" in listed.stdout and "files" in listed.stdout

    as_json = json.loads(_run(ncbackup_cmd, "list", "-c", str(site.config), "--json").stdout)
    assert as_json[0]["set_id"] == set_id and as_json[0]["is_complete"] is True
    assert {s["name"] for s in as_json[0]["streams"]} >= {"files"}

    verified = _run(ncbackup_cmd, "verify", "-c", str(site.config), "--latest")
    assert verified.returncode == 0, verified.stderr
    assert "decrypted and decompressed to the end: files" in verified.stdout

    target = tmp_path / "restored"
    restored = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--set", set_id, "--target", str(target))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert _tree(_restored_data(target, site)) == _tree(site.data)
    # The file index is a stream of its own: it must not be dropped into the restored tree.
    assert not list(target.rglob("files-index*"))


def test_restore_only_matching_paths(site, ncbackup_cmd, tmp_path):
    target = tmp_path / "restored"
    pattern = str(site.data / "etc" / "app" / "setting-1*").lstrip("/")
    result = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--latest", "--path", pattern, "--target", str(target))
    assert result.returncode == 0, result.stderr
    restored = sorted(p.name for p in target.rglob("*.conf"))
    assert restored == [f"setting-{i}.conf" for i in range(10, 20)]
    assert not list(target.rglob("blob.bin"))


def test_verify_names_bit_flipped_part_and_restore_stops_leaving_nothing_good_looking(site, ncbackup_cmd, tmp_path):
    (set_id,) = site.set_ids()
    parts = site.parts(set_id, "files.tar.zst.age")
    assert len(parts) >= 3
    victim = parts[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))

    verified = _run(ncbackup_cmd, "verify", "-c", str(site.config))
    assert verified.returncode == 2
    assert victim.name in verified.stderr
    assert "Traceback" not in verified.stderr

    target = tmp_path / "restored"
    restored = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--target", str(target))
    assert restored.returncode == 2
    assert victim.name in restored.stderr
    # Whatever was extracted before the bad part is complete files; nothing half-written under a real name.
    assert not [p for p in target.rglob("*") if p.name.startswith(".ncbackup")]
    blob = _restored_data(target, site) / "var" / "blob.bin"
    assert not blob.exists() or blob.read_bytes() == (site.data / "var" / "blob.bin").read_bytes()


def test_verify_names_truncated_part(site, ncbackup_cmd):
    (set_id,) = site.set_ids()
    last = site.parts(set_id, "files.tar.zst.age")[-1]
    last.write_bytes(last.read_bytes()[:-100])
    result = _run(ncbackup_cmd, "verify", "-c", str(site.config))
    assert result.returncode == 2
    assert last.name in result.stderr and "truncated" in result.stderr


def test_verify_names_missing_part(site, ncbackup_cmd):
    (set_id,) = site.set_ids()
    middle = site.parts(set_id, "files.tar.zst.age")[1]
    middle.unlink()
    result = _run(ncbackup_cmd, "verify", "-c", str(site.config))
    assert result.returncode == 2
    assert middle.name in result.stderr and "missing" in result.stderr


def test_part_from_another_set_is_caught(site, ncbackup_cmd, tmp_path):
    (first_id,) = site.set_ids()
    (site.data / "var" / "new.txt").write_text("changed since the first backup\n")
    assert _run(ncbackup_cmd, "run", "-c", str(site.config)).returncode == 0
    second_id = [s for s in site.set_ids() if s != first_id][0]
    # An operator mixes parts of two nights while copying them back.
    mixed = site.parts(first_id, "files.tar.zst.age")[1]
    mixed.write_bytes(site.parts(second_id, "files.tar.zst.age")[1].read_bytes())

    result = _run(ncbackup_cmd, "verify", "-c", str(site.config), "--set", first_id)
    assert result.returncode == 2
    assert mixed.name in result.stderr and "another set" in result.stderr
    assert _run(ncbackup_cmd, "verify", "-c", str(site.config), "--set", second_id).returncode == 0


def test_wrong_key_fails_restore_and_verify(site, ncbackup_cmd, tmp_path):
    stranger = tmp_path / "stranger.txt"
    assert _run(ncbackup_cmd, "keygen", "--output", str(stranger)).returncode == 0
    verified = _run(ncbackup_cmd, "verify", "-c", str(site.config), "--key-file", str(stranger))
    assert verified.returncode == 2 and "Traceback" not in verified.stderr
    target = tmp_path / "restored"
    restored = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--key-file", str(stranger), "--target", str(target))
    assert restored.returncode == 2 and "Traceback" not in restored.stderr
    assert len(restored.stderr.strip().splitlines()) == 1
    assert not any(p.is_file() for p in target.rglob("*"))


def test_write_only_server_key_cannot_restore_and_says_so(site, ncbackup_cmd, tmp_path):
    recipient = [line.split(": ")[1] for line in site.key.read_text().splitlines() if "public key" in line][0]
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(recipient + "\n")
    result = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--key-file", str(recipients), "--target", str(tmp_path / "t"))
    assert result.returncode == 2
    assert "recipients" in result.stderr
    # verify still checks sizes and hashes with a recipients-only config key
    config = json.loads(site.config.read_text())
    config["ENCRYPTION"]["PARAMETERS"]["KEY_FILE"] = str(recipients)
    config["ENCRYPTION"]["PARAMETERS"]["SIGNING_KEY"] = str(site.key.parent / "signing.key")
    site.config.write_text(json.dumps(config))
    verified = _run(ncbackup_cmd, "verify", "-c", str(site.config))
    assert verified.returncode == 0, verified.stderr
    assert "not decrypted" in verified.stdout


def test_non_empty_target_is_refused_unless_forced(site, ncbackup_cmd, tmp_path):
    target = tmp_path / "restored"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    refused = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--target", str(target))
    assert refused.returncode == 2
    assert "not empty" in refused.stderr and "--force" in refused.stderr
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    forced = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--target", str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert _tree(_restored_data(target, site)) == _tree(site.data)
    assert (target / "keep.txt").read_text() == "mine"


def test_incomplete_set_is_listed_and_refused(site, ncbackup_cmd, tmp_path):
    (set_id,) = site.set_ids()
    (site.host_folder / set_id / "manifest.json").unlink()
    listed = _run(ncbackup_cmd, "list", "-c", str(site.config))
    assert "incomplete" in listed.stdout
    by_id = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--set", set_id, "--target", str(tmp_path / "t"), "--force")
    assert by_id.returncode == 2 and "incomplete" in by_id.stderr and "ncbackup decrypt" in by_id.stderr
    latest = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--latest", "--target", str(tmp_path / "t2"))
    assert latest.returncode == 2 and "no usable set" in latest.stderr and "incomplete" in latest.stderr


def test_hostile_archive_member_is_refused(site, ncbackup_cmd, tmp_path):
    """A set whose tar holds ../ and absolute members: nothing lands outside the target."""
    from ncbackup.config import load_config
    from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set
    from ncbackup.signing import read_secret_key
    from ncbackup.stages.compress import ZstdStage
    from ncbackup.stages.registry import encryption_from_section

    hostile = io.BytesIO()
    with tarfile.open(fileobj=hostile, mode="w") as archive:
        for name in ("ok.txt", "../escaped.txt", "/tmp/absolute-escape.txt"):
            payload = b"pwned\n"
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))

    class HostileStream:
        name, kind, suffix = "files", "files", ".tar"

        def write_to(self, sink, report):
            sink.write(hostile.getvalue())

    class HostileSource:
        report = StreamReport()   # what the source says about itself (sources/base.Source)

        def streams(self):
            yield HostileStream()

        def describe(self):
            return "hostile"

        def check(self):
            return []

    from ncbackup.storage.local import LocalStorage

    config = load_config(site.config)
    encryption_section = [s for s in config.sections if s.name == "ENCRYPTION"][0]
    write_backup_set(
        PipelineSpec(signer=read_secret_key(site.key.parent / "signing.key"), sources=[HostileSource()], compression=ZstdStage(threads=0),
                     encryption=encryption_from_section(encryption_section, config.general).stage,
                     part_size_bytes=None, storages=[NamedStorage("STORAGE", LocalStorage(site.host_folder))]),
        hostname="web1", set_id="29991231T000000Z",
    )
    target = tmp_path / "box" / "restored"
    result = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--set", "29991231T000000Z", "--target", str(target))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "escaped.txt" in result.stderr or "absolute-escape" in result.stderr
    assert not (tmp_path / "box" / "escaped.txt").exists()
    assert not Path("/tmp/absolute-escape.txt").exists()


def test_unknown_storage_section_is_a_config_error(site, ncbackup_cmd):
    result = _run(ncbackup_cmd, "list", "-c", str(site.config), "--storage", "NOPE")
    assert result.returncode == 3
    assert "STORAGE" in result.stderr and "Traceback" not in result.stderr


def test_restore_a_set_made_with_a_legacy_passphrase_key(tmp_path, ncbackup_cmd):
    """A server keeping the original's hex key file writes legacy OpenSSL sets; they restore, and stock openssl reads them."""
    openssl = need_binary("openssl")
    root = tmp_path / "legacy"
    data = root / "data"
    _make_data(data)
    key = root / "key_file"
    key.write_text("5f2b9c0e7d1a4f3b8e6c2d9a0b7f1e3c5a8d2b6f9e0c4a7d1b3e5f8a2c6d9b0e\n")
    key.chmod(0o600)
    backups = root / "backups"
    config = root / "conf.json"
    config.write_text(_config(root, data, key, backups))
    ran = _run(ncbackup_cmd, "run", "-c", str(config))
    assert ran.returncode in (0, 1), ran.stdout + ran.stderr  # 1: the legacy-key warning
    target = tmp_path / "restored"
    restored = _run(ncbackup_cmd, "restore", "-c", str(config), "--target", str(target))
    assert restored.returncode == 0, restored.stderr
    assert _tree(target / str(data).lstrip("/")) == _tree(data)

    # The runbook recipe: join the parts, openssl enc -d, zstd -d, tar -x.
    zstd = need_binary("zstd")
    tar = need_binary("tar")
    set_folder = next((backups / "web1").iterdir())
    parts = sorted(set_folder.glob("files.tar.zst.crypt.[0-9]*"))
    joined = root / "files.tar.zst.crypt"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    subprocess.run([openssl, "enc", "-d", "-aes-256-cbc", "-md", "md5", "-in", str(joined), "-out", str(root / "files.tar.zst"),
                    "-pass", f"file:{key}"], check=True, capture_output=True)
    subprocess.run([zstd, "-d", "-q", str(root / "files.tar.zst")], check=True)
    stock = tmp_path / "stock"
    stock.mkdir()
    subprocess.run([tar, "-xf", str(root / "files.tar"), "-C", str(stock)], check=True)
    assert _tree(stock / str(data).lstrip("/")) == _tree(data)


def _set_fileset_include(site: Site, include: str) -> None:
    config = json.loads(site.config.read_text())
    config["FILESET"]["PARAMETERS"]["FILESET_INCLUDE"] = include
    site.config.write_text(json.dumps(config, indent=2))


def test_missing_include_path_keeps_the_others_and_latest_skips_a_set_whose_files_failed(site, ncbackup_cmd, tmp_path):
    """The issue's night: "/srv/app /srv/missing". What exists is backed up, the run fails naming the missing path;
    after a night whose files stream failed, restore/verify --latest take the newest set where it is good."""
    missing = site.root / "srv" / "missing"
    _set_fileset_include(site, f"{site.data} {missing}")
    second = _run(ncbackup_cmd, "run", "-c", str(site.config))
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"FILESET_INCLUDE path {missing} does not exist" in second.stdout
    first_id, second_id = site.set_ids()
    restored = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--latest", "--target", str(tmp_path / "night2"))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"restoring set {second_id}" in restored.stdout
    assert _tree(_restored_data(tmp_path / "night2", site)) == _tree(site.data)

    _set_fileset_include(site, str(missing))
    third = _run(ncbackup_cmd, "run", "-c", str(site.config))
    assert third.returncode == 2
    # One sentence per cause: the index says what it depends on, not the cause again.
    assert third.stdout.count(f"FILESET_INCLUDE path {missing} does not exist") == 1, third.stdout
    assert "files-index: skipped: files failed" in third.stdout
    third_id = site.set_ids()[-1]

    listed = _run(ncbackup_cmd, "list", "-c", str(site.config))
    line = next(text for text in listed.stdout.splitlines() if text.startswith(third_id))
    assert "partial" in line and "files (FAILED), files-index (FAILED)" in line
    as_json = json.loads(_run(ncbackup_cmd, "list", "-c", str(site.config), "--json").stdout)
    assert [entry["status"] for entry in as_json] == ["complete", "complete", "partial"]

    for command in (["restore", "--target", str(tmp_path / "night3")], ["verify"]):
        result = _run(ncbackup_cmd, command[0], "-c", str(site.config), "--latest", *command[1:])
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"note: newer set(s) skipped: {third_id} (files failed)" in result.stdout
        assert second_id in result.stdout and "has no stream to restore" not in result.stderr
    assert _tree(_restored_data(tmp_path / "night3", site)) == _tree(site.data)
    by_name = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--latest", "--stream", "files",
                   "--target", str(tmp_path / "by-name"))
    assert by_name.returncode == 0 and f"restoring set {second_id}" in by_name.stdout
    # The failed set itself is still reachable by its id, and says why it holds nothing.
    chosen = _run(ncbackup_cmd, "restore", "-c", str(site.config), "--set", third_id, "--target", str(tmp_path / "t"))
    assert chosen.returncode == 2 and "has no stream to restore" in chosen.stderr
