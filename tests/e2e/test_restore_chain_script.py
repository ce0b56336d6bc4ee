"""scripts/restore-chain (docs/restore.md): a chain restored with Python's standard library and stock age, zstd and
tar matches the tree as it was at each set: creates, modifies, deletes, renames, file<->folder, symlinks, hard links."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ncbackup.engine.restore import RestoreOptions, restore_set
from tests.support import REPO, need_binary, read_manifest
from tests.support_chains import ChainMaker

SCRIPT = REPO / "scripts" / "restore-chain"


def tree(root: Path) -> dict[str, object]:
    """What a restore must give back: per path its type, bytes, mode, link target; and which names share an inode."""
    out: dict[str, object] = {}
    inodes: dict[int, list[str]] = {}
    for folder, subfolders, files in os.walk(root):
        for name in subfolders + files:
            path = Path(folder) / name
            relative = str(path.relative_to(root))
            info = path.lstat()
            if path.is_symlink():
                out[relative] = ("symlink", os.readlink(path))
            elif path.is_dir():
                out[relative] = ("dir", info.st_mode & 0o7777)
            else:
                out[relative] = ("file", path.read_bytes(), info.st_mode & 0o7777)
                if info.st_nlink > 1:
                    inodes.setdefault(info.st_ino, []).append(relative)
    out["(hard links)"] = sorted(sorted(names) for names in inodes.values())
    return out


def restore(maker: ChainMaker, set_id: str, target: Path, *extra: str) -> subprocess.CompletedProcess:
    # -I -S: no site-packages, so the script proves it needs only the standard library.
    return subprocess.run([sys.executable, "-I", "-S", str(SCRIPT), "--identity", str(maker.key_file),
                           "--target", str(target), *extra, str(maker.set_folder(set_id))],
                          capture_output=True, text=True, timeout=300)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text)
    path.chmod(mode)


def _steps(data: Path) -> list[Callable[[], None]]:
    """One change of the tree per incremental set."""
    def first():   # the full
        (data / "etc" / "app").mkdir(parents=True)
        for index in range(12):
            _write(data / "etc" / "app" / f"conf-{index}.ini", f"key = {index}\n" * 50)
        _write(data / "run.sh", "#!/bin/sh\necho hi\n", 0o750)
        (data / "var").mkdir()
        (data / "var" / "blob.bin").write_bytes(os.urandom(700_000))
        os.symlink("blob.bin", data / "var" / "current")
        _write(data / "becomes-folder", "a file for now\n")
        (data / "becomes-file").mkdir()
        _write(data / "becomes-file" / "inside.txt", "inside\n")
        _write(data / "linked-a", "shared by two names\n")
        os.link(data / "linked-a", data / "linked-b")

    def modify_and_create():
        _write(data / "etc" / "app" / "conf-3.ini", "key = changed\n")
        _write(data / "etc" / "app" / "conf-4.ini", ("key = 4\n" * 50).replace("4", "9"))   # same size
        _write(data / "new.txt", "created\n")
        (data / "run.sh").chmod(0o700)

    def delete_and_rename():
        (data / "etc" / "app" / "conf-0.ini").unlink()
        (data / "etc" / "app" / "conf-1.ini").rename(data / "etc" / "app" / "renamed.ini")
        (data / "etc" / "app").rename(data / "etc" / "application")
        shutil.rmtree(data / "var")
        (data / "var").mkdir()
        _write(data / "var" / "blob.bin", "the blob is small now\n")

    def change_types():
        (data / "becomes-folder").unlink()
        (data / "becomes-folder").mkdir()
        _write(data / "becomes-folder" / "child.txt", "child\n")
        shutil.rmtree(data / "becomes-file")
        _write(data / "becomes-file", "a file now\n")
        os.symlink("new.txt", data / "var" / "current")
        (data / "new.txt").unlink()
        os.symlink("etc/application", data / "new.txt")   # a file became a symlink (to a folder)

    def hard_links():
        os.link(data / "linked-a", data / "linked-c")      # a third name: all re-stored together
        (data / "linked-b").unlink()
        os.link(data / "run.sh", data / "etc" / "run-again.sh")

    def unchanged():
        pass

    def back_again():
        shutil.rmtree(data / "becomes-folder")
        _write(data / "becomes-folder", "a file again\n")
        (data / "linked-a").unlink()                        # linked-c is alone now
        (data / "var" / "current").unlink()
        (data / "var" / "current").mkdir()                  # a symlink became a folder

    return [first, modify_and_create, delete_and_rename, change_types, hard_links, unchanged, back_again]


def test_every_point_of_a_chain_restores_with_stock_tools_as_the_tree_was(tmp_path):
    for tool in ("age", "zstd", "tar"):
        need_binary(tool)
    data = tmp_path / "data"
    data.mkdir()
    maker = ChainMaker.create(tmp_path, data)
    expected: dict[str, dict[str, object]] = {}
    for step in _steps(data):
        step()
        set_id = maker.backup()
        expected[set_id] = tree(data)
    assert len(maker.chains[maker.set_ids[-1]]) == len(maker.set_ids) - 1, "the test needs one chain"
    for set_id, wanted in expected.items():
        target = tmp_path / f"restored-{set_id}"
        result = restore(maker, set_id, target)
        assert result.returncode == 0, result.stderr
        assert tree(target / "data") == wanted, set_id
        assert sorted(os.listdir(target)) == ["data"]
        # ncbackup's own restore of the chain (engine/chain.py) gives the same tree as the stock tools.
        ours = tmp_path / f"ncbackup-{set_id}"
        restore_set(maker.storage, read_manifest(maker.storage, set_id),
                    options=RestoreOptions(target=ours, key_file=maker.key_file, stream_names=("files",)),
                    open_manifest=lambda chain_set: read_manifest(maker.storage, chain_set))
        assert tree(ours / "data") == wanted, set_id


def test_an_incremental_set_really_stores_only_what_changed(tmp_path):
    """The script is exercised on real incrementals: an unchanged night stores no file member at all."""
    data = tmp_path / "data"
    data.mkdir()
    maker = ChainMaker.create(tmp_path, data)
    for step in _steps(data)[:1]:
        step()
    maker.backup()
    second = maker.backup()
    files = read_manifest(maker.storage, second).stream("files")
    assert files.metadata["members"] == 0 and files.metadata["level"] == "incremental"


def test_a_missing_set_of_the_chain_is_one_sentence(tmp_path):
    need_binary("age", "zstd", "tar")
    data = tmp_path / "data"
    data.mkdir()
    _write(data / "a.txt", "a\n")
    maker = ChainMaker.create(tmp_path, data)
    full = maker.backup()
    _write(data / "b.txt", "b\n")
    newest = maker.backup()
    shutil.rmtree(maker.set_folder(full))
    result = restore(maker, newest, tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"restore-chain: {maker.set_folder(full) / 'manifest.json'} does not exist: download the whole set folder "
        "(and every set of its chain) first")


def test_a_damaged_part_stops_the_restore(tmp_path):
    need_binary("age", "zstd", "tar")
    data = tmp_path / "data"
    data.mkdir()
    (data / "blob.bin").write_bytes(os.urandom(600_000))
    maker = ChainMaker.create(tmp_path, data)
    full = maker.backup()
    _write(data / "b.txt", "b\n")
    newest = maker.backup()
    part = sorted(maker.set_folder(full).glob("files.tar.zst.age.*"))[0]
    damaged = bytearray(part.read_bytes())
    damaged[1000] ^= 1
    part.write_bytes(bytes(damaged))
    result = restore(maker, newest, tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"restore-chain: {part} does not match the size or SHA-256 in its manifest: it is damaged")


@pytest.mark.parametrize("signed", [True])
def test_signatures_are_checked_with_minisign_when_asked(tmp_path, signed):
    need_binary("age", "zstd", "tar", "minisign")
    from ncbackup.signing import read_secret_key, write_signing_key

    key_path = tmp_path / "signing.key"
    write_signing_key(key_path)
    data = tmp_path / "data"
    data.mkdir()
    _write(data / "a.txt", "a\n")
    maker = ChainMaker.create(tmp_path, data, signer=read_secret_key(key_path))
    maker.backup()
    _write(data / "a.txt", "changed\n")
    newest = maker.backup()
    public = key_path.with_name("signing.key.pub")
    assert restore(maker, newest, tmp_path / "good", "--signer", str(public)).returncode == 0
    other = tmp_path / "other" / "signing.key"
    other.parent.mkdir()
    write_signing_key(other)
    refused = restore(maker, newest, tmp_path / "bad", "--signer", str(other.with_name("signing.key.pub")))
    assert refused.returncode == 1 and "does not verify" in refused.stderr


# --------------------------------------------------------------------------------------------------
# Random sequences of changes (hypothesis): every point of the chain restores as the tree was.

NAMES = ["a", "b", "d/x", "d/y", "e/f/z"]
OPERATIONS = ["create", "modify", "delete", "rename", "chmod", "to_folder", "to_file", "symlink", "hard_link"]


def _apply(data: Path, operation: str, name: str, other: str, seed: int) -> None:
    """One change, when it makes sense for the tree as it is (else nothing)."""
    path, target = data / name, data / other
    if operation in ("create", "to_file", "symlink", "hard_link", "to_folder") and os.path.lexists(path):
        if operation == "create":
            return
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent.is_symlink() or not path.parent.is_dir():
        return
    if operation in ("create", "to_file"):
        path.write_bytes(b"%d\n" % seed * (seed % 50 + 1))
    elif operation == "modify" and path.is_file() and not path.is_symlink():
        with path.open("ab") as file:
            file.write(b"more %d\n" % seed)
    elif operation == "delete" and os.path.lexists(path):
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    elif operation == "rename" and os.path.lexists(path) and not os.path.lexists(target) \
            and not str(other).startswith(f"{name}/"):
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.parent.is_dir() and not target.parent.is_symlink():
            path.rename(target)
    elif operation == "chmod" and os.path.lexists(path) and not path.is_symlink():
        path.chmod(0o700 if seed % 2 else 0o640 if path.is_file() else 0o755)
    elif operation == "to_folder":
        path.mkdir()
        (path / "inner").write_bytes(b"inner %d\n" % seed)
    elif operation == "symlink":
        os.symlink(other, path)
    elif operation == "hard_link" and target.is_file() and not target.is_symlink() and target != path:
        os.link(target, path)


def test_random_changes_restore_at_every_point_with_stock_tools():
    need_binary("age", "zstd", "tar")
    import tempfile

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    change = st.tuples(st.sampled_from(OPERATIONS), st.sampled_from(NAMES), st.sampled_from(NAMES), st.integers(0, 999))

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.lists(change, min_size=1, max_size=4), min_size=1, max_size=5))
    def check(nights):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            data = root / "data"
            data.mkdir()
            (data / "base.txt").write_text("always here\n")
            maker = ChainMaker.create(root, data)
            expected = {maker.backup(): tree(data)}
            for night in nights:
                for operation, name, other, seed in night:
                    _apply(data, operation, name, other, seed)
                expected[maker.backup()] = tree(data)
            for set_id, wanted in expected.items():
                result = restore(maker, set_id, root / f"restored-{set_id}")
                assert result.returncode == 0, result.stderr
                assert tree(root / f"restored-{set_id}" / "data") == wanted, (set_id, nights)

    check()
