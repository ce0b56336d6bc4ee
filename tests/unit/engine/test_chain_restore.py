"""Restore of incremental sets (engine/chain.py): real chains written by write_backup_set from real trees, each
point of the chain restored and compared with the tree as it was when that set was made.

The sets are made incremental by a tracker defined here (a dict of the previous walk; the product's tracker
keeps a streamed state file instead): what is tested is the restore side, which only reads the sets.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncbackup.archive.changes import Carried
from ncbackup.archive.index import HARDLINK
from ncbackup.archive.writer import TarWriter
from ncbackup.engine import chain as chain_module
from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set
from ncbackup.engine.restore import RestoreOptions, restore_set
from ncbackup.errors import IntegrityError
from ncbackup.setformat import manifest_key
from ncbackup.sources import files as files_module
from ncbackup.sources.files import FilesetOptions, FilesSource
from ncbackup.stages.age import AgeStage
from ncbackup.stages.compress import ZstdStage
from ncbackup.stages.keys import write_identity_file
from ncbackup.storage.local import LocalStorage
from tests.support import SIGNER, read_manifest

PENDING = "pending"


class DictTracker:
    """Carries a member when kind, size, mtime, ctime, inode and device equal the previous walk's."""

    def __init__(self, previous: dict[bytes, tuple[tuple, Carried]]) -> None:
        self.previous = previous
        self.seen: dict[bytes, tuple[tuple, Carried]] = {}

    @staticmethod
    def _key(info: os.stat_result, kind: str) -> tuple:
        return kind, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev

    def unchanged(self, name: bytes, info: os.stat_result, kind: str) -> Carried | None:
        before = self.previous.get(name)
        if before is None or before[0] != self._key(info, kind):
            return None
        self.seen[name] = before
        return before[1]

    def stored(self, name: bytes, info: os.stat_result, kind: str, offset: int, link: bytes | None) -> None:
        walked = "file" if kind == HARDLINK else kind
        self.seen[name] = (self._key(info, walked), Carried(PENDING, kind, offset, info.st_size if kind == "file" else 0, link))

    def state_for(self, set_id: str) -> dict[bytes, tuple[tuple, Carried]]:
        return {name: (key, Carried(set_id, c.kind, c.offset, c.size, c.link) if c.set_id == PENDING else c)
                for name, (key, c) in self.seen.items()}


class _Chain:
    def __init__(self, tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.key_file = tmp_path / "key.txt"
        write_identity_file(self.key_file)
        self.recipient = self.key_file.read_text().splitlines()[1].split(": ")[1]
        self.storage = LocalStorage(tmp_path / "store" / "web1")
        self.data = data
        self.monkeypatch = monkeypatch
        self.state: dict[bytes, tuple[tuple, Carried]] | None = None
        self.ids: list[str] = []

    def backup(self) -> str:
        tracker = DictTracker(self.state) if self.state is not None else None
        # The test's tracker replaces the one FilesStream passes (None: the source is not INCREMENTAL here).
        self.monkeypatch.setattr(files_module, "TarWriter",
                                 lambda *args, **keywords: TarWriter(*args, **{**keywords, "tracker": tracker}))
        source = FilesSource(FilesetOptions(include=[self.data]))
        if tracker is not None:
            source.streams = functools.partial(_incremental_streams, source)  # type: ignore[method-assign]
        result = write_backup_set(
            PipelineSpec(signer=SIGNER, sources=[source], compression=ZstdStage(threads=0, seek_frame_bytes=16 << 10),
                         encryption=AgeStage(recipients=[self.recipient]), part_size_bytes=64 << 10,
                         storages=[NamedStorage("STORAGE", self.storage)], chain=tuple(self.ids) if tracker else ()),
            hostname="web1",
        )
        assert result.error is None
        self.state = (tracker or _first_walk(self.data)).state_for(result.set_id)
        self.ids.append(result.set_id)
        return result.set_id

    def restore(self, set_id: str, target: Path, paths: tuple[str, ...] = ()):
        manifest = read_manifest(self.storage, set_id)
        return restore_set(self.storage, manifest,
                           options=RestoreOptions(target=target, key_file=self.key_file, paths=paths, stream_names=("files",)),
                           open_manifest=lambda chain_id: read_manifest(self.storage, chain_id))


def _incremental_streams(source: FilesSource) -> Iterator:
    for stream in FilesSource.streams(source):
        if stream.kind == "files":
            original = stream.write_to

            def write_to(sink, report, original=original):
                original(sink, report)
                report.metadata["level"] = "incremental"

            stream.write_to = write_to  # type: ignore[method-assign]
        yield stream


def _first_walk(data: Path) -> DictTracker:
    """The state after a full set: the tracker of the full walk (no previous state, so nothing carried)."""
    tracker = DictTracker({})
    import io

    writer = TarWriter(io.BytesIO(), report=files_module.StreamReport(), tracker=tracker)
    writer.add_tree(str(data))
    writer.close()
    return tracker


def _tree(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        info = path.lstat()
        if path.is_symlink():
            out[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            out[relative] = ("dir", info.st_mode & 0o7777, info.st_mtime_ns)
        else:
            out[relative] = ("file", path.read_bytes(), info.st_mode & 0o7777, info.st_mtime_ns)
    return out


def _restored(target: Path, data: Path) -> Path:
    return target / str(data).lstrip("/")


def _touch_all(data: Path, moment: int) -> None:
    for path in [*data.rglob("*"), data]:
        os.utime(path, (moment, moment), follow_symlinks=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "etc").mkdir(parents=True)
    (root / "www" / "img").mkdir(parents=True)
    for number in range(30):
        (root / "www" / f"page{number:02d}.html").write_bytes(os.urandom(3000) + b"<p>%d</p>" % number)
    (root / "www" / "img" / "logo.png").write_bytes(os.urandom(90_000))      # spans parts
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc" / "gone").write_text("deleted in the second set\n")
    (root / "etc" / "becomes-dir").write_text("a file first\n")
    os.symlink("hosts", root / "etc" / "link")
    _touch_all(root, 1_700_000_000)
    return root


@pytest.fixture(params=["whole streams", "by frames"])
def read_by(request, monkeypatch) -> str:
    """Both ways a set of the chain is read: its whole stream, or only the frames its wanted members lie in."""
    monkeypatch.setattr(chain_module, "READ_BY_FRAMES_BELOW", 0.0 if request.param == "whole streams" else 1.01)
    return request.param


def test_every_point_of_a_chain_restores_the_tree_as_it_was(tmp_path: Path, data: Path, monkeypatch, read_by) -> None:
    chain = _Chain(tmp_path, data, monkeypatch)
    expected = {}
    expected[chain.backup()] = _tree(data)
    # Second set: a change, a deletion, a new file, a rename, a file that becomes a folder, a chmod, a new hard link.
    (data / "www" / "page03.html").write_bytes(b"changed page")
    (data / "etc" / "gone").unlink()
    (data / "etc" / "new.conf").write_text("new\n")
    (data / "www" / "page04.html").rename(data / "www" / "renamed.html")
    (data / "etc" / "becomes-dir").unlink()
    (data / "etc" / "becomes-dir").mkdir()
    (data / "etc" / "becomes-dir" / "inside").write_text("inside the new folder\n")
    (data / "www" / "page05.html").chmod(0o600)
    os.link(data / "www" / "page06.html", data / "www" / "hard")
    _touch_all(data / "etc", 1_700_100_000)
    expected[chain.backup()] = _tree(data)
    # Third set: a folder becomes a file again, a symlink retargets, a big file changes.
    shutil.rmtree(data / "etc" / "becomes-dir")
    (data / "etc" / "becomes-dir").write_text("a file again\n")
    (data / "etc" / "link").unlink()
    os.symlink("new.conf", data / "etc" / "link")
    (data / "www" / "img" / "logo.png").write_bytes(os.urandom(70_000))
    _touch_all(data / "etc", 1_700_200_000)
    expected[chain.backup()] = _tree(data)
    # Fourth set: nothing changed at all.
    expected[chain.backup()] = _tree(data)

    assert read_manifest(chain.storage, chain.ids[-1]).chain == tuple(chain.ids[:-1])
    for number, (set_id, tree) in enumerate(expected.items()):
        target = tmp_path / f"restored-{number}"
        report = chain.restore(set_id, target)
        assert _tree(_restored(target, data)) == tree, f"set {number} ({set_id})"
        if number:
            assert report.chains and sum(report.chains[0].members_by_set.values()) == len(tree) + 1  # + the root
            by_frames = report.chains[0].sets_read_by_frames
            assert by_frames == (list(report.chains[0].members_by_set) if read_by == "by frames" else [])
    hard = _restored(tmp_path / "restored-3", data) / "www"
    assert os.path.samefile(hard / "hard", hard / "page06.html")
    # The no-change set stored nothing of its own: every member came from the sets before it.
    last = chain.restore(chain.ids[-1], tmp_path / "again").chains[0].members_by_set
    assert chain.ids[-1] not in last and set(last) <= set(chain.ids[:-1])


def test_path_restores_one_file_from_the_set_that_holds_it_and_reads_no_other(tmp_path: Path, data: Path, monkeypatch) -> None:
    chain = _Chain(tmp_path, data, monkeypatch)
    chain.backup()
    (data / "www" / "page07.html").write_bytes(b"newest page seven")
    chain.backup()
    chain.backup()
    member = str(data / "www" / "page07.html").lstrip("/")
    report = chain.restore(chain.ids[-1], tmp_path / "one", paths=(member,))
    assert report.chains[0].members_by_set == {chain.ids[1]: 1}
    assert (tmp_path / "one" / member).read_bytes() == b"newest page seven"
    assert [path.name for path in (tmp_path / "one" / member).parent.iterdir()] == ["page07.html"]
    # An unchanged file comes from the full, the only set read then.
    other = str(data / "www" / "page08.html").lstrip("/")
    from_full = chain.restore(chain.ids[-1], tmp_path / "two", paths=(other,)).chains[0]
    assert from_full.members_by_set == {chain.ids[0]: 1}
    assert from_full.sets_read_by_frames == [chain.ids[0]]     # one member of the full: only its frames are read


def test_a_missing_set_of_the_chain_is_named(tmp_path: Path, data: Path, monkeypatch) -> None:
    chain = _Chain(tmp_path, data, monkeypatch)
    chain.backup()
    (data / "etc" / "hosts").write_text("changed\n")
    chain.backup()
    chain.storage.delete(manifest_key(chain.ids[0]))
    with pytest.raises(IntegrityError, match=f"needs set {chain.ids[0]} of its chain"):
        chain.restore(chain.ids[1], tmp_path / "out")


def test_an_index_pointing_where_no_member_starts_is_refused(tmp_path: Path, data: Path, monkeypatch, read_by) -> None:
    chain = _Chain(tmp_path, data, monkeypatch)
    chain.backup()
    assert chain.state is not None
    # Shift every carried member of the full by one block: the index of the next set then lies about the full.
    chain.state = {name: (key, Carried(c.set_id, c.kind, c.offset + 512, c.size, c.link))
                   for name, (key, c) in chain.state.items()}
    chain.backup()
    with pytest.raises(IntegrityError, match=f"of stream files of set {chain.ids[0]}, but (none does|its own index has none there)"):
        chain.restore(chain.ids[1], tmp_path / "out")


def test_an_index_naming_a_set_outside_the_chain_is_refused(tmp_path: Path, data: Path, monkeypatch) -> None:
    chain = _Chain(tmp_path, data, monkeypatch)
    chain.backup()
    assert chain.state is not None
    chain.state = {name: (key, Carried("20200101T000000Z", c.kind, c.offset, c.size, c.link))
                   for name, (key, c) in chain.state.items()}
    chain.backup()
    with pytest.raises(IntegrityError, match="20200101T000000Z, which is not in its chain"):
        chain.restore(chain.ids[1], tmp_path / "out")
