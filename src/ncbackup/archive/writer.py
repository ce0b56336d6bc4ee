"""A fast POSIX pax tar writer: walks include paths with os.scandir and streams members into a sink.

The output is readable by GNU tar and Python's tarfile. Headers are built here (not by tarfile),
file bytes are copied with readinto into one reusable buffer and handed to the sink in big chunks:
tarfile's per-member overhead and 16 KiB copies made it the slowest stage of the pipeline.
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import io
import ntpath
import os
import re
import stat
import struct
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from ncbackup import platform
from ncbackup.archive.changes import ChangeTracker, walk_key
from ncbackup.archive.index import DIRECTORY, FILE, HARDLINK, PLAIN_NAME_BYTES, SYMLINK, IndexWriter
from ncbackup.sources.base import StreamReport

BLOCK_BYTES = 512
# GNU tar pads the archive to a multiple of its 10 KiB record; some old readers insist on it.
RECORD_BYTES = 20 * BLOCK_BYTES
OUT_BUFFER_BYTES = 1 << 20
ZERO_BLOCK = bytes(BLOCK_BYTES)

# ustar numeric fields hold octal digits plus a NUL: anything larger goes into a pax record.
_MAX_OCTAL_7 = 8**7 - 1
_MAX_OCTAL_11 = 8**11 - 1
_HEADER = struct.Struct("100s8s8s8s12s12s8s1s100s6s2s32s32s8s8s155s12s")
_PAX_NAME = b"././@PaxHeader"
_O_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_GLOB_CHARS = re.compile(r"[*?\[]")

REGULAR, LINK, SYMBOLIC, DIR_TYPE, PAX_TYPE = b"0", b"1", b"2", b"5", b"x"
# Regular files up to this size are read with one read call and stored by _add_small_file.
SMALL_FILE_BYTES = 64 << 10
_PADDING = tuple(bytes(count) for count in range(BLOCK_BYTES))
# Folders held open at once while walking down (one per level); deeper ones are listed by path.
MAX_FOLDER_DESCRIPTORS = 64
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def member_name(path: str, *, windows: bool = os.name == "nt") -> bytes:
    """The tar member name of an absolute path: relative to the root (``etc/hosts``; ``C:\\data\\x`` -> ``C/data/x``)."""
    if windows:
        drive, rest = ntpath.splitdrive(path)
        rest = rest.replace("\\", "/").strip("/")
        drive = drive.replace("\\", "/").strip("/").rstrip(":")
        name = f"{drive}/{rest}" if drive and rest else (drive or rest)
        return name.encode("utf-8", "surrogateescape")
    return os.fsencode(path).strip(b"/")


def _pax_record(key: bytes, value: bytes) -> bytes:
    # The length prefix counts itself: grow it until the digits fit.
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return b"%d%s" % (length, body)


def pax_time(ns: int) -> bytes:
    """Seconds with up to nine decimals, exact for negative times too."""
    sign = b"-" if ns < 0 else b""
    seconds, fraction = divmod(abs(ns), 1_000_000_000)
    if not fraction:
        return sign + b"%d" % seconds
    return sign + (b"%d.%09d" % (seconds, fraction)).rstrip(b"0")


def _checksummed(header: bytearray) -> bytes:
    # The checksum is the plain sum of the header's bytes with its own field as eight blanks (already
    # there). Adler-32's low half is 1 + that sum modulo 65521, exact for 256 bytes (at most 65280):
    # two C calls instead of a Python loop over 512 ints, which was a third of the writer's time.
    view = memoryview(header)
    total = (zlib.adler32(view[:256]) & 0xFFFF) + (zlib.adler32(view[256:]) & 0xFFFF) - 2
    header[148:156] = b"%06o\0 " % total
    return bytes(header)


def build_header(
    name: bytes,
    *,
    typeflag: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime_ns: int,
    linkname: bytes = b"",
    uname: bytes = b"",
    gname: bytes = b"",
) -> bytes:
    """Return the header block(s) of one member: a pax extended header when a field needs one, then ustar."""
    pax: list[bytes] = []
    if len(name) > 100 or not name.isascii():
        pax.append(_pax_record(b"path", name))
    if len(linkname) > 100 or not linkname.isascii():
        pax.append(_pax_record(b"linkpath", linkname))
    if size > _MAX_OCTAL_11:
        pax.append(_pax_record(b"size", b"%d" % size))
    if uid > _MAX_OCTAL_7:
        pax.append(_pax_record(b"uid", b"%d" % uid))
        uid = 0
    if gid > _MAX_OCTAL_7:
        pax.append(_pax_record(b"gid", b"%d" % gid))
        gid = 0
    if len(uname) > 32 or not uname.isascii():
        pax.append(_pax_record(b"uname", uname))
        uname = b""
    if len(gname) > 32 or not gname.isascii():
        pax.append(_pax_record(b"gname", gname))
        gname = b""
    mtime_seconds = mtime_ns // 1_000_000_000
    if mtime_ns % 1_000_000_000 or not 0 <= mtime_seconds <= _MAX_OCTAL_11:
        pax.append(_pax_record(b"mtime", pax_time(mtime_ns)))
        mtime_seconds = min(max(mtime_seconds, 0), _MAX_OCTAL_11)
    header = bytearray(_HEADER.pack(
        name[:100], b"%07o" % (mode & 0o7777), b"%07o" % uid, b"%07o" % gid,
        b"%011o" % (size if size <= _MAX_OCTAL_11 else 0), b"%011o" % mtime_seconds, b" " * 8, typeflag,
        linkname[:100], b"ustar\0", b"00", uname, gname, b"", b"", b"", b"",
    ))
    if not pax:
        return _checksummed(header)
    data = b"".join(pax)
    return _pax_header_block(len(data)) + data + bytes(-len(data) % BLOCK_BYTES) + _checksummed(header)


@functools.lru_cache(maxsize=1024)
def _pax_header_block(size: int) -> bytes:
    # Depends on the record length only (its mtime is 0), so nearly every member reuses a cached block.
    return _checksummed(bytearray(_HEADER.pack(
        _PAX_NAME, b"0000644", b"0000000", b"0000000", b"%011o" % size, b"%011o" % 0,
        b" " * 8, PAX_TYPE, b"", b"ustar\0", b"00", b"", b"", b"", b"", b"", b"",
    )))


def _walk_order(entry: os.DirEntry) -> str:
    return walk_key(entry.name)


# (folder descriptor or None, folder path ending in a separator, member name prefix, children left to store)
_Frame = tuple["int | None", str, bytes, Iterator[os.DirEntry]]


class ExcludeRules:
    """FILESET_EXCLUDE: absolute paths (the path and all below it) and glob patterns.

    ``/var/www/*/cache`` matches full paths; a pattern without a slash (``*.log``, ``cache``) matches
    a name at any depth; a relative pattern with a slash matches the end of a path.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.exact_paths: set[str] = set()
        full: list[str] = []
        base: list[str] = []
        for pattern in patterns:
            pattern = pattern.strip()
            if len(pattern) > 1:
                pattern = pattern.rstrip("/\\")
            if not pattern:
                continue
            is_absolute = os.path.isabs(pattern) or ntpath.isabs(pattern)
            if not _GLOB_CHARS.search(pattern) and is_absolute:
                self.exact_paths.add(os.path.normpath(pattern))
            elif is_absolute:
                full.append(fnmatch.translate(pattern))
            elif "/" in pattern:
                full.append(fnmatch.translate("*/" + pattern))
            else:
                base.append(fnmatch.translate(pattern))
        self._full = re.compile("|".join(full)) if full else None
        self._base = re.compile("|".join(base)) if base else None
        self.is_empty = not (self.exact_paths or full or base)

    def is_excluded(self, path: str, name: str) -> bool:
        if path in self.exact_paths:
            return True
        if self._base is not None and self._base.match(name):
            return True
        return self._full is not None and self._full.match(path) is not None


@dataclass(frozen=True)
class _Template:
    """A regular file's ustar header around its name, size and mtime, for one mode and owner."""

    head: bytes       # mode, uid, gid fields (after the name)
    tail: bytes       # typeflag to the end of the block (after the checksum field)
    checksum: int     # the byte sum of head, tail and the blank checksum field


_UNKNOWN = _Template(b"", b"", -1)   # no template made yet for a mode and owner


@dataclass
class TarTotals:
    members: int = 0
    file_bytes: int = 0
    archive_bytes: int = 0


class _Out:
    """Collects headers and small files in one buffer so the sink gets few, large writes."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._buffer = bytearray(OUT_BUFFER_BYTES)
        self._view = memoryview(self._buffer)
        self._position = 0
        self.total_bytes = 0

    def write(self, data: bytes) -> None:
        size = len(data)
        if self._position + size > OUT_BUFFER_BYTES:
            self.flush()
            if size > OUT_BUFFER_BYTES:
                self._sink.write(data)
                self.total_bytes += size
                return
        self._view[self._position:self._position + size] = data
        self._position += size

    def append(self, data: bytes) -> int:
        """write(data) and return where it starts in the archive."""
        position = self._position
        size = len(data)
        if position + size > OUT_BUFFER_BYTES:
            offset = self.written_bytes
            self.write(data)
            return offset
        self._view[position:position + size] = data
        self._position = position + size
        return self.total_bytes + position

    def zeros(self, count: int) -> None:
        while count:
            if self._position == OUT_BUFFER_BYTES:
                self.flush()
            step = min(count, OUT_BUFFER_BYTES - self._position)
            self._view[self._position:self._position + step] = bytes(step)
            self._position += step
            count -= step

    def copy_from(self, file: io.FileIO, size: int) -> tuple[int, OSError | None, bool | None]:
        """Copy up to size bytes from file straight into the buffer.

        Returns (bytes there were, read error, grew): grew is True when the file had more than size
        bytes, False when its end was seen right after them, None when that is unknown.
        """
        remaining = size
        grew: bool | None = None
        while remaining:
            if self._position == OUT_BUFFER_BYTES:
                self.flush()
            space = OUT_BUFFER_BYTES - self._position
            # Asking one byte more than promised shows the end of the file (or growth) without a
            # second read call: a regular file returns less than asked only at its end.
            step = remaining + 1 if remaining < space else space
            try:
                count = file.readinto(self._view[self._position:self._position + step])
            except OSError as error:
                return size - remaining, error, None
            if not count:
                break
            if count > remaining:
                self._position += remaining
                return size, None, True
            self._position += count
            remaining -= count
            if not remaining and count < step:
                grew = False
        return size - remaining, None, grew

    @property
    def written_bytes(self) -> int:
        """Bytes accepted so far, flushed or not."""
        return self.total_bytes + self._position

    def flush(self) -> None:
        if self._position:
            # The io contract lets us reuse the buffer as soon as write() returns.
            self._sink.write(self._view[:self._position])
            self.total_bytes += self._position
            self._position = 0


class TarWriter:
    """Writes the trees under some absolute paths as one pax archive into a sink."""

    def __init__(
        self,
        sink: BinaryIO,
        *,
        report: StreamReport,
        excludes: ExcludeRules | None = None,
        one_file_system: bool = False,
        index: IndexWriter | None = None,
        tracker: ChangeTracker | None = None,
    ) -> None:
        self._out = _Out(sink)
        self._tracker = tracker   # incremental streams: leaves unchanged members out (archive/changes.py)
        self._report = report
        self._excludes = excludes or ExcludeRules(())
        self._one_file_system = one_file_system
        self._index = index
        self._hard_links: dict[tuple[int, int], bytes] = {}
        self._user_names: dict[int, bytes] = {}
        self._group_names: dict[int, bytes] = {}
        self._templates: dict[tuple[int, int, int], _Template | None] = {}
        self.totals = TarTotals()
        self._member_offset = 0   # where the last header written starts in the tar, for the index
        # Test seam: called with the path after a file is opened, before its bytes are read.
        self.before_read: Callable[[str], None] | None = None

    # --- public ------------------------------------------------------------------------------

    def add_tree(self, path: str, *, name: bytes | None = None) -> None:
        """Add path and, for a directory, everything below it (excludes and one_file_system apply); name: the
        root's member name when it is not path's own (a snapshot read under its live path)."""
        info = self._lstat(path)
        if info is None:
            return
        name = member_name(path) if name is None else name
        root_device = info.st_dev
        if not self._add_member(path, name, info, root_device=root_device):
            return
        # Pre-order, depth first: a frame is a folder whose children are being stored; a child folder's
        # frame goes on top and the parent's iteration resumes when that whole subtree is done.
        frames: list[_Frame] = []
        excludes = None if self._excludes.is_empty else self._excludes
        try:
            frame = self._listing(path, name, by_descriptor=True)
            if frame is not None:
                frames.append(frame)
            while frames:
                folder_fd, folder_path, prefix, entries = frames[-1]
                for entry in entries:
                    base = entry.name
                    child = folder_path + base
                    if excludes is not None and excludes.is_excluded(child, base):
                        continue
                    child_name = prefix + base.encode(_FS_ENCODING, _FS_ERRORS)
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        self._report.warn(f"{child} vanished before it could be read; skipped")
                        continue
                    except OSError as error:
                        self._report.warn(f"{child} could not be read ({error.strerror}); skipped")
                        continue
                    # Most members of a big tree are small files: straight to their path, no dispatch.
                    if (self._tracker is None and info.st_nlink == 1 and info.st_size <= SMALL_FILE_BYTES
                            and stat.S_ISREG(info.st_mode) and self._add_small_file(child, child_name, info, folder_fd, base)):
                        continue
                    if self._add_member(child, child_name, info, root_device=root_device, folder_fd=folder_fd, base=base):
                        frame = self._listing(child, child_name, by_descriptor=len(frames) < MAX_FOLDER_DESCRIPTORS)
                        if frame is not None:
                            frames.append(frame)
                            break
                else:
                    frames.pop()
                    if folder_fd is not None:
                        os.close(folder_fd)
        finally:
            for frame in frames:
                if frame[0] is not None:
                    os.close(frame[0])

    def _add_member(self, path: str, name: bytes, info: os.stat_result, *, root_device: int,
                    folder_fd: int | None = None, base: str | None = None) -> bool:
        """Store one member, or carry it when the tracker says it is unchanged; True for a folder to descend into."""
        mode = info.st_mode
        if self._tracker is not None and self._carry(name, info, mode):
            return stat.S_ISDIR(mode) and not (self._one_file_system and info.st_dev != root_device)
        if stat.S_ISREG(mode):
            if info.st_nlink != 1 or info.st_size > SMALL_FILE_BYTES or not self._add_small_file(path, name, info, folder_fd, base):
                self._add_file(path, name, info)
        elif stat.S_ISDIR(mode):
            self._add_directory(name, info)
            if self._one_file_system and info.st_dev != root_device:
                self._report.note(f"{path} is another file system; only the mount point was stored")
                return False
            return True
        elif stat.S_ISLNK(mode):
            self._add_symlink(path, name, info)
        else:
            self._report.note(f"{path} is a {_special_kind(mode)}; skipped")
        return False

    def add_file(self, path: str, *, name: str) -> None:
        """Add one regular file under a member name the caller chooses (flat binary log names, say)."""
        info = self._lstat(path)
        if info is None:
            return
        if not stat.S_ISREG(info.st_mode):
            self._report.warn(f"{path} is not a regular file; skipped")
            return
        self._add_file(path, os.fsencode(name), info)

    def _lstat(self, path: str) -> os.stat_result | None:
        """lstat a top-level path; a path that is gone or unreadable is a warning, not an abort."""
        try:
            return os.lstat(path)
        except FileNotFoundError:
            self._report.warn(f"{path} vanished before it could be read; skipped")
        except OSError as error:
            self._report.warn(f"{path} could not be read ({error.strerror}); skipped")
        return None

    def close(self) -> TarTotals:
        """Write the end-of-archive blocks and pad to a whole record; flush everything into the sink."""
        self._out.write(bytes(2 * BLOCK_BYTES))
        self._out.zeros(-self._out.written_bytes % RECORD_BYTES)
        self._out.flush()
        if self._index is not None:
            self._index.flush()
        self.totals.archive_bytes = self._out.total_bytes
        return self.totals

    # --- members -----------------------------------------------------------------------------

    def _listing(self, path: str, name: bytes, *, by_descriptor: bool) -> _Frame | None:
        """The folder's children in walk order, with the folder open by descriptor where the platform allows it
        (its files are then looked up in it: no path walk per file); None, with a warning, when it cannot be listed."""
        folder_fd = None
        try:
            if by_descriptor:
                folder_fd = platform.open_folder_to_list(path)
            with os.scandir(path if folder_fd is None else folder_fd) as listing:
                entries = sorted(listing, key=_walk_order)
        except OSError as error:
            if folder_fd is not None:
                os.close(folder_fd)
            if isinstance(error, FileNotFoundError):
                self._report.warn(f"{path} vanished while it was read; its contents are missing")
            else:
                self._report.warn(f"{path} could not be listed ({error.strerror}); its contents are missing")
            return None
        return folder_fd, path if path.endswith(os.sep) else path + os.sep, name + b"/" if name else b"", iter(entries)

    def _owner(self, info: os.stat_result) -> tuple[bytes, bytes]:
        uid, gid = info.st_uid, info.st_gid
        user = self._user_names.get(uid)
        if user is None:
            user = (platform.user_name_for_uid(uid) or "").encode("utf-8", "surrogateescape")
            self._user_names[uid] = user
        group = self._group_names.get(gid)
        if group is None:
            group = (platform.group_name_for_gid(gid) or "").encode("utf-8", "surrogateescape")
            self._group_names[gid] = group
        return user, group

    def _header(self, name: bytes, info: os.stat_result, *, typeflag: bytes, size: int = 0, linkname: bytes = b"") -> None:
        user, group = self._owner(info)
        self._member_offset = self._out.written_bytes
        self._out.write(build_header(
            name, typeflag=typeflag, mode=info.st_mode, uid=info.st_uid, gid=info.st_gid, size=size,
            mtime_ns=info.st_mtime_ns, linkname=linkname, uname=user, gname=group,
        ))
        self.totals.members += 1

    def _carry(self, name: bytes, info: os.stat_result, mode: int) -> bool:
        """True when the tracker says the member is unchanged: its index entry points at the set holding it."""
        kind = FILE if stat.S_ISREG(mode) else DIRECTORY if stat.S_ISDIR(mode) else SYMLINK if stat.S_ISLNK(mode) else None
        if kind is None:
            return False
        carried = self._tracker.unchanged(name, info, kind)  # type: ignore[union-attr]  # only called with one
        if carried is None:
            return False
        if self._index is not None:
            self._index.add(name, kind=carried.kind, size=carried.size, mtime_ns=info.st_mtime_ns, link=carried.link,
                            offset=carried.offset, set_id=carried.set_id)
        return True

    def _record(self, name: bytes, info: os.stat_result, *, kind: str, size: int = 0, link: bytes | None = None) -> None:
        """A member just written at self._member_offset: into the index, and to the tracker."""
        if self._index is not None:
            self._index.add(name, kind=kind, size=size, mtime_ns=info.st_mtime_ns, link=link, offset=self._member_offset)
        if self._tracker is not None:
            self._tracker.stored(name, info, kind, self._member_offset, link)

    def _add_directory(self, name: bytes, info: os.stat_result) -> None:
        self._header(name + b"/", info, typeflag=DIR_TYPE)
        self._record(name, info, kind=DIRECTORY)

    def _add_symlink(self, path: str, name: bytes, info: os.stat_result) -> None:
        try:
            target = os.fsencode(os.readlink(path))
        except FileNotFoundError:
            self._report.warn(f"{path} vanished before it could be read; skipped")
            return
        except OSError as error:
            self._report.warn(f"{path} could not be read ({error.strerror}); skipped")
            return
        self._header(name, info, typeflag=SYMBOLIC, linkname=target)
        self._record(name, info, kind=SYMLINK, link=target)

    def _file_template(self, info: os.stat_result) -> _Template | None:
        """The constant parts of a regular file's ustar header for its mode and owner; None when they need pax."""
        key = (info.st_mode & 0o7777, info.st_uid, info.st_gid)
        if key in self._templates:
            return self._templates[key]
        user, group = self._owner(info)
        template = None
        if info.st_uid <= _MAX_OCTAL_7 and info.st_gid <= _MAX_OCTAL_7 and len(user) <= 32 and len(group) <= 32 \
                and user.isascii() and group.isascii():
            header = build_header(b"", typeflag=REGULAR, mode=key[0], uid=key[1], gid=key[2], size=0, mtime_ns=0,
                                  uname=user, gname=group)
            # Checksum of everything but name, size and mtime, with the checksum field as eight blanks.
            template = _Template(header[100:124], header[156:], sum(header[100:124]) + sum(header[156:]) + 8 * 32)
        self._templates[key] = template
        return template

    def _add_small_file(self, path: str, name: bytes, info: os.stat_result, folder_fd: int | None = None,
                        base: str | None = None) -> bool:
        """Store a small regular file of one link with one read call and a header from its template: the
        per-file cost of trees of millions of tiny files. False (nothing done) when it needs _add_file."""
        seconds, fraction = divmod(info.st_mtime_ns, 1_000_000_000)
        template = self._templates.get((info.st_mode & 0o7777, info.st_uid, info.st_gid), _UNKNOWN)
        if template is _UNKNOWN:
            template = self._file_template(info)
        if template is None or len(name) > 100 or name.translate(None, PLAIN_NAME_BYTES) or not 0 <= seconds <= _MAX_OCTAL_11:
            return False
        try:
            fd = os.open(path, _O_READ) if folder_fd is None else os.open(base, _O_READ, dir_fd=folder_fd)  # type: ignore[arg-type]
        except OSError as error:
            self._warn_unopened(path, error)
            return True
        size = info.st_size
        try:
            if self.before_read is not None:
                self.before_read(path)
            # One byte more than the header promises: a shorter answer proves the file ends at size, so the
            # data is exactly what the header says, with no fstat or second read. A file rewritten in place
            # since the walk's lstat is stored as read (one read call: one version of it) under the older
            # mtime, and an incremental run sees the newer one and stores it again.
            data = os.read(fd, size + 1)
        except OSError as error:
            self._store_unread(path, name, info, error)
            return True
        finally:
            os.close(fd)
        if len(data) != size:
            self._store_unread(path, name, info, None, data)
            return True
        numbers = b"%011o\0%011o\0" % (size, seconds)
        checksum = template.checksum + (zlib.adler32(name) & 0xFFFF) + (zlib.adler32(numbers) & 0xFFFF) - 2
        if fraction:
            # The same pax mtime record build_header writes; its length prefix always has two digits.
            mtime_text = b"%d.%s" % (seconds, (b"%09d" % fraction).rstrip(b"0"))
            record = b" mtime=%s\n" % mtime_text
            record = b"%d%s" % (len(record) + 2, record)
            offset = self._out.append(b"".join((
                _pax_header_block(len(record)), record, _PADDING[-len(record) % BLOCK_BYTES],
                name.ljust(100, b"\0"), template.head, numbers, b"%06o\0 " % checksum, template.tail,
                data, _PADDING[-size % BLOCK_BYTES],
            )))
        else:
            mtime_text = b"%d" % seconds
            offset = self._out.append(b"".join((
                name.ljust(100, b"\0"), template.head, numbers, b"%06o\0 " % checksum, template.tail,
                data, _PADDING[-size % BLOCK_BYTES],
            )))
        totals = self.totals
        totals.members += 1
        totals.file_bytes += size
        self._member_offset = offset
        if self._index is not None:
            self._index.add_plain_file(name, size=size, mtime_text=mtime_text, offset=offset)
        if self._tracker is not None:
            self._tracker.stored(name, info, FILE, offset, None)
        return True

    def _store_unread(self, path: str, name: bytes, info: os.stat_result, error: OSError | None, data: bytes = b"") -> None:
        """A small file whose one read did not give its size: store what there was, as _copy_file would."""
        size = info.st_size
        self._header(name, info, typeflag=REGULAR, size=size)
        self._out.write(data[:size])
        self._out.zeros(size - min(len(data), size))
        if error is not None:
            self._report.warn(f"{path} could not be read to the end ({error.strerror}); stored zero-padded to {size} bytes")
        elif len(data) > size:
            self._report.warn(f"{path} grew while read; stored its first {size} bytes")
        else:
            self._report.warn(f"{path} shrank while read (from {size} to {len(data)} bytes); stored zero-padded to {size} bytes")
        self._out.zeros(-size % BLOCK_BYTES)
        self.totals.file_bytes += size
        self._record(name, info, kind=FILE, size=size)

    def _open(self, path: str) -> int | None:
        """Open a file to read it; a file gone, unreadable or turned into a symlink is a warning and None."""
        try:
            return os.open(path, _O_READ)
        except OSError as error:
            self._warn_unopened(path, error)
        return None

    def _warn_unopened(self, path: str, error: OSError) -> None:
        if isinstance(error, FileNotFoundError):
            self._report.warn(f"{path} vanished before it could be read; skipped")
        elif isinstance(error, PermissionError):
            self._report.warn(f"{path} could not be read (permission denied); skipped")
        elif error.errno == errno.ELOOP:
            self._report.warn(f"{path} was replaced by a symlink while read; skipped")
        else:
            self._report.warn(f"{path} could not be read ({error.strerror}); skipped")

    def _add_file(self, path: str, name: bytes, info: os.stat_result) -> None:
        link_key = (info.st_dev, info.st_ino) if info.st_nlink > 1 else None
        if link_key is not None:
            first = self._hard_links.get(link_key)
            if first is not None:
                self._header(name, info, typeflag=LINK, linkname=first)
                self._record(name, info, kind=HARDLINK, link=first)
                return
        fd = self._open(path)
        if fd is None:
            return
        with io.FileIO(fd, "rb", closefd=True) as file:
            if self.before_read is not None:
                self.before_read(path)
            # The header uses the lstat from the walk: a file replaced since then shows up below as
            # changed, shrunk or grown, and the archive stays valid in every case.
            self._copy_file(path, name, file, info)
        if link_key is not None:
            self._hard_links[link_key] = name

    def _copy_file(self, path: str, name: bytes, file: io.FileIO, info: os.stat_result) -> None:
        size = info.st_size
        self._header(name, info, typeflag=REGULAR, size=size)
        copied, error, grew = self._out.copy_from(file, size)
        if copied != size:
            # The header already promised size bytes: keep the archive valid whatever happened.
            self._out.zeros(size - copied)
            if error is not None:
                problem = f"could not be read to the end ({error.strerror})"
            else:
                problem = f"shrank while read (from {size} to {copied} bytes)"
            self._report.warn(f"{path} {problem}; stored zero-padded to {size} bytes")
        else:
            try:
                if grew is None:
                    grew = bool(file.read(1))
                after = os.fstat(file.fileno())
            except OSError:
                after = info
            if grew:
                self._report.warn(f"{path} grew while read; stored its first {size} bytes")
            elif (after.st_mtime_ns, after.st_size, after.st_ino) != (info.st_mtime_ns, size, info.st_ino):
                self._report.warn(f"{path} changed while read; the stored copy may be inconsistent")
        self._out.zeros(-size % BLOCK_BYTES)
        self.totals.file_bytes += size
        self._record(name, info, kind=FILE, size=size)


def _special_kind(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def write_tar(
    sink: BinaryIO,
    paths: Sequence[str],
    *,
    report: StreamReport,
    excludes: ExcludeRules | None = None,
    one_file_system: bool = False,
    index: IndexWriter | None = None,
) -> TarTotals:
    """Write one pax archive of paths (absolute) into sink and return what went in; problems go to report."""
    writer = TarWriter(sink, report=report, excludes=excludes, one_file_system=one_file_system, index=index)
    for path in paths:
        writer.add_tree(path)
    return writer.close()
