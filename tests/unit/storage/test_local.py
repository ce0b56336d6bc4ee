"""Local storage specifics: where its base is, keys that would escape it, and a destination disk that fills up."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import ConfigError, StorageError
from ncbackup.storage.local import TEMP_PREFIX, LocalStorage
from ncbackup.storage.registry import STORAGES, build_storage
from tests.support import small_tmpfs

SMALL_FILESYSTEM_BYTES = 1024 * 1024


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for the test (needs root), unmounted afterwards."""
    with small_tmpfs(tmp_path / "small", size_bytes=SMALL_FILESYSTEM_BYTES) as point:
        yield point


def _general(tmp_path: Path, **extra) -> GeneralSettings:
    return GeneralSettings(hostname="web1", work_folder=tmp_path / "work", **extra)


def _storage_section(**parameters) -> SectionSettings:
    return SectionSettings(name="STORAGE", action="execute", module="storage", parameters=parameters)


def test_base_is_args_dict_local_backup_then_hostname(tmp_path: Path) -> None:
    section = _storage_section(DESTINATION="local", ARGS_DICT={"LOCAL_BACKUP": str(tmp_path / "from-args")})
    storage = build_storage(section, _general(tmp_path, local_backup=tmp_path / "from-general"))
    assert isinstance(storage, LocalStorage)
    assert storage.base == tmp_path / "from-args" / "web1"


def test_base_falls_back_to_general_local_backup(tmp_path: Path) -> None:
    storage = build_storage(_storage_section(DESTINATION="local"), _general(tmp_path, local_backup=tmp_path / "backups"))
    assert storage.base == tmp_path / "backups" / "web1"


def test_missing_local_backup_says_where_to_set_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LOCAL_BACKUP.*ARGS_DICT.*GENERAL"):
        build_storage(_storage_section(DESTINATION="local"), _general(tmp_path))


def test_unknown_destination_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown storage destination 'ftp'.*local"):
        build_storage(_storage_section(DESTINATION="ftp"), _general(tmp_path))


def test_local_is_registered() -> None:
    assert STORAGES["local"] is LocalStorage


@pytest.mark.parametrize("key", ["../escape", "set/../../escape", "/etc/passwd", "set//x", "", "set/./x", "a\\..\\b", "set/.."])
def test_keys_escaping_the_base_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "base")
    with pytest.raises(StorageError, match="refusing storage key"):
        storage.put(key, io.BytesIO(b"x"))
    with pytest.raises(StorageError, match="refusing storage key"):
        storage.get(key)
    assert not (tmp_path / "escape").exists()


def test_put_leaves_no_temp_file_and_delete_prunes_empty_set_folder(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "base")
    storage.put("20261126T030000Z/a.000", io.BytesIO(b"abc"))
    assert [p.name for p in (tmp_path / "base" / "20261126T030000Z").iterdir()] == ["a.000"]
    storage.delete("20261126T030000Z/a.000")
    assert not (tmp_path / "base" / "20261126T030000Z").exists()
    assert (tmp_path / "base").is_dir()


def test_leftover_temp_files_are_not_listed(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "base")
    storage.put("20261126T030000Z/a.000", io.BytesIO(b"abc"))
    (tmp_path / "base" / "20261126T030000Z" / f"{TEMP_PREFIX}dead-a.001").write_bytes(b"half")
    assert [info.key for info in storage.list()] == ["20261126T030000Z/a.000"]


def test_full_disk_is_a_clear_storage_error_and_leaves_nothing(small_filesystem: Path) -> None:
    storage = LocalStorage(small_filesystem / "web1")
    with pytest.raises(StorageError, match=r"no space left on .* writing 20261126T030000Z/files.tar.zst.age.000"):
        storage.put("20261126T030000Z/files.tar.zst.age.000", io.BytesIO(b"\0" * (3 * SMALL_FILESYSTEM_BYTES)))
    assert list(storage.list()) == []
    assert not any(p.is_file() for p in small_filesystem.rglob("*"))


def test_check_reports_a_writable_base_or_where_it_will_be_created_without_creating_it(tmp_path):
    from ncbackup.storage.local import LocalStorage

    existing = LocalStorage(tmp_path)
    [line] = existing.check()
    assert line.ok and f"folder {tmp_path} is writable" in line.text and "GiB free" in line.text
    future = LocalStorage(tmp_path / "backups" / "web1")
    [line] = future.check()
    assert line.ok and f"will be created (in {tmp_path})" in line.text
    assert not (tmp_path / "backups").exists()


def test_check_fails_when_the_base_is_under_a_file(tmp_path):
    from ncbackup.storage.local import LocalStorage

    (tmp_path / "a-file").write_text("x")
    [line] = LocalStorage(tmp_path / "a-file" / "web1").check()
    assert not line.ok and "is not a folder" in line.text
