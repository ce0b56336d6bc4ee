"""Safe and faithful streaming extraction of a tar stream (ours, GNU tar's or tarfile's) into a target folder.

Refused: members whose name (or hard-link target) is absolute or has a ``..`` component; a hard link
to anything not restored in this run is skipped with a warning, one to a symlink becomes a second
symlink. Every symlink is restored exactly as archived, wherever it points. Nothing
is ever written through a symlink: every folder below the target is opened a component at a time
without following links (``platform.Folder``), files are created with O_EXCL inside the open folder,
and symlinks are made only after all other members (a placeholder file holds their name until then,
as GNU tar's delayed links do). Folder owners, modes and times are applied last, through the folder's
own descriptor. A file whose data arrives over several reads is written under a temporary name and
renamed into place only when complete; one whose data is already all in memory (most small files) is
written straight to its name, which is removed again if that write fails.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import stat
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO, NoReturn, TypeVar

from ncbackup import platform
from ncbackup.errors import BackupError, IntegrityError

BLOCK_BYTES = 512
_ZERO_BLOCK = bytes(BLOCK_BYTES)
CHUNK_BYTES = 1 << 20
_REGULAR_TYPES = (b"0", b"\0", b"7")
_SPECIAL_TYPES = {b"3": "character device", b"4": "block device", b"6": "FIFO"}
_WINDOWS = os.name == "nt"
_CHECKSUM_SPANS = ((0, 148), (156, 412), (412, 512))
_DRIVE = re.compile(rb"^[A-Za-z]:")
# Most names shown in refusals; the rest are counted.
_SHOWN_REFUSALS = 5
# Folders kept open between members, least recently used closed first: a tar lists a folder's members
# together, so nearly every member finds its folder open without a walk.
_OPEN_FOLDERS = 128

T = TypeVar("T")


class _Input:
    """Buffers the raw stream so 512-byte headers do not cost one read call each."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._buffer = b""
        self._position = 0
        self.offset = 0  # bytes consumed so far, for error messages

    def read_some(self, limit: int) -> memoryview:
        """Return up to limit bytes (fewer at a chunk boundary); empty only at the end of the stream."""
        if self._position >= len(self._buffer):
            self._buffer = self._raw.read(CHUNK_BYTES) or b""
            self._position = 0
            if not self._buffer:
                return memoryview(b"")
        end = min(len(self._buffer), self._position + limit)
        view = memoryview(self._buffer)[self._position:end]
        self._position = end
        self.offset += len(view)
        return view

    def take_buffered(self, count: int) -> memoryview | None:
        """The next count bytes if they are all in the current chunk (consumed), else None (nothing consumed)."""
        if self._position >= len(self._buffer) and count:
            self._buffer = self._raw.read(CHUNK_BYTES) or b""
            self._position = 0
        end = self._position + count
        if end > len(self._buffer):
            return None
        view = memoryview(self._buffer)[self._position:end]
        self._position = end
        self.offset += count
        return view

    def read_exact(self, count: int) -> bytes:
        """Return count bytes, or fewer only when the stream ends."""
        pieces = []
        while count:
            view = self.read_some(count)
            if not view:
                break
            pieces.append(view)
            count -= len(view)
        return b"".join(pieces)

    def skip(self, count: int) -> int:
        """Skip count bytes; return how many could not be skipped (stream ended)."""
        while count:
            view = self.read_some(min(count, CHUNK_BYTES))
            if not view:
                break
            count -= len(view)
        return count

    def drain(self) -> None:
        while self.read_some(CHUNK_BYTES):
            pass


@dataclass
class Member:
    """One tar member after pax/GNU extensions are applied."""

    name: bytes
    typeflag: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: bytes
    uname: bytes
    gname: bytes
    is_sparse: bool = False


def _number(field: bytes) -> int:
    if field and field[0] & 0x80:
        # GNU base-256 for values that do not fit in octal.
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 2)) if field[0] & 0x40 else value
    try:
        # The usual field, "0000644\0": one call instead of split and strip (seven fields per member).
        return int(field.rstrip(b"\0 "), 8)
    except ValueError:
        text = field.split(b"\0", 1)[0].strip(b" ")
        return int(text, 8) if text else 0


def _nul_terminated(field: bytes) -> bytes:
    return field.partition(b"\0")[0]


def _pax_records(data: bytes, offset: int) -> dict[bytes, bytes]:
    records: dict[bytes, bytes] = {}
    position = 0
    while position < len(data):
        if data[position] == 0:
            break
        space = data.find(b" ", position)
        try:
            length = int(data[position:space])
        except ValueError:
            raise IntegrityError(
                f"the files archive has a malformed pax header near byte {offset}; the stream is corrupted"
            ) from None
        if length <= 0 or space < 0:
            raise IntegrityError(f"the files archive has a malformed pax header near byte {offset}; the stream is corrupted")
        record = data[space + 1:position + length]
        if record.endswith(b"\n"):
            record = record[:-1]
        key, _, value = record.partition(b"=")
        records[key] = value
        position += length
    return records


def _pax_time_ns(value: bytes) -> int:
    text = value.decode("ascii", "replace").strip()
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("+-").partition(".")
    fraction = (fraction + "000000000")[:9]
    ns = int(whole or "0") * 1_000_000_000 + int(fraction or "0")
    return -ns if negative else ns


def _show(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


def safe_member_name(raw: bytes) -> bytes | None:
    """The member name as a relative path without ``.`` parts; None when absolute, climbing with ``..`` or holding a NUL."""
    name = raw.replace(b"\\", b"/") if _WINDOWS else raw
    if name.startswith(b"/") or b"\0" in name:
        return None
    parts = [part for part in name.split(b"/") if part not in (b"", b".")]
    if b".." in parts:
        return None
    if parts and _WINDOWS and _DRIVE.match(parts[0]):
        return None
    return b"/".join(parts)


class _Selection:
    """--path globs: a member is selected when it, or a folder above it, matches one."""

    def __init__(self, patterns: Sequence[str]) -> None:
        cleaned = [pattern.strip().strip("/") for pattern in patterns]
        cleaned = [pattern for pattern in cleaned if pattern]
        self._regex = re.compile("|".join(fnmatch.translate(pattern) for pattern in cleaned)) if cleaned else None

    def matches(self, name: bytes) -> bool:
        """Whether name itself (not a folder above it) matches a glob."""
        return self._regex is None or self._regex.match(name.decode("utf-8", "surrogateescape")) is not None

    def selects(self, name: bytes) -> bool:
        if self._regex is None:
            return True
        text = name.decode("utf-8", "surrogateescape")
        if self._regex.match(text):
            return True
        position = text.find("/")
        while position > 0:
            if self._regex.match(text[:position]):
                return True
            position = text.find("/", position + 1)
        return False


def member_selector(patterns: Sequence[str]) -> Callable[[bytes], bool]:
    """Whether a member name (as archived) is one extraction with these --path globs would consider: selected, or
    refused (an unsafe name is refused whatever the globs say)."""
    selection = _Selection(patterns)
    # A member below a selected folder is selected: remember folders, so a long index costs one match per name.
    folders: dict[bytes, bool] = {}

    def in_selected_folder(folder: bytes) -> bool:
        known = folders.get(folder)
        if known is None:
            parent = folder.rpartition(b"/")[0]
            known = folders[folder] = selection.matches(folder) or (bool(parent) and in_selected_folder(parent))
        return known

    def selects(raw: bytes) -> bool:
        relative = safe_member_name(raw)
        if relative is None:
            return True
        if not relative:
            return False
        parent = relative.rpartition(b"/")[0]
        return selection.matches(relative) or (bool(parent) and in_selected_folder(parent))

    return selects


class _NotRestorable(Exception):
    """A member's folder cannot be reached without going through a symlink or a file; the message says which."""


@dataclass
class _DelayedLink:
    """A symlink made after every other member, in place of the placeholder file with this (device, inode)."""

    member: Member
    placeholder: tuple[int, int]


class WantedMembers:
    """The members to extract from one stream of a chain: their header offsets, ascending (from the newest index)."""

    def __init__(self, offsets: Sequence[int], *, where: str) -> None:
        self._offsets = offsets
        self._next = 0
        self._where = where

    def take(self, offset: int, name: bytes) -> bool:
        """Whether the member whose first header is at offset is wanted; a wanted offset passed by is an error."""
        offsets, position = self._offsets, self._next
        if position < len(offsets) and offsets[position] == offset:
            self._next = position + 1
            return True
        if position < len(offsets) and offsets[position] < offset:
            self._missing(offsets[position])
        return False

    def finish(self) -> None:
        if self._next < len(self._offsets):
            self._missing(self._offsets[self._next])

    def _missing(self, offset: int) -> NoReturn:
        raise IntegrityError(
            f"the index says a member starts at byte {offset} of {self._where}, but none does; "
            "the chain is damaged: restore an older set, or verify the chain with `ncbackup verify`"
        )


class _Extractor:
    def __init__(self, target: Path, *, patterns: Sequence[str], restore_owners: bool) -> None:
        self._target = os.fsencode(os.path.abspath(target))
        self._selection = _Selection(patterns)
        self._restore_owners = restore_owners
        self._mode_mask = 0o7777 if restore_owners else 0o777
        self._root: platform.Folder
        # Open folders by relative name, least recently used first (see _OPEN_FOLDERS).
        self._folders: OrderedDict[bytes, platform.Folder] = OrderedDict()
        self._evicted: list[platform.Folder] = []
        self._restored_files: set[bytes] = set()
        self._directories: list[tuple[bytes, Member, tuple[int, int]]] = []
        self._links: dict[bytes, _DelayedLink] = {}
        self._uids: dict[tuple[bytes, int], int] = {}
        self._gids: dict[tuple[bytes, int], int] = {}
        self._counter = 0
        self.warnings: list[str] = []
        self.refused: list[str] = []
        self.restored = 0
        self._wanted: WantedMembers | None = None

    # --- reading ----------------------------------------------------------------------------

    def run(self, raw: BinaryIO) -> list[str]:
        return self.run_many([(raw, None)])

    def run_many(self, streams: Iterable[tuple[BinaryIO, WantedMembers | None]]) -> list[str]:
        """Extract several tar streams into the target as one restore (an incremental chain, oldest first):
        each member once, symlinks and folder metadata at the very end. A stream's WantedMembers, when given,
        says which members of it to extract (by offset); the others are skipped."""
        try:
            os.makedirs(self._target, exist_ok=True)
            self._root = platform.open_folder(self._target)
        except OSError as error:
            raise _target_error(b"the target folder", error, self._target) from None
        try:
            for raw, wanted in streams:
                self._wanted = wanted
                self._read(_Input(raw))
                if wanted is not None:
                    wanted.finish()
        except Exception:
            # Still make the symlinks and folder metadata of what was restored (as GNU tar does), so no
            # placeholder is left under a symlink's name; the first error is the one reported.
            with contextlib.suppress(Exception):
                self._finish()
            raise
        else:
            self._finish()
        finally:
            self._close_folders()
            self._root.close()
        return self.warnings

    def _read(self, source: _Input) -> None:
        global_pax: dict[bytes, bytes] = {}
        pax: dict[bytes, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        last_name = b""
        member_offset = 0
        while True:
            header_offset = source.offset
            if not pax and long_name is None and long_link is None:
                member_offset = header_offset   # a member's first header (its pax header, if any)
            block = source.read_exact(BLOCK_BYTES)
            if not block:
                self.warnings.append("the files archive has no end marker; it may be truncated after the last member restored")
                break
            if len(block) < BLOCK_BYTES:
                raise IntegrityError(f"the files archive ends in a header after {_show(last_name) or 'its start'}; the stream is truncated")
            if block == _ZERO_BLOCK:
                source.drain()
                break
            self._check_sum(block, header_offset)
            typeflag = block[156:157]
            size = self._parsed(partial(_number, block[124:136]), header_offset)
            if typeflag in (b"x", b"g", b"L", b"K"):
                data = source.read_exact(size)
                if len(data) < size or source.skip(-size % BLOCK_BYTES):
                    raise IntegrityError(f"the files archive ends in an extended header after {_show(last_name)}; the stream is truncated")
                if typeflag == b"x":
                    pax.update(_pax_records(data, header_offset))
                elif typeflag == b"g":
                    global_pax.update(_pax_records(data, header_offset))
                elif typeflag == b"L":
                    long_name = _nul_terminated(data)
                else:
                    long_link = _nul_terminated(data)
                continue
            records = {**global_pax, **pax} if global_pax else pax
            member = self._parsed(partial(self._member, block, records, long_name, long_link), header_offset)
            pax, long_name, long_link = {}, None, None
            last_name = member.name
            if self._wanted is not None and not self._wanted.take(member_offset, member.name):
                if member.typeflag not in (b"1", b"2", b"5", b"3", b"4", b"6"):
                    self._skip_data(member, source)
                continue
            try:
                self._handle(member, source)
            except OSError as error:
                raise _target_error(member.name, error, self._target) from None
            except (OverflowError, ValueError) as error:
                # An owner or time this system cannot represent (a uid past 2**32, a year past time_t).
                raise IntegrityError(
                    f"the files archive member {_show(member.name)} has a value this system cannot store ({error}); "
                    "the stream is corrupted or was not made by a tar tool"
                ) from None

    @staticmethod
    def _parsed(parse: Callable[[], T | None], offset: int) -> T:
        """Run a header parser; a malformed number or negative size is a corrupted stream, not a traceback."""
        try:
            value = parse()
        except ValueError:
            value = None
        if value is None or (isinstance(value, int) and value < 0) or (isinstance(value, Member) and value.size < 0):
            raise IntegrityError(
                f"the files archive has a malformed header at byte {offset}; the stream is corrupted or is not a tar archive"
            )
        return value

    @staticmethod
    def _check_sum(block: bytes, offset: int) -> None:
        try:
            stored = _number(block[148:156])
        except ValueError:
            stored = -1
        # Unsigned byte sum with the checksum field as blanks, via Adler-32's low half, which is exact
        # for at most 256 bytes (see the writer); some old tars wrote the signed sum instead.
        view = memoryview(block)
        computed = 8 * 32 - 3 + sum(zlib.adler32(view[start:end]) & 0xFFFF for start, end in _CHECKSUM_SPANS)
        if stored != computed and stored != computed - 256 * sum(1 for byte in block if byte > 127):
            raise IntegrityError(
                f"the files archive has a damaged header at byte {offset} (checksum mismatch); "
                "the stream is corrupted or is not a tar archive"
            )

    @staticmethod
    def _member(block: bytes, pax: dict[bytes, bytes], long_name: bytes | None, long_link: bytes | None) -> Member:
        name = _nul_terminated(block[0:100])
        # POSIX ustar keeps a name prefix here; GNU's old format uses the same bytes for other things.
        if block[257:263] == b"ustar\0":
            prefix = _nul_terminated(block[345:500])
            if prefix:
                name = prefix + b"/" + name
        if not pax and long_name is None and long_link is None:
            # The common member, a plain ustar header: no lookups in empty extension records.
            return Member(
                name, block[156:157], _number(block[100:108]), _number(block[108:116]), _number(block[116:124]),
                _number(block[124:136]), _number(block[136:148]) * 1_000_000_000, _nul_terminated(block[157:257]),
                _nul_terminated(block[265:297]), _nul_terminated(block[297:329]),
            )
        name = pax.get(b"path", long_name if long_name is not None else name)
        linkname = pax.get(b"linkpath", long_link if long_link is not None else _nul_terminated(block[157:257]))
        size = int(pax[b"size"]) if b"size" in pax else _number(block[124:136])
        mtime_ns = _pax_time_ns(pax[b"mtime"]) if b"mtime" in pax else _number(block[136:148]) * 1_000_000_000
        return Member(
            name=name,
            typeflag=block[156:157],
            mode=_number(block[100:108]),
            uid=int(pax[b"uid"]) if b"uid" in pax else _number(block[108:116]),
            gid=int(pax[b"gid"]) if b"gid" in pax else _number(block[116:124]),
            size=size,
            mtime_ns=mtime_ns,
            linkname=linkname,
            uname=pax.get(b"uname", _nul_terminated(block[265:297])),
            gname=pax.get(b"gname", _nul_terminated(block[297:329])),
            is_sparse=any(key.startswith(b"GNU.sparse.") for key in pax),
        )

    # --- writing ----------------------------------------------------------------------------

    def _skip_data(self, member: Member, source: _Input) -> None:
        if source.skip(member.size + (-member.size % BLOCK_BYTES)):
            raise IntegrityError(f"the files archive ends inside {_show(member.name)}; the stream is truncated")

    def _handle(self, member: Member, source: _Input) -> None:
        if self._evicted:
            self._close_evicted()
        typeflag = member.typeflag
        has_data = typeflag in _REGULAR_TYPES or typeflag not in (b"1", b"2", b"5", b"3", b"4", b"6")
        relative = safe_member_name(member.name)
        if relative is None:
            self.refused.append(f"{_show(member.name)} (absolute name, '..' or a NUL byte)")
            if has_data:
                self._skip_data(member, source)
            return
        if not relative or not self._selection.selects(relative):
            if has_data:
                self._skip_data(member, source)
            return
        link_source = b""
        if typeflag == b"1":
            safe_source = safe_member_name(member.linkname)
            if safe_source is None:
                self.refused.append(f"{_show(relative)} (hard link to {_show(member.linkname)} outside the target)")
                return
            link_source = safe_source
        elif member.is_sparse or typeflag == b"S":
            self.warnings.append(f"{_show(relative)} is stored as a sparse member, which ncbackup cannot restore; skipped (use GNU tar)")
            self._skip_data(member, source)
            return
        elif typeflag in _SPECIAL_TYPES:
            self.warnings.append(f"{_show(relative)} is a {_SPECIAL_TYPES[typeflag]}; not restored")
            return
        elif typeflag not in _REGULAR_TYPES and typeflag not in (b"2", b"5"):
            self.warnings.append(f"{_show(relative)} has an unknown member type {typeflag!r}; skipped")
            self._skip_data(member, source)
            return
        parent, _, name = relative.rpartition(b"/")
        try:
            folder = self._folder(parent)
        except _NotRestorable as problem:
            self.warnings.append(f"{_show(relative)} not restored: {problem}")
            if has_data:
                self._skip_data(member, source)
            return
        if typeflag == b"5":
            self._directory(folder, name, relative, member)
        elif typeflag == b"2":
            self._symlink(folder, name, relative, member)
        elif typeflag == b"1":
            self._hard_link(folder, name, relative, member, link_source)
        else:
            self._file(folder, name, relative, member, source)

    def _temporary(self) -> bytes:
        self._counter += 1
        return b".ncbackup-%d-%d.part" % (os.getpid(), self._counter)

    def _folder(self, relative: bytes, *, create: bool = True) -> platform.Folder:
        """The folder relative (b"" is the target) opened one component at a time, never through a link.

        Missing folders are created (0755) unless create is False; a symlink or a file on the way raises
        _NotRestorable. Open folders are kept, so a member next to the previous one costs no walk.
        """
        folders = self._folders
        folder = folders.get(relative)
        if folder is not None:
            folders.move_to_end(relative)
            return folder
        if not relative:
            return self._root
        names = []
        above = relative
        while True:
            above, _, name = above.rpartition(b"/")
            names.append(name)
            if not above:
                folder = self._root
                break
            folder = folders.get(above)
            if folder is not None:
                folders.move_to_end(above)
                break
        create_mode = 0o755 if create else None
        path = above
        for name in reversed(names):
            path = path + b"/" + name if path else name
            try:
                folder = folder.child(name, create_mode=create_mode)
            except platform.NotAFolder:
                raise _NotRestorable(f"{_show(path)} in the target is a symlink or a file, not a folder") from None
            self._remember(path, folder)
        return folder

    def _remember(self, relative: bytes, folder: platform.Folder) -> None:
        self._folders[relative] = folder
        if len(self._folders) > _OPEN_FOLDERS:
            # Closed before the next member, not now: the member being restored may still use it.
            self._evicted.append(self._folders.popitem(last=False)[1])

    def _close_evicted(self) -> None:
        for folder in self._evicted:
            folder.close()
        self._evicted.clear()

    def _close_folders(self) -> None:
        self._close_evicted()
        for folder in self._folders.values():
            folder.close()
        self._folders.clear()

    def _restored(self, relative: bytes) -> None:
        self._restored_files.add(relative)
        self.restored += 1
        if self._links:
            self._links.pop(relative, None)  # a later member of the same name wins over a delayed link

    def _ids(self, member: Member) -> tuple[int, int]:
        # Names win over numbers, as with GNU tar: uids differ between machines, names rarely.
        user_key = (member.uname, member.uid)
        uid = self._uids.get(user_key)
        if uid is None:
            found = platform.uid_for_user_name(member.uname.decode("utf-8", "surrogateescape")) if member.uname else None
            uid = self._uids[user_key] = member.uid if found is None else found
        group_key = (member.gname, member.gid)
        gid = self._gids.get(group_key)
        if gid is None:
            found = platform.gid_for_group_name(member.gname.decode("utf-8", "surrogateescape")) if member.gname else None
            gid = self._gids[group_key] = member.gid if found is None else found
        return uid, gid

    def _owner(self, member: Member) -> tuple[int, int] | None:
        return self._ids(member) if self._restore_owners else None

    def _file(self, folder: platform.Folder, name: bytes, relative: bytes, member: Member, source: _Input) -> None:
        # A member whose data (and padding) is already in hand cannot be cut short by the stream: write it
        # under its own name, no temporary and rename (most members are small files).
        record = source.take_buffered(member.size + (-member.size % BLOCK_BYTES))
        if record is not None and self._file_in_hand(folder, name, relative, member, record[:member.size]):
            return
        temporary = self._temporary()
        fd = folder.create_file(temporary, 0o600)
        is_open = True
        try:
            remaining = 0 if record is not None else member.size
            if record is not None:
                data = record[:member.size]
                while data:
                    data = data[os.write(fd, data):]
            while remaining:
                view = source.read_some(min(remaining, CHUNK_BYTES))
                if not view:
                    raise IntegrityError(f"the files archive ends inside {_show(relative)}; the stream is truncated")
                remaining -= len(view)
                while view:
                    view = view[os.write(fd, view):]
            if record is None and source.skip(-member.size % BLOCK_BYTES):
                raise IntegrityError(f"the files archive ends inside {_show(relative)}; the stream is truncated")
            is_open = False
            folder.finish_file(
                fd, temporary, owner=self._owner(member), mode=member.mode & self._mode_mask, mtime_ns=member.mtime_ns,
            )
            try:
                folder.replace(temporary, name)
            except IsADirectoryError:
                folder.remove(temporary)
                self.warnings.append(f"{_show(relative)} not restored: a folder of that name is in the target")
                return
        except BaseException:
            if is_open:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                folder.remove(temporary)
            raise
        self._restored(relative)

    def _file_in_hand(self, folder: platform.Folder, name: bytes, relative: bytes, member: Member, data: memoryview) -> bool:
        """Write a member whose data is complete in memory straight to its name; False if that name exists."""
        try:
            fd = folder.create_file(name, 0o600)
        except FileExistsError:
            return False  # --force over an existing file: the temporary name and rename replace it atomically
        is_open = True
        try:
            while data:
                data = data[os.write(fd, data):]
            is_open = False
            folder.finish_file(
                fd, name, owner=self._owner(member), mode=member.mode & self._mode_mask, mtime_ns=member.mtime_ns,
            )
        except BaseException:
            # A file we could not finish (disk full, interrupted) must not stay behind as if restored.
            if is_open:
                os.close(fd)
            folder.remove(name)
            raise
        self._restored(relative)
        return True

    def _directory(self, folder: platform.Folder, name: bytes, relative: bytes, member: Member) -> None:
        opened = self._folders.get(relative)
        if opened is None:
            try:
                folder.make_folder(name, 0o700)
            except FileExistsError:
                pass
            try:
                opened = folder.child(name)
            except platform.NotAFolder:
                self.warnings.append(f"{_show(relative)} not restored: a file or symlink of that name is in the target")
                return
            self._remember(relative, opened)
        # Applied at the end: writing the folder's contents would change its mtime, a read-only mode would block them.
        self._directories.append((relative, member, opened.identity()))
        self.restored += 1

    def _symlink(self, folder: platform.Folder, name: bytes, relative: bytes, member: Member) -> None:
        # Made at the end, whatever it points to (like GNU tar's delayed links): until then a placeholder
        # file holds the name, so no later member can be written through the link.
        if b"\0" in member.linkname:
            self.warnings.append(f"symlink {_show(relative)} not restored: its target contains a NUL byte")
            return
        placeholder = self._placeholder(folder, name, relative)
        if placeholder is not None:
            self._links[relative] = _DelayedLink(member, placeholder)
            self._restored_files.discard(relative)

    def _placeholder(self, folder: platform.Folder, name: bytes, relative: bytes) -> tuple[int, int] | None:
        """Put an empty file under name and return its (device, inode); None when a folder has the name."""
        temporary = None
        try:
            fd = folder.create_file(name, 0)
        except FileExistsError:
            temporary = self._temporary()
            fd = folder.create_file(temporary, 0)
        try:
            info = os.fstat(fd)
        finally:
            os.close(fd)
        if temporary is not None:
            try:
                folder.replace(temporary, name)
            except IsADirectoryError:
                folder.remove(temporary)
                self.warnings.append(f"{_show(relative)} not restored: a folder of that name is in the target")
                return None
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    folder.remove(temporary)
                raise
        return info.st_dev, info.st_ino

    def _hard_link(self, folder: platform.Folder, name: bytes, relative: bytes, member: Member, source_name: bytes) -> None:
        delayed = self._links.get(source_name)
        if delayed is not None:
            # A hard link to a symlink (GNU tar stores those): restored as an independent second symlink
            # with the same target, delayed like the first.
            self._symlink(folder, name, relative, delayed.member)
            return
        if source_name not in self._restored_files:
            self.warnings.append(
                f"hard link {_show(relative)} not restored: its target {_show(source_name)} was not restored in this run"
            )
            return
        source_parent, _, source_base = source_name.rpartition(b"/")
        try:
            source_folder = self._folder(source_parent, create=False)
            is_file = stat.S_ISREG(source_folder.lstat(source_base).st_mode)
        except (_NotRestorable, FileNotFoundError):
            is_file = False
        if not is_file:
            self.warnings.append(
                f"hard link {_show(relative)} not restored: its target {_show(source_name)} is no longer a file in the target"
            )
            return
        temporary = self._temporary()
        try:
            folder.hard_link(source_folder, source_base, temporary)
            folder.replace(temporary, name)
        except IsADirectoryError:
            self.warnings.append(f"{_show(relative)} not restored: a folder of that name is in the target")
            return
        finally:
            # rename() between two names of one inode does nothing and leaves the temporary name.
            with contextlib.suppress(FileNotFoundError):
                folder.remove(temporary)
        self._restored(relative)

    # --- finishing --------------------------------------------------------------------------

    def _finish(self) -> None:
        """Make the delayed symlinks, then give folders their owner, mode and mtime, deepest first."""
        try:
            # Walk again from the target: a folder swapped for a link since it was opened is seen now.
            self._close_folders()
            links, self._links = self._links, {}
            for relative, link in links.items():
                self._make_link(relative, link)
                self._close_evicted()
            directories, self._directories = self._directories, []
            for relative, member, identity in reversed(directories):
                self._finish_folder(relative, member, identity)
                self._close_evicted()
        except OSError as error:
            raise _target_error(b"symlinks and folder metadata", error, self._target) from None

    def _make_link(self, relative: bytes, link: _DelayedLink) -> None:
        parent, _, name = relative.rpartition(b"/")
        try:
            folder = self._folder(parent, create=False)
            info = folder.lstat(name)
            is_placeholder = stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) == link.placeholder
        except (_NotRestorable, FileNotFoundError):
            is_placeholder = False
        if not is_placeholder:
            self.warnings.append(f"symlink {_show(relative)} not restored: its place in the target changed during the restore")
            return
        member = link.member
        temporary = self._temporary()
        try:
            folder.symlink(member.linkname, temporary)
            folder.set_link_metadata(temporary, owner=self._owner(member), mtime_ns=member.mtime_ns)
            folder.replace(temporary, name)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                folder.remove(temporary)
            raise
        self.restored += 1

    def _finish_folder(self, relative: bytes, member: Member, identity: tuple[int, int]) -> None:
        try:
            folder = self._folder(relative, create=False)
            is_same = folder.identity() == identity
        except (_NotRestorable, FileNotFoundError):
            is_same = False
        if not is_same:
            self.warnings.append(
                f"folder {_show(relative)}: owner, mode and mtime not applied; it was replaced during the restore"
            )
            return
        folder.set_metadata(owner=self._owner(member), mode=member.mode & self._mode_mask, mtime_ns=member.mtime_ns)


def _target_error(name: bytes, error: OSError, target: bytes) -> BackupError:
    return BackupError(
        f"cannot restore {_show(name)} into {_show(target)} ({error.strerror or error}); "
        "check free space and permissions of the target, or choose another one"
    )


def extract_tar(
    reader: BinaryIO,
    target: Path,
    *,
    patterns: Sequence[str] = (),
    restore_owners: bool | None = None,
) -> list[str]:
    """Extract the tar stream in reader into target; return warnings; raise IntegrityError for refused or corrupt members.

    ``patterns`` are --path globs on member names (``etc/ssh`` or ``etc/*.conf``); owners are
    restored only when running as root (``restore_owners`` None) or when asked.
    """
    extractor = _Extractor(
        target, patterns=patterns, restore_owners=platform.is_root() if restore_owners is None else restore_owners,
    )
    warnings = extractor.run(reader)
    _raise_refused(extractor, target)
    return warnings


def extract_chain(
    streams: Iterable[tuple[BinaryIO, WantedMembers | None]],
    target: Path,
    *,
    restore_owners: bool | None = None,
) -> list[str]:
    """Extract the wanted members of each tar stream (an incremental chain, oldest first; None: all of that
    stream's) into target as one restore; return warnings; raise IntegrityError for refused, corrupt or missing
    members."""
    extractor = _Extractor(
        target, patterns=(), restore_owners=platform.is_root() if restore_owners is None else restore_owners,
    )
    warnings = extractor.run_many(streams)
    _raise_refused(extractor, target)
    return warnings


def _raise_refused(extractor: _Extractor, target: Path) -> None:
    if extractor.refused:
        shown = "; ".join(extractor.refused[:_SHOWN_REFUSALS])
        more = len(extractor.refused) - _SHOWN_REFUSALS
        raise IntegrityError(
            f"refused {len(extractor.refused)} archive member(s) that would land outside {target}: {shown}"
            + (f" and {more} more" if more > 0 else "")
            + "; the other members were restored; the archive was not made by ncbackup or was tampered with"
        )
