"""The local state of one files stream: what its last complete set held, member by member, in walk order.

One file per config and files stream (``state_path``). Layout: a magic line, then the records as one
zlib stream, then a JSON trailer (the set it describes, its chain, the fingerprint of what decides the
walk, the storages holding the set complete, the roots walked, the set table), the trailer's length and
a SHA-256 of everything before it. A record is one fixed ``struct`` plus its name front-coded against
the previous record's name, and its link. Reading and writing stream: memory stays flat in the number
of members. A new state is written to a temporary file beside the old one and renamed over it only by
``commit``, after the set is complete; a run that fails or stops leaves the old state as it was.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

from ncbackup import platform
from ncbackup.archive.index import DIRECTORY, FILE, HARDLINK, SYMLINK
from ncbackup.snapshots.naming import config_tag

MAGIC = b"ncbackup-state 1\n"
FORMAT_VERSION = 1
MAX_TRAILER_BYTES = 16 << 20
CHUNK_BYTES = 1 << 20
ROOT = "root"   # a record that starts the members of one walked root (its name is the root's member name)
KINDS = (FILE, DIRECTORY, SYMLINK, HARDLINK, ROOT)
_KIND_CODES = {kind: code for code, kind in enumerate(KINDS)}
# kind, shared name prefix, name suffix length, link length (NO_LINK: none), set index,
# size, mtime_ns, ctime_ns, inode, device, offset
_RECORD = struct.Struct("<BHHHHQqqQQQ")
_TAIL = struct.Struct("<I32s")
NO_LINK = 0xFFFF


class StateDamaged(Exception):
    """A state file that cannot be trusted: its text says what is wrong, in a few words."""


class Record(NamedTuple):
    """One member as the state remembers it (a tuple: a million of them are made per run, one at a time)."""

    name: bytes
    kind: str
    size: int          # st_size as seen by the walk (for every kind: it is compared, not restored)
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int
    set_index: int     # into StateInfo.sets: the set whose files stream holds the member
    offset: int        # of its header in that set's plain tar stream
    link: bytes | None = None


@dataclass(frozen=True)
class StateInfo:
    """The trailer of a state file: which set it describes and how that set was made."""

    set_id: str
    chain: tuple[str, ...]          # the sets the described set needs, oldest (the full) first; () for a full
    fingerprint: str                # of includes, excludes, ONE_FILE_SYSTEM and snapshots: what decides the walk
    storages: tuple[str, ...]       # storage names that hold the set complete
    roots: tuple[bytes, ...]        # member names of the roots walked, in walk order
    records: int

    @property
    def sets(self) -> tuple[str, ...]:
        """The set table records index into: the chain, then the set itself."""
        return (*self.chain, self.set_id)

    @property
    def full_set_id(self) -> str:
        return self.chain[0] if self.chain else self.set_id


def state_path(folder: Path, config_path: Path, section_name: str, stream_name: str) -> Path:
    """The state file of one files stream of one config: two configs on one host never share one."""
    return Path(folder) / f"{stream_name}-{config_tag(config_path, section_name)}.state"


def ensure_folder(folder: Path) -> None:
    """Create the state folder (its parents too) for its owner only; OSError when that is impossible."""
    folder = Path(folder)
    if folder.is_dir():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        platform.create_private_folder(folder)
    except FileExistsError:
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from None


# --- reading -------------------------------------------------------------------------------------


def read_info(path: Path) -> StateInfo:
    """The state's trailer once the whole file's checksum matches; FileNotFoundError, or StateDamaged."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size < len(MAGIC) + _TAIL.size or file.read(len(MAGIC)) != MAGIC:
            raise StateDamaged("it is not a state file of this version")
        file.seek(size - _TAIL.size)
        trailer_bytes, checksum = _TAIL.unpack(file.read(_TAIL.size))
        trailer_at = size - _TAIL.size - trailer_bytes
        if trailer_bytes > MAX_TRAILER_BYTES or trailer_at < len(MAGIC):
            raise StateDamaged("its trailer is cut or too large")
        file.seek(0)
        digest = hashlib.sha256()
        remaining = size - _TAIL.size
        while remaining:
            chunk = file.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                raise StateDamaged("it is shorter than it says")
            digest.update(chunk)
            remaining -= len(chunk)
        if digest.digest() != checksum:
            raise StateDamaged("its checksum does not match (it was damaged or cut)")
        file.seek(trailer_at)
        try:
            raw = json.loads(file.read(trailer_bytes))
            info = StateInfo(
                set_id=str(raw["set_id"]), chain=tuple(str(item) for item in raw["chain"]),
                fingerprint=str(raw["fingerprint"]), storages=tuple(str(item) for item in raw["storages"]),
                roots=tuple(os.fsencode(str(item)) for item in raw["roots"]), records=int(raw["records"]),
            )
            if raw.get("version") != FORMAT_VERSION:
                raise StateDamaged(f"its version {raw.get('version')!r} is not {FORMAT_VERSION}")
        except (ValueError, KeyError, TypeError) as error:
            raise StateDamaged(f"its trailer is invalid ({error})") from None
        return info


def read_records(path: Path, info: StateInfo) -> Iterator[Record]:
    """The records of a state whose trailer read_info returned, in walk order, decompressed as they are needed."""
    for record, _encoded, _before in read_encoded(path, info):
        yield record


def read_encoded(path: Path, info: StateInfo) -> Iterator[tuple[Record, bytes, bytes]]:
    """Each record with its encoded bytes and the name they are front-coded against (``StateWriter.add_encoded``)."""
    sets = len(info.sets)
    with open(path, "rb") as file:
        file.seek(len(MAGIC))
        inflater = zlib.decompressobj()
        buffer = b""
        position = 0
        previous = b""
        count = 0
        header_size = _RECORD.size
        unpack = _RECORD.unpack_from
        is_file_done = False
        while True:
            if len(buffer) - position < header_size + 2 * 0xFFFF and not inflater.eof:
                # Inflate at most a chunk at a time: a well-compressed state must not expand whole into memory.
                data = inflater.unconsumed_tail
                if not data and not is_file_done:
                    data = file.read(CHUNK_BYTES)
                    is_file_done = not data
                if not data:
                    raise StateDamaged("its records are cut")
                buffer = buffer[position:] + inflater.decompress(data, CHUNK_BYTES)
                position = 0
                continue
            if len(buffer) - position < header_size:
                if position != len(buffer):
                    raise StateDamaged("its last record is cut")
                break
            start = position
            (code, shared, suffix_length, link_length, set_index,
             size, mtime_ns, ctime_ns, ino, dev, offset) = unpack(buffer, position)
            position += header_size
            name = previous[:shared] + buffer[position:position + suffix_length]
            position += suffix_length
            link = None
            if link_length != NO_LINK:
                link = buffer[position:position + link_length]
                position += link_length
            if position > len(buffer) or code >= len(KINDS) or set_index >= sets or shared > len(previous):
                raise StateDamaged("a record is invalid")
            count += 1
            yield (Record(name, KINDS[code], size, mtime_ns, ctime_ns, ino, dev, set_index, offset, link),
                   buffer[start:position], previous)
            previous = name
        if count != info.records:
            raise StateDamaged(f"it holds {count} records, not {info.records}")


def _shared_prefix_length(name: bytes, previous: bytes) -> int:
    """A prefix the two names share (not always the longest: any shared prefix decodes the same)."""
    # In walk order a name mostly shares its folder with the previous one; one slice comparison finds that.
    folder = name.rfind(b"/") + 1
    if folder and folder <= 0xFFFF and previous[:folder] == name[:folder]:
        return folder
    # Else (a folder's first child, another root): a binary search over slice comparisons, one C call each.
    low, high = 0, min(len(name), len(previous), 0xFFFF)
    while low < high:
        middle = (low + high + 1) // 2
        if name[:middle] == previous[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


# --- writing -------------------------------------------------------------------------------------


class StateWriter:
    """Writes the next state into a temporary file beside path; ``commit`` renames it over path, ``discard`` removes it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        ensure_folder(self.path.parent)
        fd, temp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self._temp = Path(temp_name)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self._deflater = zlib.compressobj(1)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._previous = b""
        self._roots: list[bytes] = []
        self.records = 0
        self._is_closed = False
        # A write that fails (a full disk) must not fail the backup: the set is right without the new state,
        # and the old state still describes a complete set. Remembered here, raised by commit.
        self.error: OSError | None = None
        self._emit(MAGIC)

    def _emit(self, data: bytes) -> None:
        if data and self.error is None:
            self._digest.update(data)
            try:
                self._file.write(data)
            except OSError as error:
                self.error = error

    def add_root(self, name: bytes) -> None:
        """The members that follow belong to the root walked under this member name."""
        self._roots.append(name)
        self._add(name, ROOT, 0, 0, 0, 0, 0, 0, 0, None)

    def add(self, record: Record) -> None:
        self._add(*record)

    def add_encoded(self, record: Record, encoded: bytes, before: bytes) -> None:
        """Add a record read from a state (``read_encoded``) unchanged: its bytes as they were, when they were
        front-coded against the name written last here (a no-change run: nearly always), else encoded anew."""
        if before != self._previous:
            self._add(*record)
            return
        self._previous = record.name
        self.records += 1
        self._pending.append(encoded)
        self._pending_bytes += len(encoded)
        if self._pending_bytes >= CHUNK_BYTES:
            self._drain()

    def _add(self, name: bytes, kind: str, size: int, mtime_ns: int, ctime_ns: int, ino: int, dev: int,
             set_index: int, offset: int, link: bytes | None) -> None:
        shared = _shared_prefix_length(name, self._previous)
        suffix = name[shared:]
        data = _RECORD.pack(_KIND_CODES[kind], shared, len(suffix), NO_LINK if link is None else len(link), set_index,
                            size, mtime_ns, ctime_ns, ino, dev, offset) + suffix
        if link is not None:
            data += link
        self._previous = name
        self.records += 1
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= CHUNK_BYTES:
            self._drain()

    def _drain(self) -> None:
        self._emit(self._deflater.compress(b"".join(self._pending)))
        self._pending.clear()
        self._pending_bytes = 0

    def commit(self, *, set_id: str, chain: tuple[str, ...], fingerprint: str, storages: tuple[str, ...]) -> None:
        """Finish the file and rename it over the state: from now on it describes set_id. OSError: nothing changed."""
        if self.error is not None:
            self.discard()
            raise self.error
        self._drain()
        self._emit(self._deflater.flush())
        trailer = json.dumps({
            "version": FORMAT_VERSION, "set_id": set_id, "chain": list(chain), "fingerprint": fingerprint,
            "storages": list(storages), "roots": [os.fsdecode(root) for root in self._roots], "records": self.records,
        }).encode("utf-8", "surrogateescape")
        self._emit(trailer)
        try:
            if self.error is not None:
                raise self.error
            self._file.write(_TAIL.pack(len(trailer), self._digest.digest()))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._is_closed = True
            os.replace(self._temp, self.path)
        except OSError:
            self.discard()
            raise
        platform.fsync_directory(self.path.parent)

    def discard(self) -> None:
        """Drop the new state (the set did not complete): the old one stays."""
        if not self._is_closed:
            self._is_closed = True
            try:
                self._file.close()
            except OSError:
                pass    # a buffered write that cannot be flushed: the file goes anyway
        try:
            self._temp.unlink()
        except FileNotFoundError:
            pass
