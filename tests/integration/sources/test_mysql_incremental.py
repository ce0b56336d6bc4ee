"""MYSQL INCREMENTAL against real MariaDB servers: a full, then binary logs since the parent set, restored in order
into a fresh server with `ncbackup restore --to-database`; and each reason a run makes a full instead."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ncbackup.process import run
from ncbackup.sources._binlogchain import BinlogPosition, ChainState, read_state, write_state
from ncbackup.sources.base import StreamReport
from ncbackup.sources.mysql import ChainPlace, MysqlInstance, MysqlOptions, MysqlSource
from ncbackup.storage.local import LocalStorage
from tests.integration.servers.mariadb import MariaDB, remove_socket_folder, start_mariadb
from tests.support import ensure_signing_key, need_binary

pytestmark = pytest.mark.integration

ROWS = "SELECT id, note, HEX(amount) FROM ledger.entries ORDER BY id"


@pytest.fixture(scope="module")
def source_server(tmp_path_factory) -> MariaDB:
    """A MariaDB of its own (binary logging on): the binary logs replayed hold only this module's changes."""
    need_binary("mariadbd")
    need_binary("mariadb-install-db")
    need_binary("mariadb-binlog")
    server = start_mariadb(tmp_path_factory.mktemp("inc-source"), name="incsrc")
    yield server
    server.stop()
    remove_socket_folder(server)


@pytest.fixture
def target_server(tmp_path_factory) -> MariaDB:
    """A fresh, empty MariaDB to restore into."""
    need_binary("mariadbd")
    server = start_mariadb(tmp_path_factory.mktemp("inc-target"), name="inctgt", is_binlog_on=False)
    yield server
    server.stop()
    remove_socket_folder(server)


def write_config(tmp_path: Path, server: MariaDB, **parameters: str) -> Path:
    config = {
        "GENERAL": {"HOSTNAME": "dbhost", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log"),
                    "DISK_SPACE_CHECK": "False", "STATE_FOLDER": str(tmp_path / "state")},
        "MYSQL": {"ACTION": "execute", "NAME": "mysql_backup",
                  "PARAMETERS": {"CREDENTIAL_PATH": str(server.credential_path), "MY_INSTANCES": str(server.port),
                                 "EXCLUDE_DB": "mysql", "INCREMENTAL": "true", **parameters}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(tmp_path / "key.txt")}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": {"LOCAL_BACKUP": str(tmp_path / "backups")}}},
    }
    (tmp_path / "work").mkdir(exist_ok=True)
    key_file = tmp_path / "key.txt"
    if not key_file.exists():   # made before the first run, which would otherwise warn that it made one
        from ncbackup.stages.keys import generate_identity

        key_file.write_text(generate_identity()[0] + "\n")
        key_file.chmod(0o600)
    ensure_signing_key(tmp_path)
    path = tmp_path / "conf.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def cli(ncbackup_cmd: list[str], *args: str) -> tuple[int, str]:
    result = run([*ncbackup_cmd, *args], timeout_seconds=600, check=False)
    return result.returncode, result.text + result.stderr.decode("utf-8", "replace")


def manifests(tmp_path: Path) -> list[dict]:
    """Every set's manifest on the local storage, oldest first."""
    found = [json.loads(path.read_text()) for path in (tmp_path / "backups").rglob("manifest.json")]
    return sorted(found, key=lambda manifest: manifest["started_at"] + manifest["set_id"])


def streams_of(manifest: dict) -> dict[str, dict]:
    return {stream["name"]: stream for stream in manifest["streams"]}


def test_full_then_two_incrementals_restore_in_order_into_a_fresh_server(source_server, target_server, tmp_path, ncbackup_cmd):
    port = source_server.port
    source_server.sql("CREATE DATABASE ledger; CREATE TABLE ledger.entries (id INT PRIMARY KEY AUTO_INCREMENT, "
                      "note VARCHAR(100), amount BLOB) ENGINE=InnoDB;"
                      "INSERT INTO ledger.entries (note, amount) VALUES ('first', UNHEX('00FF')), ('second', NULL), ('third', 'x');")
    config = write_config(tmp_path, source_server)
    code, output = cli(ncbackup_cmd, "run", "-c", str(config))
    assert code == 0, output
    log_text = (tmp_path / "log").read_text()
    assert f"instance {port}: full dump because there is no state file" in log_text

    # Between sets: inserts, an update, a delete, a new table.
    source_server.sql("INSERT INTO ledger.entries (note, amount) VALUES ('fourth', UNHEX('DEADBEEF')), ('fifth', 'y');"
                      "UPDATE ledger.entries SET note = 'first, changed' WHERE id = 1; DELETE FROM ledger.entries WHERE id = 2;")
    code, output = cli(ncbackup_cmd, "run", "-c", str(config))
    assert code == 0, output
    assert f"instance {port}: incremental, " in (tmp_path / "log").read_text()
    source_server.sql("INSERT INTO ledger.entries (note) VALUES ('sixth');"
                      "CREATE TABLE ledger.extra (k VARCHAR(10) PRIMARY KEY) ENGINE=InnoDB; INSERT INTO ledger.extra VALUES ('kept');")
    code, output = cli(ncbackup_cmd, "run", "-c", str(config))
    assert code == 0, output

    full, first, second = manifests(tmp_path)
    assert streams_of(full)[f"mysql-{port}-ledger"]["metadata"]["level"] == "full"
    assert "no state file" in streams_of(full)[f"mysql-{port}-ledger"]["metadata"]["full_reason"]
    for manifest, parent, chain in ((first, full, [full]), (second, first, [full, first])):
        # An incremental run dumps nothing: its only stream is the binary logs since the parent set.
        (stream,) = manifest["streams"]
        assert stream["name"] == f"mysql-{port}-binlogs" and stream["kind"] == "mysql-binlog-chain"
        assert stream["metadata"]["level"] == "incremental" and stream["metadata"]["parent"] == parent["set_id"]
        assert manifest["parent"] == parent["set_id"] and manifest["chain"] == [m["set_id"] for m in chain]
    # Each incremental starts where the set before it ended.
    assert streams_of(first)[f"mysql-{port}-binlogs"]["metadata"]["start_position"] == \
        streams_of(full)[f"mysql-{port}-ledger"]["metadata"]["binlog_position"]
    assert streams_of(second)[f"mysql-{port}-binlogs"]["metadata"]["start_position"] == \
        streams_of(first)[f"mysql-{port}-binlogs"]["metadata"]["binlog_position"]

    # Restore the chain in order into the fresh server: the full's dump, then each incremental's binary logs.
    restore_config = write_config(tmp_path, source_server, RESTORE_INSTANCE=str(target_server.port))
    code, output = cli(ncbackup_cmd, "restore", "-c", str(restore_config), "--set", full["set_id"],
                       "--stream", f"mysql-{port}-ledger", "--to-database")
    assert code == 0, output
    for manifest in (first, second):
        code, output = cli(ncbackup_cmd, "restore", "-c", str(restore_config), "--set", manifest["set_id"], "--to-database")
        assert code == 0, output
    assert target_server.sql(ROWS) == source_server.sql(ROWS)
    code, output = cli(ncbackup_cmd, "check", "-c", str(config))
    assert code == 0, output
    assert (f"MySQL instance {port}: INCREMENTAL: the next run copies the binary logs since set {second['set_id']}" in output
            and "2 incremental(s) since full " + full["set_id"] in output), output
    assert "fourth" in target_server.sql(ROWS) and "second" not in target_server.sql(ROWS)
    assert target_server.sql("SELECT k FROM ledger.extra") == "kept\n"

    # Without --to-database the incremental is a plain tar of binary logs a stock mariadb-binlog reads.
    target = tmp_path / "plain"
    code, output = cli(ncbackup_cmd, "restore", "-c", str(config), "--set", second["set_id"], "--target", str(target))
    assert code == 0, output
    (tar_file,) = target.glob("*.tar")
    run(["tar", "-xf", str(tar_file), "-C", str(target)], timeout_seconds=60)
    names = streams_of(second)[f"mysql-{port}-binlogs"]["metadata"]["binlog_file_names"]
    start = streams_of(second)[f"mysql-{port}-binlogs"]["metadata"]["start_position"]["position"]
    decoded = run(["mariadb-binlog", f"--start-position={start}", *[str(target / name) for name in names]],
                  timeout_seconds=60).text
    assert "sixth" in decoded and "fourth" not in decoded


def source_for(server: MariaDB, tmp_path: Path, **parameters: str) -> MysqlSource:
    values = {"CREDENTIAL_PATH": str(server.credential_path), "MY_INSTANCES": str(server.port), "INCREMENTAL": "true",
              **parameters}
    place = ChainPlace(tmp_path / "state", "dbhost", "MYSQL")
    return MysqlSource(MysqlOptions.model_validate(values), work_folder=tmp_path, chain_place=place)


def current_position(server: MariaDB) -> BinlogPosition:
    file_name, offset = server.sql("SHOW MASTER STATUS").split("\t")[:2]
    return BinlogPosition(file_name, int(offset))


def test_a_purged_binary_log_makes_a_full_and_says_why(source_server, tmp_path):
    source = source_for(source_server, tmp_path)
    instance = MysqlInstance(str(source_server.port))
    assert source.chain_place is not None
    old = current_position(source_server)
    write_state(source.chain_place.state_file(instance),
                ChainState("20261130T010000Z", ("20261130T010000Z",), old, ()))
    assert source.begin_set({}, now=datetime.now(timezone.utc)) == ("20261130T010000Z",)
    source_server.sql("FLUSH BINARY LOGS")
    current = current_position(source_server)
    source_server.sql(f"PURGE BINARY LOGS TO '{current.file}'")
    assert source.begin_set({}, now=datetime.now(timezone.utc)) == ()
    reason = source.decisions[instance.spec].full_reason or ""
    assert f"binary log {old.file}" in reason and "purged" in reason


def test_a_parent_missing_from_a_storage_makes_a_full(source_server, tmp_path):
    source = source_for(source_server, tmp_path)
    instance = MysqlInstance(str(source_server.port))
    assert source.chain_place is not None
    write_state(source.chain_place.state_file(instance),
                ChainState("20261130T010000Z", ("20261130T010000Z",), current_position(source_server), ("STORAGE",)))
    empty = LocalStorage(tmp_path / "empty")
    assert source.begin_set({"STORAGE": empty}, now=datetime.now(timezone.utc)) == ()
    assert "not complete on storage STORAGE" in (source.decisions[instance.spec].full_reason or "")


def test_binary_logging_off_makes_a_full_and_check_says_incremental_cannot_work(mariadb_second, tmp_path):
    source = source_for(mariadb_second, tmp_path, MY_INSTANCES=str(mariadb_second.socket_path))
    assert source.begin_set({}, now=datetime.now(timezone.utc)) == ()
    assert "binary logging is off" in (source.decisions[str(mariadb_second.socket_path)].full_reason or "")
    (line,) = [line for line in source.check() if "INCREMENTAL" in line.text]
    assert not line.ok and "needs binary logging" in line.text


def test_check_says_the_first_run_is_a_full_and_why(source_server, tmp_path):
    lines = source_for(source_server, tmp_path).check()
    text = "\n".join(line.text for line in lines)
    assert all(line.ok for line in lines), text
    assert f"MySQL instance {source_server.port}: INCREMENTAL: the next run is a full, because there is no state file" in text
    assert "STATE_FOLDER" in text


def test_a_failed_stream_leaves_the_state_where_it_was(source_server, tmp_path):
    source_server.sql("CREATE DATABASE IF NOT EXISTS statecheck")
    source = source_for(source_server, tmp_path)
    instance = MysqlInstance(str(source_server.port))
    assert source.chain_place is not None
    path = source.chain_place.state_file(instance)
    streams = list(source.streams())
    assert streams and str(instance.spec) in source.pending
    failed = [streams[0].name]
    assert source.end_set("20261130T020000Z", storages=["STORAGE"], failed_streams=failed)
    assert not path.exists()
    streams = list(source.streams())
    assert source.end_set("20261130T020000Z", storages=["STORAGE"], failed_streams=[]) == []
    state = read_state(path)
    assert state.chain == ("20261130T020000Z",) and state.storages == ("STORAGE",)
    assert path.parent.stat().st_mode & 0o777 == 0o700 and path.stat().st_mode & 0o777 == 0o600


def only(server: MariaDB, *databases: str) -> str:
    """EXCLUDE_DB naming every database of server but these (other tests leave theirs)."""
    names = server.sql("SHOW DATABASES").split()
    return " ".join(name for name in names if name not in databases) or "mysql"


def write_streams(source: MysqlSource, folder: Path, *, before_each=None) -> dict[str, tuple[object, Path, StreamReport]]:
    """Write every stream of source into folder, as the pipeline does (before_each(stream) runs before a stream)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for stream in source.streams():
        if before_each is not None:
            before_each(stream)
        report = StreamReport()
        path = folder / f"{stream.name}{stream.suffix}"
        with open(path, "wb") as sink:
            stream.write_to(sink, report)
        written[stream.name] = (stream, path, report)
    return written


def restore_options(server: MariaDB) -> dict[str, str]:
    return {"CREDENTIAL_PATH": str(server.credential_path), "MY_INSTANCES": str(server.port)}


def test_a_write_between_the_flush_and_a_single_dump_is_not_replayed_twice(source_server, target_server, tmp_path):
    source_server.sql("CREATE DATABASE window_a; CREATE TABLE window_a.t (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB;"
                      "INSERT INTO window_a.t VALUES (1, 'before');")
    exclude = only(source_server, "window_a")
    full = source_for(source_server, tmp_path, EXCLUDE_DB=exclude)
    # The flush is done when the streams are listed; this insert lands after it and before the dump starts.
    written = write_streams(full, tmp_path / "full",
                            before_each=lambda stream: source_server.sql("INSERT INTO window_a.t VALUES (2, 'between')"))
    (dump, dump_path, dump_report) = written[f"mysql-{source_server.port}-window_a"]
    flush = BinlogPosition.from_metadata(dump_report.metadata["binlog_position"])
    assert dump_report.metadata["dump_position"]["position"] > flush.position or dump_report.metadata["dump_position"]["file"] != flush.file
    assert full.end_set("20261130T050000Z", storages=[], failed_streams=[]) == []

    source_server.sql("INSERT INTO window_a.t VALUES (3, 'after')")
    incremental = source_for(source_server, tmp_path, EXCLUDE_DB=exclude)
    (chain_stream, chain_path, chain_report) = write_streams(incremental, tmp_path / "inc")[f"mysql-{source_server.port}-binlogs"]
    assert chain_report.metadata["start_position"] == dump_report.metadata["dump_position"]

    from ncbackup.sources.base import RestoreRequest
    from ncbackup.sources.mysql import restore_mysql, restore_mysql_binlog_chain

    options = restore_options(target_server)
    with open(dump_path, "rb") as reader:
        restore_mysql(reader, RestoreRequest(dump.name, "mysql", dump_report.metadata, to_database=True, options=options))
    with open(chain_path, "rb") as reader:
        restore_mysql_binlog_chain(reader, RestoreRequest(chain_stream.name, "mysql-binlog-chain", chain_report.metadata,
                                                          to_database=True, options=options))
    query = "SELECT id, note FROM window_a.t ORDER BY id"
    assert target_server.sql(query) == source_server.sql(query) == "1\tbefore\n2\tbetween\n3\tafter\n"


def test_a_write_before_a_later_dump_of_several_is_a_warning_naming_it(source_server, tmp_path):
    source_server.sql("CREATE DATABASE window_b; CREATE TABLE window_b.t (id INT PRIMARY KEY) ENGINE=InnoDB;"
                      "CREATE DATABASE window_c; CREATE TABLE window_c.t (id INT PRIMARY KEY) ENGINE=InnoDB;")
    source = source_for(source_server, tmp_path, EXCLUDE_DB=only(source_server, "window_b", "window_c"))

    def write_into_c_before_its_dump(stream) -> None:
        if stream.name.endswith("-window_c"):
            source_server.sql("INSERT INTO window_c.t VALUES (1)")

    written = write_streams(source, tmp_path / "full", before_each=write_into_c_before_its_dump)
    assert set(written) == {f"mysql-{source_server.port}-window_b", f"mysql-{source_server.port}-window_c"}
    (warning,) = source.end_set("20261130T060000Z", storages=[], failed_streams=[])
    assert "before the dump of window_c began" in warning and "window_b" not in warning


def test_max_chain_counts_the_incrementals_of_real_runs_then_a_full_starts_a_new_chain(source_server, tmp_path):
    source_server.sql("CREATE DATABASE IF NOT EXISTS chained")
    exclude = only(source_server, "chained")
    levels = []
    for number, set_id in enumerate(("20261201T010000Z", "20261202T010000Z", "20261203T010000Z", "20261204T010000Z")):
        source = source_for(source_server, tmp_path / "run", EXCLUDE_DB=exclude, MAX_CHAIN="2")
        chain = source.begin_set({}, now=datetime.now(timezone.utc))
        written = write_streams(source, tmp_path / f"run-{number}")
        levels.append((chain, sorted(report.metadata["level"] for _stream, _path, report in written.values())))
        assert source.end_set(set_id, storages=[], failed_streams=[]) == []
    assert levels == [
        ((), ["full"]),
        (("20261201T010000Z",), ["incremental"]),
        (("20261201T010000Z", "20261202T010000Z"), ["incremental"]),
        ((), ["full"]),            # MAX_CHAIN 2 reached: a new chain
    ]
    (last_report,) = [report for _stream, _path, report in written.values()]
    assert "MAX_CHAIN 2 reached" in last_report.metadata["full_reason"]
