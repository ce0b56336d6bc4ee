"""Cheap fake fleets for the status view: small signed manifests (setformat.write_manifest), no parts.

Used by bench/status_fleet.py (200 hosts x 30 sets on moto S3) and by the status tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ncbackup.setformat import STATUS_FAILED, STATUS_OK, Manifest, PartInfo, StreamInfo, part_name, set_id_for, write_manifest
from ncbackup.signing import SecretKey
from ncbackup.storage.base import Storage


def fake_manifest(host: str, moment: datetime, size_bytes: int, *, is_failed: bool = False) -> Manifest:
    """A manifest of one files stream in one part of size_bytes (the part itself is not written)."""
    file_name = "files.tar.zst.age"
    stream = StreamInfo(
        name="files", kind="files", file_name=file_name, codec="zstd", cipher="age",
        status=STATUS_FAILED if is_failed else STATUS_OK, error="tar failed" if is_failed else None,
        bytes_in=size_bytes * 2, bytes_out=size_bytes,
        parts=(PartInfo(name=part_name(file_name, 0), size_bytes=size_bytes, sha256="0" * 64),),
    )
    return Manifest(host=host, set_id=set_id_for(moment), started_at=moment, finished_at=moment + timedelta(minutes=5),
                    streams=(stream,))


def write_fake_set(storage: Storage, signer: SecretKey, *, host: str, moment: datetime, size_bytes: int,
                   is_failed: bool = False) -> str:
    """Write one signed fake set for host at moment; return its id."""
    manifest = fake_manifest(host, moment, size_bytes, is_failed=is_failed)
    write_manifest(storage, manifest, signer)
    return manifest.set_id
