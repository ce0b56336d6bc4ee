"""The change tracker on real trees: every kind of change is stored, everything else is carried with the
set and offset that hold it, and the next state follows the walk."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ncbackup.archive.index import IndexWriter, read_index
from ncbackup.archive.writer import TarWriter, member_name
from ncbackup.incremental.state import Record, StateDamaged, StateWriter, read_encoded, read_info, read_records
from ncbackup.incremental.tracker import StateTracker, walk_order_key
from ncbackup.sources.base import StreamReport
from tests.support import small_tmpfs

SETS = ["20261101T000000Z", "20261102T000000Z", "20261103T000000Z", "20261104T000000Z", "20261105T000000Z"]


class Backups:
    """Back up roots one set after the other, each incremental on top of the state of the one before."""

    def __init__(self, tmp_path: Path, *roots: Path) -> None:
        self.state = tmp_path / "state" / "files.state"
        self.roots = list(roots)
        self.made: list[str] = []

    def run(self, *, check_device: bool = True, roots: list[Path] | None = None,
            one_file_system: bool = False) -> dict[str, tuple[str, str | None]]:
        """One set: returns {member name: (type, set holding it or None)} and remembers what the tar stored."""
        previous = read_info(self.state) if self.made else None
        writer = StateWriter(self.state)
        tracker = StateTracker(writer, previous=previous,
                               records=read_encoded(self.state, previous) if previous else None, check_device=check_device)
        index_bytes = io.BytesIO()
        tar = TarWriter(io.BytesIO(), report=StreamReport(), index=IndexWriter(index_bytes), tracker=tracker,
                        one_file_system=one_file_system)
        for root in roots or self.roots:
            name = member_name(str(root))
            tracker.begin_root(name)
            tar.add_tree(str(root), name=name)
        tar.close()
        set_id = SETS[len(self.made)]
        chain = previous.sets if previous else ()
        writer.commit(set_id=set_id, chain=chain, fingerprint="f", storages=("s",))
        self.made.append(set_id)
        index_bytes.seek(0)
        self.entries = list(read_index(index_bytes))
        self.stored = {entry.path.rsplit("/", 1)[-1] for entry in self.entries if entry.set is None}
        return {entry.path.rsplit("/", 1)[-1]: (entry.type, entry.set) for entry in self.entries}


def _tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("alpha")
    (root / "b.txt").write_text("bravo")
    (root / "c.txt").write_text("charlie")
    (root / "sub.txt").write_text("after sub/ in the walk, before it in byte order")
    os.symlink("b.txt", root / "link")


def test_a_second_backup_of_an_unchanged_tree_stores_nothing_and_carries_everything(tmp_path):
    root = tmp_path / "data"
    _tree(root)
    backups = Backups(tmp_path, root)
    first = backups.run()
    assert all(where is None for _type, where in first.values())
    second = backups.run()
    assert second.keys() == first.keys()
    assert backups.stored == set()
    assert {where for _type, where in second.values()} == {SETS[0]}
    # carried entries keep the offsets of the set that holds them
    third = backups.run()
    assert {where for _type, where in third.values()} == {SETS[0]}


def test_every_kind_of_change_is_stored_and_deleted_paths_leave_the_index(tmp_path):
    root = tmp_path / "data"
    _tree(root)
    (root / "gone.txt").write_text("bye")
    (root / "mode.txt").write_text("m")
    (root / "touch.txt").write_text("t")
    (root / "becomes-dir").write_text("file")
    (root / "was-dir").mkdir()
    (root / "old-name.txt").write_text("renamed")
    backups = Backups(tmp_path, root)
    backups.run()
    (root / "c.txt").write_text("charlie, longer")                 # content and size
    os.utime(root / "touch.txt", ns=(1, 1_000_000_000))             # mtime only
    (root / "mode.txt").chmod(0o600)                                # ctime only
    (root / "gone.txt").unlink()
    (root / "becomes-dir").unlink()
    (root / "becomes-dir").mkdir()
    (root / "was-dir").rmdir()
    (root / "was-dir").write_text("now a file")
    (root / "old-name.txt").rename(root / "new-name.txt")
    (root / "link").unlink()
    os.symlink("c.txt", root / "link")                              # symlink retargeted
    (root / "new.txt").write_text("new")
    index = backups.run()
    assert "gone.txt" not in index and "old-name.txt" not in index
    assert index["becomes-dir"] == ("dir", None) and index["was-dir"] == ("file", None)
    assert index["a.txt"] == ("file", SETS[0]) and index["b.txt"] == ("file", SETS[0]) and index["sub"] == ("dir", SETS[0])
    assert backups.stored == {"data", "c.txt", "touch.txt", "mode.txt", "becomes-dir", "was-dir", "new-name.txt",
                              "link", "new.txt"}
    target = next(entry for entry in backups.entries if entry.path.endswith("/link"))
    assert target.link == "c.txt"


def test_a_carried_member_points_at_the_set_that_stored_it_last(tmp_path):
    root = tmp_path / "data"
    _tree(root)
    backups = Backups(tmp_path, root)
    backups.run()
    (root / "b.txt").write_text("bravo 2")
    backups.run()
    index = backups.run()
    assert index["b.txt"] == ("file", SETS[1])
    assert index["c.txt"] == ("file", SETS[0])
    carried = {entry.path.rsplit("/", 1)[-1]: entry.offset for entry in backups.entries}
    assert carried["b.txt"] is not None


def test_a_folder_is_carried_and_still_descended(tmp_path):
    root = tmp_path / "data"
    _tree(root)
    backups = Backups(tmp_path, root)
    backups.run()
    (root / "sub" / "a.txt").write_text("alpha changed in place")   # the folder's own times do not change
    index = backups.run()
    assert index["sub"] == ("dir", SETS[0])
    assert backups.stored == {"a.txt"}


def test_a_hard_link_whose_first_name_is_carried_is_stored_as_the_file(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a-first").write_text("shared")
    os.link(root / "a-first", root / "b-second")
    backups = Backups(tmp_path, root)
    first = backups.run()
    assert first["b-second"] == ("hardlink", None)
    second = backups.run()
    assert second["b-second"] == ("hardlink", SETS[0])     # both names unchanged: both carried
    # A third name changes the inode's ctime: every name is stored again, the first one as the file.
    os.link(root / "a-first", root / "c-third")
    third = backups.run()
    assert third["a-first"] == ("file", None) and third["b-second"] == ("hardlink", None)
    assert third["c-third"] == ("hardlink", None)


def test_a_new_hard_link_to_a_carried_file_is_stored_whole(tmp_path):
    # The state holds a first name whose stats still match (as when only the tracker is out of step): its new
    # second name cannot point at a member of another set's stream, so it is written as the file itself.
    root = tmp_path / "data"
    root.mkdir()
    (root / "a-first").write_text("shared")
    backups = Backups(tmp_path, root)
    backups.run()
    os.link(root / "a-first", root / "b-second")
    info = os.lstat(root / "a-first")
    state = read_info(backups.state)
    records = [record if record.name != member_name(str(root / "a-first")) else
               Record(record.name, record.kind, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino,
                      info.st_dev, record.set_index, record.offset, None)
               for record in read_records(backups.state, state)]
    writer = StateWriter(backups.state)
    writer.add_root(records[0].name)
    for record in records[1:]:
        writer.add(record)
    writer.commit(set_id=state.set_id, chain=state.chain, fingerprint="f", storages=("s",))
    index = backups.run()
    assert index["a-first"] == ("file", SETS[0])
    assert index["b-second"] == ("file", None)


def test_device_numbers_are_ignored_when_reading_from_a_snapshot(tmp_path):
    root = tmp_path / "data"
    _tree(root)
    backups = Backups(tmp_path, root)
    backups.run()
    state = read_info(backups.state)
    moved = [Record(r.name, r.kind, r.size, r.mtime_ns, r.ctime_ns, r.ino, r.dev + 1, r.set_index, r.offset, r.link)
             for r in read_records(backups.state, state)]
    writer = StateWriter(backups.state)
    writer.add_root(moved[0].name)
    for record in moved[1:]:
        writer.add(record)
    writer.commit(set_id=state.set_id, chain=state.chain, fingerprint="f", storages=("s",))
    backups.run(check_device=True)
    assert "b.txt" in backups.stored                  # another device: changed
    index = backups.run(check_device=False)
    assert backups.stored == set() and index["b.txt"] == ("file", SETS[1])


def test_roots_that_come_and_go_do_not_disturb_the_others(tmp_path):
    first, second, third = tmp_path / "one", tmp_path / "two", tmp_path / "three"
    for root in (first, second, third):
        _tree(root)
    backups = Backups(tmp_path, first, second, third)
    backups.run()
    backups.run(roots=[first, third])           # "two" missing (an unmounted disk): the others still carried
    assert backups.stored == set()
    backups.run(roots=[first, second, third])   # back: stored again, the others carried
    assert backups.stored == {"two", "sub", "a.txt", "b.txt", "c.txt", "sub.txt", "link"}
    assert all(entry.set is not None for entry in backups.entries if not entry.path.startswith(member_name(str(second)).decode()))


def test_walk_order_key_sorts_like_the_walk():
    names = [b"a", b"a/b", b"a/b/c", b"a.txt", b"a0", b"b"]
    assert sorted(names, key=walk_order_key) == names
    assert sorted(names) != names    # plain byte order would put "a.txt" before "a/b"


def test_a_deletion_inside_a_folder_does_not_disturb_the_members_after_it(tmp_path):
    root = tmp_path / "data"
    _tree(root)
    (root / "sub" / "b.txt").write_text("bravo in sub")
    backups = Backups(tmp_path, root)
    backups.run()
    (root / "sub" / "a.txt").unlink()     # "sub.txt" follows "sub/a.txt" in the walk, precedes it in byte order
    index = backups.run()
    assert "a.txt" not in index and index["b.txt"] == ("file", SETS[0])
    assert backups.stored == {"sub"}
    assert index["sub.txt"] == ("file", SETS[0]) and index["link"] == ("symlink", SETS[0])
    # The state written around the deletion (records copied as they were, and re-encoded after the gap) reads back.
    again = backups.run()
    assert again == {**index, "sub": ("dir", SETS[1])} and backups.stored == set()
    assert [record.name for record in read_records(backups.state, read_info(backups.state))][1:] == [
        entry.path_bytes for entry in backups.entries]


def test_a_carried_mount_point_is_not_descended_with_one_file_system(tmp_path):
    root = tmp_path / "data"
    _tree(root)
    with small_tmpfs(root / "mnt", size_bytes=1 << 20) as mount:
        (mount / "other-fs.txt").write_text("on another file system")
        backups = Backups(tmp_path, root)
        first = backups.run(one_file_system=True)
        assert "mnt" in first and "other-fs.txt" not in first
        second = backups.run(one_file_system=True)
        assert second["mnt"] == ("dir", SETS[0]) and "other-fs.txt" not in second


def test_a_state_that_turns_unreadable_during_the_walk_stores_the_rest(tmp_path):
    root = tmp_path / "data"
    _tree(root)
    backups = Backups(tmp_path, root)
    backups.run()
    info = read_info(backups.state)

    def cut_after_three():
        for number, item in enumerate(read_encoded(backups.state, info)):
            if number == 3:
                raise StateDamaged("its records are cut")
            yield item

    writer = StateWriter(tmp_path / "next.state")
    tracker = StateTracker(writer, previous=info, records=cut_after_three())
    tar = TarWriter(io.BytesIO(), report=StreamReport(), index=IndexWriter(io.BytesIO()), tracker=tracker)
    tracker.begin_root(member_name(str(root)))
    tar.add_tree(str(root), name=member_name(str(root)))
    tar.close()
    assert tracker.carried == 2 and tracker.stored_count == 5     # "data", "b.txt" carried; the other five stored
