"""Backup-set naming and the manifest: what a set looks like on any storage.

A set is ``<set-id>/<stream-file>.<NNN>`` parts plus ``<set-id>/manifest.json``, written last as the
commit marker. The set id is the UTC start time, ``20261126T030000Z``; a second set started in the
same second gets ``-2``, ``-3``... appended.

Part numbers are three digits (``.000`` to ``.999``, as the original tool named them) and simply
grow a digit past 999 (``.1000``). Past 999 a plain lexical sort no longer gives the order, so the
manifest is authoritative: it lists every part in order with its size and SHA-256, and readers
order parts by the manifest (or, without one, by ``part_index``, which parses the number).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ncbackup import __version__
from ncbackup.errors import IntegrityError, StorageError
from ncbackup.storage.base import Storage

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SET_ID_FORMAT = "%Y%m%dT%H%M%SZ"
SET_ID_PATTERN = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d+))?$")
PART_PATTERN = re.compile(r"^(?P<stream_file>.+)\.(?P<index>\d{3,})$")

STATUS_OK = "ok"
STATUS_FAILED = "failed"


def set_id_for(moment: datetime, taken: Iterable[str] = ()) -> str:
    """Return the set id for a UTC moment, suffixed -2, -3... when that second is already taken."""
    base = moment.astimezone(timezone.utc).strftime(SET_ID_FORMAT)
    taken_ids = set(taken)
    candidate, number = base, 1
    while candidate in taken_ids:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def is_set_id(text: str) -> bool:
    """True when text is a set id (``20261126T030000Z`` or ``20261126T030000Z-2``)."""
    return SET_ID_PATTERN.match(text) is not None


def set_time(set_id: str) -> datetime:
    """The UTC start time encoded in a set id."""
    match = SET_ID_PATTERN.match(set_id)
    if match is None:
        raise ValueError(f"not a set id: {set_id!r}")
    return datetime.strptime(match.group(1), SET_ID_FORMAT).replace(tzinfo=timezone.utc)


def part_name(stream_file: str, index: int) -> str:
    """``files.tar.zst.age`` + 0 -> ``files.tar.zst.age.000`` (more digits past 999)."""
    return f"{stream_file}.{index:03d}"


def part_index(name: str) -> int | None:
    """The part number of a part file name, or None if name is not a part."""
    match = PART_PATTERN.match(name)
    return int(match.group("index")) if match else None


def part_key(set_id: str, name: str) -> str:
    """Storage key of a file of a set."""
    return f"{set_id}/{name}"


def manifest_key(set_id: str) -> str:
    return f"{set_id}/{MANIFEST_NAME}"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class PartInfo:
    name: str          # file name inside the set folder, e.g. files.tar.zst.age.000
    size_bytes: int
    sha256: str        # hex


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a set as the manifest records it (no secrets, no file names of the backed-up data)."""

    name: str                      # e.g. "files", "mysql-3306-shop"
    kind: str                      # the restorer key: "files", "mysql", ...
    file_name: str                 # stream file name without part number: files.tar.zst.age
    codec: str                     # compression stage name: "zstd", "gzip", "none"
    cipher: str                    # encryption stage name: "age", "openssl-legacy", "none"
    status: str = STATUS_OK        # "ok" | "failed"
    error: str | None = None
    recipient_fingerprints: tuple[str, ...] = ()
    compression: dict[str, Any] = field(default_factory=dict)   # stage.describe()
    encryption: dict[str, Any] = field(default_factory=dict)    # stage.describe()
    metadata: dict[str, Any] = field(default_factory=dict)      # the source's StreamReport.metadata
    bytes_in: int = 0              # plain bytes the source produced
    bytes_out: int = 0             # stored bytes (sum of parts)
    warning_count: int = 0         # warnings themselves may name files: they stay in the run report
    parts: tuple[PartInfo, ...] = ()

    @property
    def is_ok(self) -> bool:
        return self.status == STATUS_OK


@dataclass(frozen=True)
class Manifest:
    """The commit marker of a set; its presence on a storage means the set is complete there."""

    host: str
    set_id: str
    started_at: datetime
    finished_at: datetime
    streams: tuple[StreamInfo, ...]
    format_version: int = FORMAT_VERSION
    ncbackup_version: str = __version__

    @property
    def total_bytes_in(self) -> int:
        return sum(stream.bytes_in for stream in self.streams)

    @property
    def total_bytes_out(self) -> int:
        return sum(stream.bytes_out for stream in self.streams)

    @property
    def total_parts(self) -> int:
        return sum(len(stream.parts) for stream in self.streams)

    @property
    def failed_streams(self) -> list[str]:
        return [stream.name for stream in self.streams if not stream.is_ok]

    def stream(self, name: str) -> StreamInfo:
        """The stream called name; IntegrityError naming the streams there are when it is absent."""
        for stream in self.streams:
            if stream.name == name:
                return stream
        names = ", ".join(s.name for s in self.streams) or "none"
        raise IntegrityError(f"set {self.set_id} has no stream {name!r} (it has: {names}); pick one of those")

    def to_dict(self) -> dict[str, Any]:
        streams = []
        for stream in self.streams:
            item = asdict(stream)
            item["recipient_fingerprints"] = list(stream.recipient_fingerprints)
            item["parts"] = [asdict(part) for part in stream.parts]
            streams.append(item)
        return {
            "format_version": self.format_version,
            "ncbackup_version": self.ncbackup_version,
            "host": self.host,
            "set_id": self.set_id,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "streams": streams,
            "totals": {
                "streams": len(self.streams),
                "failed_streams": len(self.failed_streams),
                "parts": self.total_parts,
                "bytes_in": self.total_bytes_in,
                "bytes_out": self.total_bytes_out,
            },
        }

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str, *, where: str = "manifest") -> Manifest:
        """Parse a manifest; IntegrityError for unreadable JSON or an unknown format version."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as error:
            raise IntegrityError(f"{where} is not valid JSON ({error}); the set is damaged, use another set") from None
        if not isinstance(raw, dict):
            raise IntegrityError(f"{where} is not a JSON object; the set is damaged, use another set")
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise IntegrityError(
                f"{where} has format version {version!r}, this ncbackup {__version__} reads version "
                f"{FORMAT_VERSION}; use the ncbackup version that wrote it or a newer one"
            )
        try:
            streams = tuple(
                StreamInfo(
                    name=item["name"],
                    kind=item["kind"],
                    file_name=item["file_name"],
                    codec=item["codec"],
                    cipher=item["cipher"],
                    status=item.get("status", STATUS_OK),
                    error=item.get("error"),
                    recipient_fingerprints=tuple(item.get("recipient_fingerprints", ())),
                    compression=dict(item.get("compression", {})),
                    encryption=dict(item.get("encryption", {})),
                    metadata=dict(item.get("metadata", {})),
                    bytes_in=int(item.get("bytes_in", 0)),
                    bytes_out=int(item.get("bytes_out", 0)),
                    warning_count=int(item.get("warning_count", 0)),
                    parts=tuple(
                        PartInfo(name=p["name"], size_bytes=int(p["size_bytes"]), sha256=p["sha256"])
                        for p in item.get("parts", ())
                    ),
                )
                for item in raw["streams"]
            )
            return cls(
                host=raw["host"],
                set_id=raw["set_id"],
                started_at=_parse_iso(raw["started_at"]),
                finished_at=_parse_iso(raw["finished_at"]),
                streams=streams,
                format_version=version,
                ncbackup_version=raw.get("ncbackup_version", "?"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise IntegrityError(f"{where} is missing or has a bad field ({error}); the set is damaged, use another set") from None


@dataclass(frozen=True)
class SetInfo:
    """A set as found on a storage: complete sets carry their manifest."""

    set_id: str
    is_complete: bool
    size_bytes: int              # bytes of every object under the set folder
    object_count: int
    manifest: Manifest | None = None
    problem: str | None = None   # why a set with a manifest.json is still not usable

    @property
    def started_at(self) -> datetime:
        return set_time(self.set_id)


def read_manifest(storage: Storage, set_id: str) -> Manifest:
    """Read and parse a set's manifest; StorageError when it is absent (the set is incomplete)."""
    where = f"{storage.name}: {manifest_key(set_id)}"
    try:
        stream = storage.get(manifest_key(set_id))
    except StorageError:
        raise StorageError(
            f"set {set_id} has no manifest on {storage.name}: it is incomplete or does not exist; "
            "run `ncbackup list` and pick a complete set"
        ) from None
    try:
        data = stream.read()
    finally:
        stream.close()
    return Manifest.from_json(data, where=where)


def write_manifest(storage: Storage, manifest: Manifest) -> None:
    """Put manifest.json (the commit marker); call only after every part is stored."""
    storage.put(manifest_key(manifest.set_id), io.BytesIO(manifest.to_json()))


def list_sets(storage: Storage) -> list[SetInfo]:
    """Every set on a storage, oldest first; complete = has a readable manifest, others are incomplete."""
    sizes: dict[str, int] = {}
    counts: dict[str, int] = {}
    has_manifest: set[str] = set()
    for info in storage.list(""):
        set_id, _, rest = info.key.partition("/")
        if not rest or not is_set_id(set_id):
            continue
        sizes[set_id] = sizes.get(set_id, 0) + info.size_bytes
        counts[set_id] = counts.get(set_id, 0) + 1
        if rest == MANIFEST_NAME:
            has_manifest.add(set_id)
    found: list[SetInfo] = []
    for set_id in sorted(sizes, key=lambda s: (set_time(s), _suffix_number(s))):
        manifest, problem = None, None
        if set_id in has_manifest:
            try:
                manifest = read_manifest(storage, set_id)
            except (IntegrityError, StorageError) as error:
                problem = str(error)
        found.append(SetInfo(
            set_id=set_id,
            is_complete=manifest is not None,
            size_bytes=sizes[set_id],
            object_count=counts[set_id],
            manifest=manifest,
            problem=problem,
        ))
    return found


def _suffix_number(set_id: str) -> int:
    match = SET_ID_PATTERN.match(set_id)
    return int(match.group(2)) if match and match.group(2) else 1
