"""SQLite source: a consistent copy of a live database (WAL included) through the pipeline, and its restore."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import BackupError, ConfigError, SourceError
from ncbackup.sources.base import RestoreRequest
from ncbackup.sources.registry import RESTORERS, SOURCES
from ncbackup.sources.sqlite import SqliteSource, restore_sqlite
from tests.integration.sources.dumping import backup_through_pipeline, dump_streams


def make_database(path: Path, rows: int = 2000) -> sqlite3.Connection:
    """A WAL-mode database with committed rows still in the WAL (no checkpoint), left open like a live app."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, blob BLOB)")
    connection.executemany(
        "INSERT INTO notes (body, blob) VALUES (?, ?)",
        [(f"note {i} ünïcødé 山田", bytes(range(256)) * (i % 5)) for i in range(rows)],
    )
    connection.commit()
    return connection


def rows_of(path: Path) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT id, body, blob FROM notes ORDER BY id").fetchall()
    finally:
        connection.close()


def section(paths: str) -> SectionSettings:
    return SectionSettings(name="SQLITE", action="execute", module="sqlite_backup", parameters={"PATHS": paths})


def test_registry_knows_the_sqlite_section():
    assert SOURCES["sqlite"].factory is SqliteSource and RESTORERS["sqlite"] is restore_sqlite


def test_live_wal_database_round_trips_through_the_pipeline_with_uncheckpointed_rows(tmp_path):
    database = tmp_path / "data" / "app.db"
    database.parent.mkdir()
    live = make_database(database)
    assert (tmp_path / "data" / "app.db-wal").stat().st_size > 0, "rows are still in the WAL"
    expected = rows_of(database)
    general = GeneralSettings(hostname="h", work_folder=tmp_path / "work")
    source = SqliteSource.from_section(section(f" {database} "), general)

    run = backup_through_pipeline([source], tmp_path)
    live.close()
    info = run.stream("sqlite-app")
    assert info.status == "ok" and info.kind == "sqlite"
    assert info.metadata["page_count"] > 1 and "app.db" not in repr(info.metadata)
    assert not list((tmp_path / "work").iterdir()), "the temporary copy is removed"

    restored = tmp_path / "restored.db"
    run.restore("sqlite-app", to_database=True, target=restored)
    assert rows_of(restored) == expected


def test_restore_refuses_to_overwrite_without_force_and_goes_back_to_the_configured_path(tmp_path):
    database = tmp_path / "shop.sqlite3"
    make_database(database, rows=10).close()
    outcomes = dump_streams(SqliteSource.from_section(section(str(database)), GeneralSettings("h", tmp_path)), tmp_path / "set")
    dump = outcomes["sqlite-shop"]
    request = RestoreRequest("sqlite-shop", "sqlite", dump.report.metadata, to_database=True, options={"PATHS": str(database)})
    with open(dump.path, "rb") as reader, pytest.raises(BackupError, match="already exists.*--force"):
        restore_sqlite(reader, request)
    expected = rows_of(database)
    database.unlink()
    with open(dump.path, "rb") as reader:
        restore_sqlite(reader, request)
    assert rows_of(database) == expected


def test_corrupted_copy_is_refused_on_restore_and_nothing_is_left_behind(tmp_path):
    database = tmp_path / "x.db"
    make_database(database, rows=500).close()
    outcomes = dump_streams(SqliteSource.from_section(section(str(database)), GeneralSettings("h", tmp_path)), tmp_path / "set")
    damaged = bytearray(outcomes["sqlite-x"].data)
    damaged[4096 + 100: 4096 + 4000] = b"\xff" * 3900
    target = tmp_path / "out"
    target.mkdir()
    import io

    with pytest.raises(BackupError, match="integrity check|damaged"):
        restore_sqlite(io.BytesIO(bytes(damaged)), RestoreRequest("sqlite-x", "sqlite", {}, target=target, to_database=True))
    assert list(target.iterdir()) == []


def test_missing_or_foreign_file_fails_only_its_stream(tmp_path):
    good = tmp_path / "good.db"
    make_database(good, rows=3).close()
    text = tmp_path / "notes.txt"
    text.write_text("this is not a database " * 100)
    source = SqliteSource.from_section(section(f"{tmp_path / 'gone.db'} {text} {good}"), GeneralSettings("h", tmp_path))
    outcomes = dump_streams(source, tmp_path / "set")
    assert isinstance(outcomes["sqlite-gone"].error, SourceError) and "does not exist" in str(outcomes["sqlite-gone"].error)
    assert isinstance(outcomes["sqlite-notes"].error, SourceError) and "not a database" in str(outcomes["sqlite-notes"].error)
    assert outcomes["sqlite-good"].error is None


def test_same_file_stem_in_two_folders_gets_distinct_stream_names(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        make_database(tmp_path / folder / "app.db", rows=1).close()
    source = SqliteSource.from_section(section(f"{tmp_path / 'a' / 'app.db'} {tmp_path / 'b' / 'app.db'}"), GeneralSettings("h", tmp_path))
    assert [stream.name for stream in source.streams()] == ["sqlite-app", "sqlite-app-2"]


def test_missing_paths_parameter_is_a_config_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="PATHS"):
        SqliteSource.from_section(SectionSettings(name="SQLITE", action="execute", module="sqlite_backup"), GeneralSettings("h", tmp_path))


def test_check_reports_each_file(tmp_path):
    good = tmp_path / "good.db"
    make_database(good, rows=1).close()
    lines = SqliteSource.from_section(section(f"{good} {tmp_path / 'gone.db'}"), GeneralSettings("h", tmp_path)).check()
    assert [line.ok for line in lines] == [True, True, False]
    assert "1 tables" in lines[1].text and "gone.db" in lines[2].text
