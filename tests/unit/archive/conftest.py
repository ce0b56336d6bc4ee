"""A source tree with every kind of member the files source must carry, a strict tree comparison, and hostile-archive helpers."""

from __future__ import annotations

import io
import os
import socket
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

NON_UTF8_NAME = b"caf\xe9-\xff\xfe.txt"   # Latin-1 bytes: not valid UTF-8
LONG_NAME = "l" * 180 + ".txt"            # > 100 bytes: needs a pax path
SUBSECOND_NS = 1_700_000_000_123_456_789


@dataclass(frozen=True)
class Tree:
    root: Path          # the folder that was built
    fifo: Path
    socket_path: Path


def _write(path: Path, data: bytes, *, mode: int = 0o644, mtime_ns: int | None = None) -> None:
    path.write_bytes(data)
    os.chmod(path, mode)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def source_tree(tmp_path: Path) -> Tree:
    """Files (text, random, empty, multi-MiB, sparse), dirs (empty too), links, odd names, odd owners."""
    root = tmp_path / "src" / "tree"
    (root / "etc" / "ssh").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "deep" / ("d" * 120) / ("e" * 120)).mkdir(parents=True)
    _write(root / "etc" / "hosts", b"127.0.0.1 localhost\n" * 50, mtime_ns=SUBSECOND_NS)
    _write(root / "etc" / "ssh" / "sshd_config", b"Port 22\n", mode=0o600)
    _write(root / "etc" / "script.sh", b"#!/bin/sh\necho hi\n", mode=0o755)
    _write(root / "etc" / "empty", b"")
    _write(root / "random.bin", os.urandom(3 * (1 << 20) + 17))  # crosses the 1 MiB copy buffer
    _write(root / "deep" / ("d" * 120) / ("e" * 120) / LONG_NAME, b"long path\n")
    _write(root / "unicode-é-名前.txt", b"unicode name\n")
    raw_root = os.fsencode(root)
    with open(raw_root + b"/" + NON_UTF8_NAME, "wb") as handle:
        handle.write(b"latin-1 name\n")
    sparse = root / "sparse.img"
    with open(sparse, "wb") as handle:
        handle.truncate(48 << 20)
        handle.seek((48 << 20) - 5)
        handle.write(b"tail!")
    # Hard links: three names, one inode.
    _write(root / "etc" / "hard-a", b"shared inode\n")
    os.link(root / "etc" / "hard-a", root / "etc" / "hard-b")
    os.link(root / "etc" / "hard-a", root / "hard-c")
    # Symlinks: relative, absolute, dangling, to a folder.
    os.symlink("hosts", root / "etc" / "hosts-link")
    os.symlink("/etc/hostname", root / "etc" / "absolute-link")
    os.symlink("does-not-exist", root / "dangling-link")
    os.symlink("etc/ssh", root / "ssh-dir-link")
    # Specials: skipped with a note.
    fifo = root / "a-fifo"
    os.mkfifo(fifo)
    socket_path = root / "a-socket"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(socket_path))
    server.close()
    if os.geteuid() == 0:
        os.chown(root / "etc" / "script.sh", 1234, 5678)       # ids without names
        nobody = 65534
        os.chown(root / "etc" / "hosts", nobody, nobody)
        os.utime(root / "etc" / "hosts", ns=(SUBSECOND_NS, SUBSECOND_NS))
    os.chmod(root / "etc" / "ssh", 0o700)
    os.utime(root / "empty-dir", ns=(1_600_000_000_500_000_000, 1_600_000_000_500_000_000))
    return Tree(root=root, fifo=fifo, socket_path=socket_path)


def _describe(path: Path) -> dict[bytes, tuple]:
    """Every entry below path: type, mode, size, mtime, owner, link target, content, hard-link group."""
    result: dict[bytes, tuple] = {}
    inode_names: dict[tuple[int, int], bytes] = {}
    base = os.fsencode(path)
    for directory, dirnames, filenames in os.walk(base):
        dirnames.sort()  # walk order decides which name of a hard-linked inode is "first"
        filenames.sort()
        for name in dirnames + filenames:
            full = os.path.join(directory, name)
            relative = os.path.relpath(full, base)
            info = os.lstat(full)
            if stat.S_ISFIFO(info.st_mode) or stat.S_ISSOCK(info.st_mode):
                continue
            content = b""
            link = b""
            group = b""
            if stat.S_ISREG(info.st_mode):
                with open(full, "rb") as handle:
                    content = handle.read()
                group = inode_names.setdefault((info.st_dev, info.st_ino), relative)
            elif stat.S_ISLNK(info.st_mode):
                link = os.readlink(full)
            mtime = info.st_mtime_ns if not stat.S_ISLNK(info.st_mode) else 0
            result[relative] = (
                stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), len(content), mtime,
                info.st_uid, info.st_gid, link, content, group,
            )
    return result


def assert_same_tree(
    original: Path, restored: Path, *, skip: tuple[bytes, ...] = (), mtime_resolution_ns: int = 1
) -> None:
    """Fail unless restored holds exactly original's entries with the same bytes and metadata."""

    def rounded(entries: dict[bytes, tuple]) -> dict[bytes, tuple]:
        return {
            key: value[:3] + (value[3] // mtime_resolution_ns,) + value[4:]
            for key, value in entries.items() if key not in skip
        }

    expected = rounded(_describe(original))
    actual = rounded(_describe(restored))
    assert sorted(actual) == sorted(expected)
    for key in expected:
        assert actual[key] == expected[key], key


def entries(folder: Path) -> set[Path]:
    """Every name below folder, symlinks listed but never followed."""
    found = set()
    for directory, dirnames, filenames in os.walk(folder):
        found.update(Path(directory) / name for name in dirnames + filenames)
    return found


def tar_members(*members: tuple) -> bytes:
    """A pax archive of (name, kind, payload) members: kind "file" (payload: bytes), "dir", "symlink" or
    "hardlink" (payload: the link text); every member mode 0777 (folders and files), uid/gid 4321, mtime 1e9."""
    buffer = io.BytesIO()
    kinds = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as writer:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.type = kinds[kind]
            info.mode, info.uid, info.gid, info.mtime = 0o777, 4321, 4321, 1_000_000_000
            if kind == "file":
                info.size = len(payload)
                writer.addfile(info, io.BytesIO(payload))
            else:
                info.linkname = payload or ""
                writer.addfile(info)
    return buffer.getvalue()


def snapshot(folder: Path) -> dict[Path, tuple]:
    """Type, mode, owner, mtime and content (or link text) of folder itself and of every entry below it."""
    result = {}
    for path in [folder, *entries(folder)]:
        info = os.lstat(path)
        if path.is_symlink():
            content: object = os.readlink(path)
        elif path.is_file():
            content = path.read_bytes()
        else:
            content = None
        result[path] = (info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns, content)
    return result


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the target with one file in it, both with a mode and mtime no member carries."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "keep.txt").write_bytes(b"keep me")
    for path in (folder / "keep.txt", folder):
        os.chmod(path, 0o700)
        os.utime(path, ns=(1_234_000_000_000_000_000, 1_234_000_000_000_000_000))
    return folder
