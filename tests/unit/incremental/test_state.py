"""The local state file: round trip in walk order, damage found before use, written atomically, streamed."""

from __future__ import annotations

import os

import pytest

from ncbackup.incremental.state import (
    ROOT,
    Record,
    StateDamaged,
    StateWriter,
    read_info,
    read_records,
    state_path,
)


def _records(count: int, *, sets: int = 3) -> list[Record]:
    return [Record(b"srv/data/folder-%03d/file-%05d.txt" % (n // 100, n), "file", n, n * 7 - 10**12, n * 11, n + 5,
                   64769, n % sets, n * 512, None) for n in range(count)]


def _write(path, records, *, set_id="20261130T010000Z", chain=("20261129T010000Z", "20261128T010000Z")[::-1]):
    writer = StateWriter(path)
    writer.add_root(b"srv/data")
    for record in records:
        writer.add(record)
    writer.commit(set_id=set_id, chain=chain, fingerprint="f" * 32, storages=("local:/b1", "local:/b2"))


def test_state_round_trips_records_in_walk_order(tmp_path):
    path = tmp_path / "files.state"
    records = _records(2500) + [
        Record(b"srv/data/link", "symlink", 9, 1, 2, 3, 4, 2, 99, b"../target \xff"),
        Record(b"srv/data/second", "hardlink", 0, 1, 2, 3, 4, 1, 100, b"srv/data/first"),
        Record(b"srv/data/\xe9t\xe9", "dir", 4096, -5, 6, 7, 8, 0, 101, None),
    ]
    _write(path, records)
    info = read_info(path)
    assert (info.set_id, info.chain, info.roots, info.records) == (
        "20261130T010000Z", ("20261128T010000Z", "20261129T010000Z"), (b"srv/data",), len(records) + 1)
    assert info.sets == ("20261128T010000Z", "20261129T010000Z", "20261130T010000Z")
    assert info.storages == ("local:/b1", "local:/b2")
    read = list(read_records(path, info))
    assert read[0].kind == ROOT and read[0].name == b"srv/data"
    assert read[1:] == records


def test_state_file_is_private_and_compact(tmp_path):
    path = tmp_path / "files.state"
    _write(path, _records(10_000))
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.stat().st_size < 10_000 * 20   # names front-coded, fixed fields compressed: well under 20 bytes a path


@pytest.mark.parametrize("damage", ["flip", "cut", "append", "empty"])
def test_damaged_state_is_refused_before_any_record_is_used(tmp_path, damage):
    path = tmp_path / "files.state"
    _write(path, _records(300))
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    elif damage == "cut":
        del data[-100:]
    elif damage == "append":
        data += b"x"
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(StateDamaged):
        read_info(path)


def test_uncommitted_state_leaves_the_previous_one_and_no_temporary_file(tmp_path):
    path = tmp_path / "files.state"
    _write(path, _records(5))
    before = path.read_bytes()
    writer = StateWriter(path)
    writer.add_root(b"srv/data")
    writer.add(_records(1)[0])
    assert len(list(tmp_path.iterdir())) == 2    # the new state is written beside the old one
    writer.discard()
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_commit_replaces_the_state_whole(tmp_path):
    path = tmp_path / "files.state"
    _write(path, _records(5))
    _write(path, _records(7, sets=1), set_id="20261201T010000Z", chain=())
    info = read_info(path)
    assert (info.set_id, info.chain, info.full_set_id) == ("20261201T010000Z", (), "20261201T010000Z")
    assert len(list(read_records(path, info))) == 8
    assert list(tmp_path.iterdir()) == [path]


def test_state_folder_is_created_private(tmp_path):
    folder = tmp_path / "var" / "lib" / "ncbackup"
    _write(folder / "files.state", _records(1))
    assert folder.stat().st_mode & 0o777 == 0o700


def test_two_configs_or_sections_never_share_a_state_file(tmp_path):
    first = state_path(tmp_path, tmp_path / "a.json", "FILESET", "files")
    assert first != state_path(tmp_path, tmp_path / "b.json", "FILESET", "files")
    assert first != state_path(tmp_path, tmp_path / "a.json", "FILESET2", "files")
    assert first == state_path(tmp_path, tmp_path / "a.json", "FILESET", "files")


def test_reading_streams_records_without_holding_them(tmp_path):
    # 200k records: reading them must not build a list; the generator holds one decompressed chunk at most.
    import tracemalloc

    path = tmp_path / "files.state"
    writer = StateWriter(path)
    writer.add_root(b"r")
    for n in range(200_000):
        writer.add(Record(b"r/%08d" % n, "file", n, n, n, n, 1, 0, n, None))
    writer.commit(set_id="20261130T010000Z", chain=(), fingerprint="f", storages=("s",))
    info = read_info(path)
    tracemalloc.start()
    count = sum(1 for _ in read_records(path, info))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 200_001
    assert peak < 16 << 20, peak
    assert os.path.getsize(path) < 200_000 * 16


def test_a_full_disk_while_writing_keeps_the_old_state_and_raises_only_at_commit(tmp_path):
    from tests.support import small_tmpfs

    with small_tmpfs(tmp_path / "small", size_bytes=256 << 10) as folder:
        path = folder / "files.state"
        _write(path, _records(10))
        before = path.read_bytes()
        writer = StateWriter(path)
        writer.add_root(b"srv/data")
        for n in range(200_000):    # far more than 256 KiB, even compressed
            writer.add(Record(os.urandom(40).hex().encode(), "file", n, n, n, n, 1, 0, n, None))
        assert writer.error is not None
        with pytest.raises(OSError):
            writer.commit(set_id="20261201T010000Z", chain=(), fingerprint="f", storages=("s",))
        assert path.read_bytes() == before
        assert list(folder.iterdir()) == [path]


def test_default_state_folder_is_system_wide_for_root_else_the_users(monkeypatch, tmp_path):
    from pathlib import Path

    from ncbackup import platform

    monkeypatch.setattr(platform, "is_root", lambda: True)
    assert platform.default_state_folder() == Path("/var/lib/ncbackup")
    monkeypatch.setattr(platform, "is_root", lambda: False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert platform.default_state_folder() == tmp_path / "xdg" / "ncbackup"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert platform.default_state_folder() == tmp_path / "home" / ".local" / "state" / "ncbackup"


def test_state_folder_key_is_read_and_a_root_refused(tmp_path):
    import json

    from ncbackup.config import load_config
    from ncbackup.errors import ConfigError

    config = tmp_path / "conf.json"
    config.write_text(json.dumps({"GENERAL": {"HOSTNAME": "web1", "STATE_FOLDER": str(tmp_path / "state")}}))
    assert load_config(config).general.state_folder == tmp_path / "state"
    config.write_text(json.dumps({"GENERAL": {"HOSTNAME": "web1", "STATE_FOLDER": "/"}}))
    with pytest.raises(ConfigError, match="STATE_FOLDER"):
        load_config(config)
