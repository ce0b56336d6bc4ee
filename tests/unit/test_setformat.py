"""Backup-set naming and the manifest: ids, part names, JSON round trip, listing complete and incomplete sets."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ncbackup import __version__
from ncbackup.errors import IntegrityError, StorageError
from ncbackup.setformat import (
    FORMAT_VERSION,
    Manifest,
    PartInfo,
    StreamInfo,
    is_set_id,
    list_sets,
    open_set,
    part_index,
    part_name,
    set_id_for,
    set_time,
    write_manifest,
)
from ncbackup.storage.local import LocalStorage
from tests.support import SIGNER, TRUST

MOMENT = datetime(2026, 11, 26, 3, 0, 0, tzinfo=timezone.utc)


def _manifest(set_id: str = "20261126T030000Z") -> Manifest:
    return Manifest(
        host="web1",
        set_id=set_id,
        started_at=MOMENT,
        finished_at=MOMENT.replace(minute=5),
        streams=(
            StreamInfo(
                name="files", kind="files", file_name="files.tar.zst.age", codec="zstd", cipher="age",
                recipient_fingerprints=("b87ae3874e7b7d9d",), compression={"codec": "zstd", "level": 3},
                encryption={"cipher": "age", "recipient_fingerprints": ["b87ae3874e7b7d9d"]},
                metadata={"file_count": 12}, bytes_in=5000, bytes_out=1500, warning_count=1,
                parts=(PartInfo("files.tar.zst.age.000", 1000, "a" * 64), PartInfo("files.tar.zst.age.001", 500, "b" * 64)),
            ),
            StreamInfo(
                name="mysql-3306-shop", kind="mysql", file_name="mysql-3306-shop.sql.zst.age", codec="zstd", cipher="age",
                status="failed", error="mysqldump exited with status 2: Access denied",
            ),
        ),
    )


def test_set_id_is_utc_second_and_gets_a_suffix_when_taken() -> None:
    assert set_id_for(MOMENT) == "20261126T030000Z"
    local = MOMENT.astimezone(timezone.utc).replace(tzinfo=timezone.utc)
    assert set_id_for(local) == "20261126T030000Z"
    assert set_id_for(MOMENT, ["20261126T030000Z"]) == "20261126T030000Z-2"
    assert set_id_for(MOMENT, ["20261126T030000Z", "20261126T030000Z-2"]) == "20261126T030000Z-3"
    assert set_time("20261126T030000Z-2") == MOMENT
    assert is_set_id("20261126T030000Z-2") and not is_set_id("20261126_030000") and not is_set_id("manifest.json")


def test_part_names_are_three_digits_and_grow_past_999() -> None:
    assert part_name("files.tar.zst.age", 0) == "files.tar.zst.age.000"
    assert part_name("files.tar.zst.age", 999) == "files.tar.zst.age.999"
    assert part_name("files.tar.zst.age", 1000) == "files.tar.zst.age.1000"
    assert part_index("files.tar.zst.age.1000") == 1000
    assert part_index("files.tar.zst.age.007") == 7
    assert part_index("manifest.json") is None


def test_manifest_round_trips_through_json() -> None:
    manifest = _manifest()
    data = manifest.to_json()
    parsed = json.loads(data)
    assert parsed["format_version"] == FORMAT_VERSION and parsed["ncbackup_version"] == __version__
    assert parsed["totals"] == {"streams": 2, "failed_streams": 1, "parts": 2, "bytes_in": 5000, "bytes_out": 1500}
    assert parsed["streams"][1]["status"] == "failed" and "Access denied" in parsed["streams"][1]["error"]
    assert Manifest.from_json(data) == manifest


def test_unknown_format_version_is_refused_clearly() -> None:
    raw = json.loads(_manifest().to_json())
    raw["format_version"] = 99
    with pytest.raises(IntegrityError, match="format version 99.*reads versions 1, 2"):
        Manifest.from_json(json.dumps(raw))


@pytest.mark.parametrize("data", [b"{not json", b"[]", b'{"format_version": 1}'])
def test_damaged_manifest_is_an_integrity_error(data: bytes) -> None:
    with pytest.raises(IntegrityError, match="damaged"):
        Manifest.from_json(data)


def test_stream_lookup_names_the_streams_there_are() -> None:
    with pytest.raises(IntegrityError, match="files, mysql-3306-shop"):
        _manifest().stream("postgres-main")


def test_list_sets_reports_complete_and_incomplete(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "web1")
    complete = _manifest("20261126T030000Z")
    for part in complete.streams[0].parts:
        storage.put(f"{complete.set_id}/{part.name}", io.BytesIO(b"x" * part.size_bytes))
    write_manifest(storage, complete, SIGNER)
    storage.put("20261127T030000Z/files.tar.zst.age.000", io.BytesIO(b"half a set"))
    storage.put("20261126T030000Z-2/manifest.json", io.BytesIO(b"garbage"))
    storage.put("not-a-set/readme.txt", io.BytesIO(b"ignored"))
    sets = list_sets(storage, TRUST)
    assert [(s.set_id, s.is_complete) for s in sets] == [
        ("20261126T030000Z", True), ("20261126T030000Z-2", False), ("20261127T030000Z", False),
    ]
    assert sets[0].manifest == complete and sets[0].object_count == 4
    assert sets[1].problem and "not valid JSON" in sets[1].problem
    assert sets[2].size_bytes == len(b"half a set") and sets[2].manifest is None


def test_read_manifest_of_incomplete_set_says_so(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "web1")
    storage.put("20261127T030000Z/files.tar.zst.age.000", io.BytesIO(b"x"))
    with pytest.raises(StorageError, match="incomplete"):
        open_set(storage, "20261127T030000Z", TRUST)


def test_the_snapshots_a_set_was_read_from_round_trip_and_a_hostile_label_is_refused() -> None:
    import dataclasses

    plain = _manifest()
    assert "snapshots" not in json.loads(plain.to_json())            # absent when the run took none
    assert Manifest.from_json(plain.to_json()).snapshots == ()
    with_snapshots = dataclasses.replace(plain, snapshots=("btrfs:ncbackup-web1-1a2b3c4d-20261126T025900Z",
                                                           "aws-ebs:snap-0abc", "zfs:tank/www@ncbackup-web1"))
    assert Manifest.from_json(with_snapshots.to_json()).snapshots == with_snapshots.snapshots
    for hostile in ("btrfs:../../etc x", "no-method", "BTRFS:x", "btrfs:" + "x" * 300, 7):
        raw = json.loads(plain.to_json())
        raw["snapshots"] = [hostile]
        with pytest.raises(IntegrityError, match=r"snapshots\[0\]"):
            Manifest.from_json(json.dumps(raw))
