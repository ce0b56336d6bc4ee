"""Backup-set naming and the manifest: what a set looks like on any storage.

A set is ``<set-id>/<stream-file>.<NNN>`` parts, then ``<set-id>/manifest.json``, then its detached
minisign signature ``<set-id>/manifest.json.minisig``, written last: the signature is the commit
marker (a set without a valid one is not complete). The set id is the UTC start time,
``20261126T030000Z``; a second set started in the same second gets ``-2``, ``-3``... appended.

Storage is untrusted. Everything read back goes through ``open_set`` (or ``list_sets``, which uses
it): the signature is checked against the keys the reading side trusts, then every field that may
decide a path, a command or a cipher is validated against a strict allow-list (``Manifest.from_json``),
before anything is returned. Sets written before signing existed (format 1) have no signature: they
are ``unsigned`` and read only when the caller allows it (``--allow-unsigned``).

Part numbers are three digits (``.000`` to ``.999``, as the original tool named them) and simply
grow a digit past 999 (``.1000``). Past 999 a plain lexical sort no longer gives the order, so the
manifest is authoritative: it lists every part in order with its size and SHA-256, and readers
order parts by the manifest (or, without one, by ``part_index``, which parses the number).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, NoReturn

from ncbackup import __version__
from ncbackup.errors import IntegrityError, StorageError
from ncbackup.signing import SecretKey, SignatureError, Trust, UnsignedError, UntrustedSignerError, verify
from ncbackup.storage.base import Storage, read_workers

FORMAT_VERSION = 2                    # 2: signed (manifest.json.minisig); 1: before signing, read when allowed
READABLE_FORMAT_VERSIONS = (1, 2)
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.json.minisig"
MAX_MANIFEST_BYTES = 64 << 20          # a manifest lists parts: ~200 bytes each; refuse anything absurd before parsing
SET_ID_FORMAT = "%Y%m%dT%H%M%SZ"
SET_ID_PATTERN = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d+))?$")
PART_PATTERN = re.compile(r"^(?P<stream_file>.+)\.(?P<index>\d{3,})$")

STATUS_OK = "ok"
STATUS_FAILED = "failed"

# What a set found on a storage is, for list, restore and verify (see SetInfo).
STATE_COMPLETE = "complete"        # signed by a trusted key (or unsigned and allowed), fields valid
STATE_INCOMPLETE = "incomplete"    # no manifest or no signature yet: the backup did not finish
STATE_UNSIGNED = "unsigned"        # a format-1 set (before signing): read only with --allow-unsigned
STATE_UNTRUSTED = "untrusted"      # signed, but by a key the reading side does not trust
STATE_DAMAGED = "damaged"          # the signature does not match, or a field is invalid
STATE_UNVERIFIED = "unverified"    # has a manifest, not opened: list_sets(verify_newest=N) opens only the newest N

# Allow-lists for every name read back from a storage. Names that become file or object names:
# letters, digits and ._+- only, starting with a letter, digit or _, never "..".
_NAME = r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,199}"
NAME_PATTERN = re.compile(_NAME)
SUFFIX_PATTERN = re.compile(r"(?:\.[A-Za-z0-9]{1,16}){0,6}")
KIND_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,63}")
HOST_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,252}")
SNAPSHOT_LABEL_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,31}:[A-Za-z0-9._:/@+-]{1,255}")   # "btrfs:ncbackup-web1-..."
METADATA_KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
SOCKET_PATTERN = re.compile(r"/[A-Za-z0-9._+/-]{1,200}")
CODECS = frozenset({"zstd", "gzip", "none"})
CIPHERS = frozenset({"age", "openssl-legacy", "none"})
STATUSES = frozenset({STATUS_OK, STATUS_FAILED})
MAX_TEXT = 4096
MAX_DEPTH = 4
# Metadata values that name a server-side object: data for a restorer, never a path or syntax.
OBJECT_NAME_KEYS = frozenset({"database", "of_stream"})
HEX_SUFFIX = "_hex"               # database_hex: a name that is not is_safe_object_name, as hex of its UTF-8
HEX_PATTERN = re.compile(r"(?:[0-9a-f]{2}){1,1024}")


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in text)


def is_safe_name(text: object) -> bool:
    """A stream, file or part name that can be a file or object name anywhere: the allow-list above, no ".."."""
    return isinstance(text, str) and NAME_PATTERN.fullmatch(text) is not None and ".." not in text


def is_safe_object_name(text: object) -> bool:
    """A database (or similar) name as data: printable, no / or \\, no "..", no leading "-", at most 255 characters."""
    return (
        isinstance(text, str) and 0 < len(text) <= 255 and not _has_control(text)
        and "/" not in text and "\\" not in text and ".." not in text and not text.startswith("-")
    )


def store_object_names(metadata: dict[str, Any]) -> dict[str, Any]:
    """The writer's side of OBJECT_NAME_KEYS: a name that fails is_safe_object_name (a database called
    ``../x`` or with a newline: legal on the server) is recorded hex-encoded under ``<key>_hex`` instead, so
    the manifest itself holds nothing a reader could take for a path or syntax, and the name still comes
    back exactly (object_name)."""
    out = dict(metadata)
    for key in OBJECT_NAME_KEYS:
        value = out.get(key)
        if isinstance(value, str) and not is_safe_object_name(value):
            del out[key]
            out[f"{key}{HEX_SUFFIX}"] = value.encode("utf-8", "surrogateescape").hex()
    return out


def object_name(metadata: Mapping[str, Any], key: str) -> str | None:
    """The name store_object_names recorded under key (plain or hex-encoded); None when there is none."""
    value = metadata.get(key)
    if isinstance(value, str):
        return value
    encoded = metadata.get(f"{key}{HEX_SUFFIX}")
    if isinstance(encoded, str):
        return bytes.fromhex(encoded).decode("utf-8", "surrogateescape")
    return None


def safe_stream_name(text: str) -> str:
    """A stream name the allow-list accepts, made from any label (a database name may hold spaces, "=", "/"...).

    The label itself stays in the stream's metadata, as data; only the name becomes part of file names.
    """
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", text)
    name = re.sub(r"\.{2,}", "_", name)
    if not name or not (name[0].isalnum() or name[0] == "_"):
        name = "_" + name
    return name[:200]


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


def set_order(set_id: str) -> tuple[str, int]:
    """Sort key of set ids: by time, then by the -N suffix of sets started in the same second."""
    match = SET_ID_PATTERN.match(set_id)
    if match is None:
        raise ValueError(f"not a set id: {set_id!r}")
    return match.group(1), int(match.group(2) or 0)


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


def signature_key(set_id: str) -> str:
    return f"{set_id}/{SIGNATURE_NAME}"


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
    snapshots: tuple[str, ...] = ()      # "method:id" of each snapshot this run took before writing the set
    parent: str | None = None            # incremental sets: the set this one is a change against
    chain: tuple[str, ...] = ()          # incremental sets: every set it needs, oldest (the full) first, parent last

    @property
    def level(self) -> str:
        """"full" or "incremental" (a set with a parent)."""
        return "full" if self.parent is None else "incremental"

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
            **({"snapshots": list(self.snapshots)} if self.snapshots else {}),
            **({"level": self.level, "parent": self.parent, "chain": list(self.chain)} if self.parent else {}),
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
        """Parse and validate a manifest; IntegrityError (one sentence naming the field) for anything off.

        Every name that may become a path, an object key or a restorer's argument must pass its
        allow-list; codecs and ciphers must be known; part names must be exactly the stream's file
        name numbered in order. Nothing here trusts the bytes: a signature proves who wrote them,
        not that the writer was sane.
        """
        if isinstance(data, (bytes, bytearray)) and len(data) > MAX_MANIFEST_BYTES:
            raise IntegrityError(f"{where} is larger than {MAX_MANIFEST_BYTES} bytes; the set is damaged, use another set")
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            raise IntegrityError(f"{where} is not valid JSON ({_first_line(error)}); the set is damaged, use another set") from None
        if not isinstance(raw, dict):
            raise IntegrityError(f"{where} is not a JSON object; the set is damaged, use another set")
        version = raw.get("format_version")
        if type(version) is not int or version not in READABLE_FORMAT_VERSIONS:
            raise IntegrityError(
                f"{where} has format version {_shown(version)}, this ncbackup {__version__} reads versions "
                f"{', '.join(map(str, READABLE_FORMAT_VERSIONS))}; use the ncbackup version that wrote it or a newer one"
            )
        check = _Checker(where)
        try:
            set_id = check.text(raw, "set_id")
            if not is_set_id(set_id):
                check.fail("set_id", set_id, "is not a set id like 20261126T030000Z")
            host = check.text(raw, "host")
            if HOST_PATTERN.fullmatch(host) is None or ".." in host:
                check.fail("host", host, "is not a host name")
            streams = []
            names: set[str] = set()
            for number, item in enumerate(check.items(raw, "streams")):
                streams.append(check.stream(item, f"streams[{number}]", names))
            parent, chain = check.chain(raw, set_id)
            return cls(
                parent=parent,
                chain=chain,
                host=host,
                set_id=set_id,
                started_at=check.moment(raw, "started_at"),
                finished_at=check.moment(raw, "finished_at"),
                streams=tuple(streams),
                format_version=version,
                ncbackup_version=check.optional_text(raw, "ncbackup_version") or "?",
                snapshots=tuple(check.snapshot_label(item, f"snapshots[{number}]")
                                for number, item in enumerate(raw.get("snapshots") or [])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise IntegrityError(
                f"{where} is missing or has a bad field ({_first_line(error)}); the set is damaged, use another set"
            ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def _shown(value: object) -> str:
    """A value from a hostile manifest, safe to print in one line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Checker:
    """Field-by-field validation of a parsed manifest; every refusal names the field."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field_name: str, value: object, why: str) -> NoReturn:
        raise IntegrityError(f"{self.where}: field {field_name} = {_shown(value)} {why}; the set is damaged or forged, use another set")

    def text(self, raw: dict, key: str, *, field_name: str | None = None) -> str:
        value = raw.get(key)
        if not isinstance(value, str):
            self.fail(field_name or key, value, "is missing or not a string")
        if _has_control(value) or len(value) > MAX_TEXT:
            self.fail(field_name or key, value, "holds control characters or is too long")
        return value

    def optional_text(self, raw: dict, key: str, *, field_name: str | None = None) -> str | None:
        return None if raw.get(key) is None else self.text(raw, key, field_name=field_name)

    def count(self, raw: dict, key: str, *, field_name: str) -> int:
        value = raw.get(key, 0)
        if type(value) is not int or value < 0:
            self.fail(field_name, value, "is not a whole number >= 0")
        return value

    def items(self, raw: dict, key: str, *, field_name: str | None = None) -> list:
        value = raw.get(key, [])
        if not isinstance(value, list):
            self.fail(field_name or key, value, "is not a list")
        return value

    def moment(self, raw: dict, key: str) -> datetime:
        value = self.text(raw, key)
        try:
            return _parse_iso(value)
        except ValueError:
            self.fail(key, value, "is not a UTC time like 2026-11-26T03:00:00Z")

    def name(self, raw: dict, key: str, *, field_name: str) -> str:
        value = self.text(raw, key, field_name=field_name)
        if not is_safe_name(value):
            self.fail(field_name, value, "is not a safe name (letters, digits and ._+- only, no '..', no leading '-')")
        return value

    def choice(self, raw: dict, key: str, allowed: frozenset[str], *, field_name: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str) or value not in allowed:
            self.fail(field_name, value, f"is not one of {', '.join(sorted(allowed))}")
        return value

    def chain(self, raw: dict, set_id: str) -> tuple[str | None, tuple[str, ...]]:
        """parent and chain: set ids older than set_id, oldest first, the parent last; both or neither."""
        parent = raw.get("parent")
        chain = raw.get("chain") or []
        if parent is None and not chain:
            return None, ()
        if not isinstance(chain, list) or not chain:
            self.fail("chain", chain, "must list the sets an incremental set needs")
        for number, item in enumerate(chain):
            if not is_set_id(item):
                self.fail(f"chain[{number}]", item, "is not a set id like 20261126T030000Z")
        order = [set_order(item) for item in chain]
        if order != sorted(set(order)) or order[-1] >= set_order(set_id):
            self.fail("chain", chain, "must name older sets once each, oldest first")
        if parent != chain[-1]:
            self.fail("parent", parent, "must be the last set of the chain")
        return parent, tuple(chain)

    def snapshot_label(self, value: object, field_name: str) -> str:
        if not isinstance(value, str) or SNAPSHOT_LABEL_PATTERN.fullmatch(value) is None:
            self.fail(field_name, value, "is not a snapshot label like btrfs:ncbackup-web1-1a2b3c4d-20261130T020000Z")
        return value

    def metadata(self, value: object, field_name: str, depth: int = 0) -> Any:
        """Plain JSON data only; every string printable; names of objects and instances on their allow-lists."""
        if depth > MAX_DEPTH:
            self.fail(field_name, "...", "is nested too deeply")
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            if _has_control(value) or len(value) > MAX_TEXT:
                self.fail(field_name, value, "holds control characters or is too long")
            return value
        if isinstance(value, list):
            return [self.metadata(item, f"{field_name}[{i}]", depth + 1) for i, item in enumerate(value)]
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if not isinstance(key, str) or METADATA_KEY_PATTERN.fullmatch(key) is None:
                    self.fail(f"{field_name} key", key, "is not a lower-case identifier")
                checked = self.metadata(item, f"{field_name}.{key}", depth + 1)
                if depth == 0 and key in OBJECT_NAME_KEYS and not is_safe_object_name(checked):
                    self.fail(f"{field_name}.{key}", checked,
                              "is not a safe name (no control characters, '/', '\\', '..' or leading '-')")
                if (depth == 0 and key.endswith(HEX_SUFFIX) and key[: -len(HEX_SUFFIX)] in OBJECT_NAME_KEYS
                        and (not isinstance(checked, str) or HEX_PATTERN.fullmatch(checked) is None)):
                    self.fail(f"{field_name}.{key}", checked, "is not hex")
                if depth == 0 and key == "instance" and not _is_safe_instance(checked):
                    self.fail(f"{field_name}.{key}", checked, "is neither a port number nor a safe socket path")
                out[key] = checked
            return out
        self.fail(field_name, value, "is not plain JSON data")

    def stream(self, item: object, field_name: str, names: set[str]) -> StreamInfo:
        if not isinstance(item, dict):
            self.fail(field_name, item, "is not an object")
        name = self.name(item, "name", field_name=f"{field_name}.name")
        if name in names:
            self.fail(f"{field_name}.name", name, "appears twice")
        names.add(name)
        file_name = self.name(item, "file_name", field_name=f"{field_name}.file_name")
        if not file_name.startswith(name) or SUFFIX_PATTERN.fullmatch(file_name[len(name):]) is None:
            self.fail(f"{field_name}.file_name", file_name, f"is not the stream name {name!r} followed by format suffixes")
        kind = self.text(item, "kind", field_name=f"{field_name}.kind")
        if KIND_PATTERN.fullmatch(kind) is None:
            self.fail(f"{field_name}.kind", kind, "is not a stream kind")
        parts = []
        for index, part in enumerate(self.items(item, "parts", field_name=f"{field_name}.parts")):
            where = f"{field_name}.parts[{index}]"
            if not isinstance(part, dict):
                self.fail(where, part, "is not an object")
            part_file = self.text(part, "name", field_name=f"{where}.name")
            if part_file != part_name(file_name, index):
                self.fail(f"{where}.name", part_file, f"is not {part_name(file_name, index)!r}, the stream's part number {index}")
            sha256 = self.text(part, "sha256", field_name=f"{where}.sha256")
            if re.fullmatch(r"[0-9a-f]{64}", sha256) is None:
                self.fail(f"{where}.sha256", sha256, "is not a SHA-256 in hex")
            parts.append(PartInfo(name=part_file, size_bytes=self.count(part, "size_bytes", field_name=f"{where}.size_bytes"),
                                  sha256=sha256))
        fingerprints = self.items(item, "recipient_fingerprints", field_name=f"{field_name}.recipient_fingerprints")
        for number, fingerprint in enumerate(fingerprints):
            if not isinstance(fingerprint, str) or re.fullmatch(r"[0-9a-f]{1,64}", fingerprint) is None:
                self.fail(f"{field_name}.recipient_fingerprints[{number}]", fingerprint, "is not a hex fingerprint")
        for key in ("compression", "encryption", "metadata"):
            if not isinstance(item.get(key, {}), dict):
                self.fail(f"{field_name}.{key}", item.get(key), "is not an object")
        return StreamInfo(
            name=name,
            kind=kind,
            file_name=file_name,
            codec=self.choice(item, "codec", CODECS, field_name=f"{field_name}.codec"),
            cipher=self.choice(item, "cipher", CIPHERS, field_name=f"{field_name}.cipher"),
            status=self.choice(item, "status", STATUSES, field_name=f"{field_name}.status", default=STATUS_OK),
            error=self.optional_text(item, "error", field_name=f"{field_name}.error"),
            recipient_fingerprints=tuple(fingerprints),
            compression=self.metadata(item.get("compression", {}), f"{field_name}.compression"),
            encryption=self.metadata(item.get("encryption", {}), f"{field_name}.encryption"),
            metadata=self.metadata(item.get("metadata", {}), f"{field_name}.metadata"),
            bytes_in=self.count(item, "bytes_in", field_name=f"{field_name}.bytes_in"),
            bytes_out=self.count(item, "bytes_out", field_name=f"{field_name}.bytes_out"),
            warning_count=self.count(item, "warning_count", field_name=f"{field_name}.warning_count"),
            parts=tuple(parts),
        )


def _is_safe_instance(value: object) -> bool:
    """A MySQL/MongoDB instance as recorded: a port number, or a socket path (shown only, never connected to)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return 0 < value < 65536
    if not isinstance(value, str):
        return False
    if value.isdigit():
        return 0 < int(value) < 65536
    return SOCKET_PATTERN.fullmatch(value) is not None and ".." not in value.split("/")


def validate_metadata(metadata: dict[str, Any], *, where: str) -> None:
    """The writer's side of the metadata rule: refuse (IntegrityError) what a reader would refuse."""
    _Checker(where).metadata(metadata, "metadata")


@dataclass(frozen=True)
class SetInfo:
    """A set as found on a storage. Only a complete set carries its manifest, authenticated and validated."""

    set_id: str
    state: str                   # STATE_*
    size_bytes: int              # bytes of every object under the set folder
    object_count: int
    manifest: Manifest | None = None
    signer: str | None = None    # key id that signed the manifest, when there is a signature
    problem: str | None = None   # why the set is not complete, one sentence

    @property
    def is_complete(self) -> bool:
        return self.manifest is not None

    @property
    def started_at(self) -> datetime:
        return set_time(self.set_id)


def _read_object(storage: Storage, key: str, limit: int) -> bytes:
    stream = storage.get(key)
    try:
        data = stream.read(limit + 1)
    finally:
        stream.close()
    if len(data) > limit:
        raise IntegrityError(f"{storage.name}: {key} is larger than {limit} bytes; the set is damaged, use another set")
    return data


@dataclass(frozen=True)
class OpenedSet:
    manifest: Manifest
    signer: str | None           # key id that signed it; None for an unsigned set read with --allow-unsigned


def open_set(storage: Storage, set_id: str, trust: Trust) -> OpenedSet:
    """The set's manifest, once its signature verifies with a trusted key and every field is valid.

    The one way any reader (list, verify, restore) gets a manifest. Raises StorageError when the set
    has no manifest or no signature (incomplete), SignatureError when it is unsigned (and that is
    not allowed), signed by an untrusted key, or changed after signing; IntegrityError for invalid fields.
    """
    if not is_set_id(set_id):
        raise IntegrityError(f"{set_id!r} is not a set id; pick one from `ncbackup list`")
    where = f"{storage.name}: {manifest_key(set_id)}"
    try:
        data = _read_object(storage, manifest_key(set_id), MAX_MANIFEST_BYTES)
    except StorageError:
        raise StorageError(
            f"set {set_id} has no manifest on {storage.name}: it is incomplete or does not exist; "
            "run `ncbackup list` and pick a complete set"
        ) from None
    try:
        signature = _read_object(storage, signature_key(set_id), 4096)
    except StorageError:
        signature = None
    if signature is None:
        version = _declared_version(data)
        if version not in READABLE_FORMAT_VERSIONS:
            Manifest.from_json(data, where=where)   # raises, naming what is wrong with it
        if version >= 2:
            raise StorageError(
                f"set {set_id} on {storage.name} has no signature ({SIGNATURE_NAME}): the backup did not finish, or the "
                "signature was removed; pick a complete set from `ncbackup list`"
            )
        if not trust.allow_unsigned:
            raise UnsignedError(
                f"set {set_id} on {storage.name} is unsigned (made before ncbackup signed its sets): nothing proves who "
                "wrote it; add --allow-unsigned to read it anyway (its parts are still checked against its manifest)"
            )
    signer = None
    if signature is not None:
        signer = verify(data, signature, trust, what=f"set {set_id} on {storage.name}").key_id_text
    manifest = Manifest.from_json(data, where=where)
    if manifest.set_id != set_id:
        raise IntegrityError(
            f"set {set_id} on {storage.name} holds the manifest of set {manifest.set_id}: it was moved or replayed; "
            "do not trust it, use another set"
        )
    return OpenedSet(manifest, signer)


def _declared_version(data: bytes) -> int:
    """The format version a manifest claims (0 when unreadable), to tell an unfinished set from an old one."""
    try:
        value = json.loads(data).get("format_version")
    except (ValueError, UnicodeDecodeError, AttributeError, RecursionError):
        return 0
    return value if type(value) is int else 0


def write_manifest(storage: Storage, manifest: Manifest, signer: SecretKey) -> None:
    """Put manifest.json, then its signature (the commit marker); call only after every part is stored."""
    data = manifest.to_json()
    storage.put(manifest_key(manifest.set_id), io.BytesIO(data))
    comment = f"ncbackup set {manifest.host}/{manifest.set_id} format {manifest.format_version}"
    storage.put(signature_key(manifest.set_id), io.BytesIO(signer.sign(data, trusted_comment=comment)))


def list_sets(storage: Storage, trust: Trust, *, verify_newest: int | None = None) -> list[SetInfo]:
    """Every set on a storage, oldest first, each opened through open_set: only complete ones carry a manifest.

    verify_newest=N opens only the newest N sets that have a manifest (a fleet overview over thousands of sets);
    older ones are then STATE_UNVERIFIED, without a manifest.
    """
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
    ordered = sorted(sizes, key=lambda s: (set_time(s), _suffix_number(s)))
    with_manifest = [set_id for set_id in ordered if set_id in has_manifest]
    if verify_newest is not None:
        with_manifest = with_manifest[-verify_newest:] if verify_newest > 0 else []
    to_open = set(with_manifest)

    def examine(set_id: str) -> SetInfo:
        manifest, signer, problem, state = None, None, None, STATE_INCOMPLETE
        if set_id in has_manifest and set_id not in to_open:
            problem, state = f"set {set_id} on {storage.name} was not opened (only the newest sets were)", STATE_UNVERIFIED
        elif set_id not in has_manifest:
            problem = (f"set {set_id} on {storage.name} is incomplete: it has no manifest (the backup did not finish, or is "
                       "still running); pick a complete set from `ncbackup list`, or decrypt its parts by hand with "
                       "`ncbackup decrypt` (no integrity check is possible)")
        else:
            try:
                opened = open_set(storage, set_id, trust)
                manifest, signer, state = opened.manifest, opened.signer, STATE_COMPLETE
            except UnsignedError as error:
                problem, state = str(error), STATE_UNSIGNED
            except UntrustedSignerError as error:
                problem, signer, state = str(error), error.key_id, STATE_UNTRUSTED
            except SignatureError as error:
                problem, signer, state = str(error), error.key_id, STATE_DAMAGED
            except IntegrityError as error:
                problem, state = str(error), STATE_DAMAGED
            except StorageError as error:
                problem = str(error)
        return SetInfo(
            set_id=set_id, state=state, size_bytes=sizes[set_id], object_count=counts[set_id],
            manifest=manifest, signer=signer, problem=problem,
        )

    workers = min(read_workers(storage), len(ordered))
    if workers <= 1:
        return [examine(set_id) for set_id in ordered]
    # Two GETs per set (manifest, signature): on S3 with thousands of sets, reading them one after the other
    # is most of a prune's time. map() keeps the order.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="list-sets") as pool:
        return list(pool.map(examine, ordered))


def _suffix_number(set_id: str) -> int:
    match = SET_ID_PATTERN.match(set_id)
    return int(match.group(2)) if match and match.group(2) else 1
