"""A real system tree (/usr/share/man and /etc, some 25k entries with hundreds of absolute symlinks)
archived by our writer and extracted by extract_tar comes back entry for entry."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from ncbackup import platform
from ncbackup.archive.extract import extract_tar
from ncbackup.archive.writer import write_tar
from ncbackup.sources.base import StreamReport
from tests.support import need, need_binary

SYSTEM_FOLDERS = (Path("/usr/share/man"), Path("/etc"))
MIN_ENTRIES = 20_000


def _describe(root: Path, *, mode_mask: int) -> tuple[dict[bytes, tuple], set[frozenset[bytes]]]:
    """Every entry below root (root too) with type, mode, owner, mtime (ns), size and content digest or
    link text; and the groups of names sharing one inode (hard links). FIFOs, sockets and devices,
    which the writer does not store, are left out."""
    described: dict[bytes, tuple] = {}
    inodes: dict[tuple[int, int], set[bytes]] = {}
    base = os.fsencode(root)
    for directory, dirnames, filenames in os.walk(base):
        for name in [b".", *dirnames, *filenames] if directory == base else [*dirnames, *filenames]:
            full = os.path.normpath(os.path.join(directory, name))
            relative = os.path.relpath(full, base)
            info = os.lstat(full)
            kind = stat.S_IFMT(info.st_mode)
            if kind == stat.S_IFREG:
                with open(full, "rb") as handle:
                    detail: object = hashlib.file_digest(handle, "sha256").hexdigest()
                inodes.setdefault((info.st_dev, info.st_ino), set()).add(relative)
            elif kind == stat.S_IFLNK:
                detail = os.readlink(full)
            elif kind == stat.S_IFDIR:
                detail = None
            else:
                continue
            owner = (info.st_uid, info.st_gid) if platform.is_root() else None
            size = info.st_size if kind != stat.S_IFDIR else 0
            described[relative] = (kind, stat.S_IMODE(info.st_mode) & mode_mask, owner, info.st_mtime_ns, size, detail)
    groups = {frozenset(names) for names in inodes.values() if len(names) > 1}
    return described, groups


@pytest.mark.timeout(180)
def test_real_system_tree_restores_entry_for_entry(tmp_path):
    cp = need_binary("cp")
    for folder in SYSTEM_FOLDERS:
        need(folder.is_dir(), f"{folder} is missing on this machine")
    tree = tmp_path / "tree"
    tree.mkdir()
    # cp -a keeps modes, owners, mtimes, links and hard links; a file this user may not read is left out.
    subprocess.run([cp, "-a", *map(str, SYSTEM_FOLDERS), str(tree)], check=False, capture_output=True)
    regular = sorted(path for path in (tree / "man").rglob("*.gz") if path.is_file() and not path.is_symlink())[:5]
    for number, path in enumerate(regular):  # hard links: none ship in these folders
        os.link(path, path.parent / f"hard-link-{number}.gz")
        os.link(path, tree / f"hard-link-{number}")
    mode_mask = 0o7777 if platform.is_root() else 0o777
    original, original_groups = _describe(tree, mode_mask=mode_mask)
    absolute_links = [name for name, entry in original.items() if entry[0] == stat.S_IFLNK and entry[5].startswith(b"/")]
    assert len(original) >= MIN_ENTRIES and len(absolute_links) >= 100 and len(original_groups) == 5

    archive = tmp_path / "tree.tar"
    report = StreamReport()
    with open(archive, "wb") as sink:
        write_tar(sink, [str(tree)], report=report)
    target = tmp_path / "restored"
    with open(archive, "rb") as reader:
        warnings = extract_tar(reader, target)

    assert warnings == []
    restored, restored_groups = _describe(target / tree.relative_to("/"), mode_mask=mode_mask)
    assert sorted(restored) == sorted(original)
    different = [name for name in original if restored[name] != original[name]]
    assert different == [], [(name, original[name], restored[name]) for name in different[:5]]
    assert restored_groups == original_groups
