"""Property: no tar stream, however hostile, makes the extractor write outside its target or fail with a traceback."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncbackup.archive.extract import extract_tar
from ncbackup.errors import BackupError
from tests.unit.archive.conftest import snapshot

# "{outside}" stands for the absolute path of a folder next to the target. Few distinct names, so that
# members often land on, under or through the names of earlier ones.
_COMPONENTS = st.sampled_from(["a", "a", "a", "b", "b", "..", ".", "", "{outside}"])
_NAMES = st.builds(
    lambda prefix, parts: prefix + "/".join(parts),
    st.sampled_from(["", "", "", "/", "./", "{outside}/"]),
    st.lists(_COMPONENTS, min_size=1, max_size=3),
)
_LINK_TEXTS = st.one_of(
    st.sampled_from(["{outside}", "{outside}", "..", "../..", "/", "../outside", "{outside}/keep.txt", "a", "/etc"]), _NAMES,
)
_MEMBERS = st.lists(
    st.tuples(
        st.sampled_from([tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]),
        _NAMES,
        _LINK_TEXTS,
        st.binary(max_size=40),
        st.sampled_from([0o755, 0o700, 0o555, 0o4777]),
    ),
    max_size=12,
)


def _archive(members: list[tuple], outside: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as writer:
        for kind, name, link, data, mode in members:
            info = tarfile.TarInfo(name.replace("{outside}", str(outside)))
            info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, 4321, 4321, 1_000_000_000
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                writer.addfile(info, io.BytesIO(data))
            else:
                info.linkname = link.replace("{outside}", str(outside))
                writer.addfile(info)
    return buffer.getvalue()


def _remove(folder: Path) -> None:
    for directory, _, _ in os.walk(folder):  # read-only folders (0555) from the archive, as a non-root user
        os.chmod(directory, 0o700)
    shutil.rmtree(folder)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=_MEMBERS)
def test_random_streams_never_write_outside_the_target(tmp_path, members):
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    outside = work / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"keep me")
    before = snapshot(outside)
    try:
        extract_tar(io.BytesIO(_archive(members, outside)), work / "target")
    except BackupError:
        pass  # IntegrityError for refused members is one; anything else is a bug and fails the test
    assert snapshot(outside) == before
    assert sorted(os.listdir(work)) == ["outside", "target"]
    _remove(work)
