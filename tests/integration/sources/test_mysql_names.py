"""MySQL/MariaDB database names are data: quotes, backticks, spaces, ``=``, newlines and a leading ``-`` round-trip.

Each name is created on the real MariaDB, dumped through the pipeline, dropped, restored with
--to-database through the engine's restore path, and compared; a database named in an injection
attempt is checked to survive. The manifest's ``instance`` may only pick a configured instance.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from ncbackup.engine.restore import RestoreOptions, restore_set
from ncbackup.errors import BackupError
from ncbackup.setformat import is_safe_object_name, object_name
from ncbackup.sources.base import RestoreRequest
from ncbackup.sources.mysql import MysqlOptions, MysqlSource, restore_mysql
from tests.integration.servers.mariadb import MariaDB
from tests.integration.sources.dumping import backup_through_pipeline, dump_streams
from tests.integration.sources.listener import RecordingListener
from tests.support import read_manifest

pytestmark = pytest.mark.integration

HOSTILE_NAMES = [
    "we`ird db=x -1'q\"",
    "new\nline; DROP DATABASE victim; --",
    "-leading",
    "tab\there",
    "back\\slash",
    "../up/one",
]
ROWS = "SELECT id, HEX(note) FROM marker ORDER BY id"


def identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def text_literal(text: str) -> str:
    return f"CONVERT(X'{text.encode().hex()}' USING utf8mb4)"


def database_names(server: MariaDB) -> set[str]:
    return {bytes.fromhex(line).decode() for line in server.sql("SELECT HEX(SCHEMA_NAME) FROM information_schema.SCHEMATA").split()}


def drop_all(server: MariaDB, names: list[str]) -> None:
    server.sql("".join(f"DROP DATABASE IF EXISTS {identifier(name)};" for name in names))


def options_for(server: MariaDB, **extra: str) -> dict[str, str]:
    values = {"CREDENTIAL_PATH": str(server.credential_path), "MY_INSTANCES": str(server.port)}
    values.update(extra)
    return values


def test_hostile_names_are_dumped_and_restored_as_those_names(mariadb, tmp_path):
    try:
        mariadb.sql("CREATE DATABASE IF NOT EXISTS victim; CREATE TABLE IF NOT EXISTS victim.kept (id INT PRIMARY KEY)")
        for index, name in enumerate(HOSTILE_NAMES):
            mariadb.sql(f"CREATE DATABASE {identifier(name)}; CREATE TABLE {identifier(name)}.marker (id INT PRIMARY KEY, note TEXT) "
                        f"ENGINE=InnoDB; INSERT INTO {identifier(name)}.marker VALUES (1, {text_literal(name)}), (2, 'row {index}')")
        expected = {name: mariadb.sql(ROWS, database=name) for name in HOSTILE_NAMES}
        source = MysqlSource(MysqlOptions.model_validate(options_for(mariadb, EXCLUDE_DB="mysql shop legacy victim")), work_folder=tmp_path)
        run = backup_through_pipeline([source], tmp_path)
        manifest = read_manifest(run.storage, run.result.set_id)
        by_database = {object_name(stream.metadata, "database"): stream for stream in manifest.streams}
        # In the manifest itself a name that could read as a path (/, \\, .., a leading -, control characters) is hex.
        assert all(is_safe_object_name(stream.metadata.get("database", "x")) for stream in manifest.streams)
        for name in HOSTILE_NAMES:
            stream = by_database[name]
            assert stream.status == "ok", stream.error
            assert "/" not in stream.name and "\n" not in stream.name and "`" not in stream.name

        drop_all(mariadb, HOSTILE_NAMES)
        report = restore_set(run.storage, manifest, options=RestoreOptions(
            target=None, stream_names=tuple(by_database[name].name for name in HOSTILE_NAMES), to_database=True,
            key_file=run.key_file, options_by_kind={"mysql": options_for(mariadb)},
        ))
        assert len(report.restored) == len(HOSTILE_NAMES)
        present = database_names(mariadb)
        for name in HOSTILE_NAMES:
            assert name in present
            assert mariadb.sql(ROWS, database=name) == expected[name]
        assert "victim" in present and mariadb.sql("SELECT COUNT(*) FROM victim.kept") == "0\n"

        # Under a hostile new name, too, and refused over it without --force.
        renamed = "new`name'; DROP DATABASE victim; -- x"
        stream = by_database[HOSTILE_NAMES[0]]
        for force in (False, True):
            restore_set(run.storage, manifest, options=RestoreOptions(
                target=None, stream_names=(stream.name,), to_database=True, database=renamed, force=force,
                key_file=run.key_file, options_by_kind={"mysql": options_for(mariadb)},
            ))
        with pytest.raises(BackupError, match="already has tables"):
            restore_set(run.storage, manifest, options=RestoreOptions(
                target=None, stream_names=(stream.name,), to_database=True, database=renamed,
                key_file=run.key_file, options_by_kind={"mysql": options_for(mariadb)},
            ))
        assert mariadb.sql(ROWS, database=renamed) == expected[HOSTILE_NAMES[0]]
        assert "victim" in database_names(mariadb)
    finally:
        drop_all(mariadb, [*HOSTILE_NAMES, "victim", "new`name'; DROP DATABASE victim; -- x"])


@pytest.fixture
def short_folder():
    # Unix socket paths are limited to ~108 bytes: pytest's tmp_path can be too long.
    folder = Path(tempfile.mkdtemp(prefix="ncb-sock-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_restore_connects_only_to_a_configured_instance_whatever_the_manifest_names(mariadb, tmp_path, short_folder):
    source = MysqlSource(MysqlOptions.model_validate(options_for(mariadb, EXCLUDE_DB="mysql shop victim")), work_folder=tmp_path)
    outcome = dump_streams(source, tmp_path / "set")[f"mysql-{mariadb.port}-legacy"]
    with RecordingListener() as tcp, RecordingListener(short_folder / "evil.sock") as unix:
        try:
            for hostile in (str(tcp.port), str(short_folder / "evil.sock")):
                metadata = dict(outcome.report.metadata, instance=hostile, host="127.0.0.1", port=tcp.port, socket=str(unix.unix_path))
                request = RestoreRequest(stream_name=outcome.stream.name, kind="mysql", metadata=metadata, to_database=True,
                                         database="legacy_config", force=True, options=options_for(mariadb))
                with open(outcome.path, "rb") as reader:
                    restore_mysql(reader, request)
                assert mariadb.sql("SELECT COUNT(*) FROM visits", database="legacy_config") == "2\n"

                # Several configured instances, none of them the manifest's: refused, RESTORE_INSTANCE picks one.
                several = options_for(mariadb, MY_INSTANCES=f"{mariadb.port} {mariadb.socket_path}")
                with open(outcome.path, "rb") as reader, pytest.raises(BackupError, match="RESTORE_INSTANCE"):
                    restore_mysql(reader, RestoreRequest(stream_name=outcome.stream.name, kind="mysql", metadata=metadata,
                                                         to_database=True, database="legacy_config", force=True, options=several))
                with open(outcome.path, "rb") as reader:
                    restore_mysql(reader, RestoreRequest(
                        stream_name=outcome.stream.name, kind="mysql", metadata=metadata, to_database=True, database="legacy_config",
                        force=True, options={**several, "RESTORE_INSTANCE": str(mariadb.socket_path)},
                    ))
        finally:
            mariadb.sql("DROP DATABASE IF EXISTS legacy_config")
    assert tcp.connections == [] and unix.connections == []
