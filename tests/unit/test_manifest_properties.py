"""Property tests: whatever a hostile storage holds, reading a set gives a validated manifest or one clear refusal.

Random JSON, random mutations of a real manifest (any field replaced by any value) and random signature
bytes must end in Manifest or IntegrityError (SignatureError, StorageError), never another exception; and
every manifest that is accepted names only safe streams, files and parts.
"""

from __future__ import annotations

import copy
import io
import json
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncbackup.errors import IntegrityError, StorageError
from ncbackup.setformat import Manifest, PartInfo, StreamInfo, is_safe_name, is_safe_object_name, open_set
from ncbackup.storage.local import LocalStorage
from tests.support import SIGNER, TRUST

MOMENT = datetime(2026, 11, 26, 3, 0, 0, tzinfo=timezone.utc)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

VALID = json.loads(Manifest(
    host="web1", set_id="20261126T030000Z", started_at=MOMENT, finished_at=MOMENT,
    streams=(
        StreamInfo(name="files", kind="files", file_name="files.tar.zst.age", codec="zstd", cipher="age",
                   recipient_fingerprints=("b87ae3874e7b7d9d",), metadata={"members": 3},
                   parts=(PartInfo("files.tar.zst.age.000", 10, "a" * 64), PartInfo("files.tar.zst.age.001", 5, "b" * 64))),
        StreamInfo(name="postgres-5432-shop", kind="postgres", file_name="postgres-5432-shop.dump.zst.age", codec="zstd",
                   cipher="age", metadata={"database": "host=127.0.0.1 port=1 dbname=evil", "port": 5432},
                   parts=(PartInfo("postgres-5432-shop.dump.zst.age.000", 7, "c" * 64),)),
    ),
).to_json())

HOSTILE_TEXT = st.sampled_from([
    "../../x", "/etc/cron.d/x", "..", "-rf", "a/b", "a\\b", "a\nb", "a\x00b", "\x1b[31mred", "", " ", "files",
    "files.tar.zst.age.000", "age", "none", "openssl-legacy", "CON", "x" * 5000, "é", "20261126T030000Z",
])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30) | HOSTILE_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10) | HOSTILE_TEXT, children, max_size=4),
    max_leaves=20,
)


def _paths(value, prefix=()):
    """Every path to a value inside nested dicts and lists."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


ALL_PATHS = [path for path in _paths(VALID) if path]


def _replace(document, path, value):
    changed = copy.deepcopy(document)
    holder = changed
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    return changed


def _read(data: bytes) -> Manifest | None:
    try:
        manifest = Manifest.from_json(data)
    except IntegrityError as error:
        assert "\n" not in str(error), "a refusal is one line"
        return None
    for stream in manifest.streams:
        assert is_safe_name(stream.name) and is_safe_name(stream.file_name)
        assert all(is_safe_name(part.name) and part.name.startswith(stream.file_name + ".") for part in stream.parts)
        if "database" in stream.metadata:
            assert is_safe_object_name(stream.metadata["database"])
        assert stream.cipher in ("age", "openssl-legacy", "none")
    return manifest


def test_the_valid_manifest_is_read() -> None:
    assert _read(json.dumps(VALID).encode()) is not None


@SETTINGS
@given(JSON_VALUES)
def test_random_json_is_refused_or_read_without_a_traceback(value) -> None:
    _read(json.dumps(value).encode())


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_are_refused(data: bytes) -> None:
    assert _read(data) is None


@SETTINGS
@given(st.sampled_from(ALL_PATHS), JSON_VALUES)
def test_any_field_replaced_by_anything_is_refused_or_still_safe(path, value) -> None:
    _read(json.dumps(_replace(VALID, path, value)).encode())


@SETTINGS
@given(st.sampled_from([p for p in ALL_PATHS if p[-1] in ("name", "file_name", "database", "set_id", "host", "kind")]),
       HOSTILE_TEXT)
def test_hostile_names_in_name_fields_are_refused(path, value) -> None:
    manifest = _read(json.dumps(_replace(VALID, path, value)).encode())
    if manifest is not None:
        # Whatever passes holds no path syntax, no control characters, nothing an argv could take for an option.
        assert value and not value.startswith("-") and ".." not in value
        assert not any(c in value for c in "/\\\n\x00\x1b")


@SETTINGS
@given(manifest=st.binary(max_size=200) | st.just(json.dumps(VALID).encode()), signature=st.binary(max_size=400))
def test_open_set_with_random_manifest_and_signature_bytes_refuses_cleanly(tmp_path_factory, manifest, signature) -> None:
    storage = LocalStorage(tmp_path_factory.mktemp("s"))
    storage.put("20261126T030000Z/manifest.json", io.BytesIO(manifest))
    storage.put("20261126T030000Z/manifest.json.minisig", io.BytesIO(signature))
    try:
        open_set(storage, "20261126T030000Z", TRUST)
    except (IntegrityError, StorageError):
        return
    raise AssertionError("random signature bytes were accepted")


def test_a_properly_signed_valid_manifest_opens(tmp_path) -> None:
    storage = LocalStorage(tmp_path)
    data = (json.dumps(VALID, indent=2) + "\n").encode()
    storage.put("20261126T030000Z/manifest.json", io.BytesIO(data))
    storage.put("20261126T030000Z/manifest.json.minisig", io.BytesIO(SIGNER.sign(data, trusted_comment="t")))
    opened = open_set(storage, "20261126T030000Z", TRUST)
    assert opened.signer == SIGNER.public.id_text and opened.manifest.streams[1].metadata["port"] == 5432


@SETTINGS
@given(HOSTILE_TEXT | st.text(max_size=20))
def test_a_consistently_renamed_stream_passes_only_with_a_safe_name(value) -> None:
    """Name, file name and part names changed together (as a compromised writer would): only safe names pass."""
    document = copy.deepcopy(VALID)
    stream = document["streams"][0]
    stream["name"], stream["file_name"] = value, value + ".tar.zst.age"
    for index, part in enumerate(stream["parts"]):
        part["name"] = f"{value}.tar.zst.age.{index:03d}"
    manifest = _read(json.dumps(document).encode())
    if manifest is not None:
        assert value and not value.startswith("-") and ".." not in value
        assert all(c.isalnum() or c in "._+-" for c in value), value
