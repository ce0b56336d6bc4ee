"""MongoDB source with STAND-IN mongodump/mongorestore scripts (MongoDB's tools are not packaged in Debian).

The stand-ins record their argv and the --config file they were given, and emit/consume bytes, so
these tests prove the command line, that secrets travel only in a 0600 file, the streaming, and that
a dump dying halfway fails the stream. They do not prove compatibility with a real mongod.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from ncbackup.errors import BackupError
from ncbackup.sources.base import RestoreRequest
from ncbackup.sources.mongo import MongoOptions, MongoSource, restore_mongo
from ncbackup.sources.registry import RESTORERS, SOURCES
from tests.integration.sources.dumping import backup_through_pipeline, dump_streams

PASSWORD = "mongo p@ss: 'quoted' \"double\""
ARCHIVE_BYTES = 3 * 1024 * 1024 + 17

STAND_IN = r'''#!{python}
"""Stand-in for mongodump/mongorestore: logs argv and the --config file, then streams bytes."""
import hashlib, json, os, stat, sys
from pathlib import Path

here = Path(__file__).parent
args = sys.argv[1:]
if args == ["--version"]:
    print("mongodump version: 100.9.4 (stand-in)")
    sys.exit(0)
config = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
record = {{"program": Path(sys.argv[0]).name, "argv": args}}
if config:
    record["config_text"] = Path(config).read_text()
    record["config_mode"] = stat.S_IMODE(os.stat(config).st_mode)
with open(here / "calls.jsonl", "a") as log:
    log.write(json.dumps(record) + "\n")
if Path(sys.argv[0]).name == "mongodump":
    block = hashlib.sha256(b"archive").digest() * 4096
    remaining = {size}
    while remaining:
        piece = block[: min(len(block), remaining)]
        sys.stdout.buffer.write(piece)
        remaining -= len(piece)
        if (here / "die-halfway").exists() and remaining < {size} // 2:
            sys.stdout.flush()
            print("Failed: error writing data for collection `shop.orders`: connection reset", file=sys.stderr)
            sys.exit(1)
else:
    data = sys.stdin.buffer.read()
    (here / "restored.bin").write_bytes(data)
'''


@pytest.fixture
def tools(tmp_path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("mongodump", "mongorestore"):
        script = folder / name
        script.write_text(STAND_IN.format(python=sys.executable, size=ARCHIVE_BYTES))
        script.chmod(0o755)
    return folder


def calls(tools: Path) -> list[dict]:
    return [json.loads(line) for line in (tools / "calls.jsonl").read_text().splitlines()]


def expected_archive() -> bytes:
    block = hashlib.sha256(b"archive").digest() * 4096
    data = b""
    while len(data) < ARCHIVE_BYTES:
        data += block
    return data[:ARCHIVE_BYTES]


def options(tools: Path, **extra: str) -> dict[str, str]:
    values = {"MONGO_USER": "backup", "MONGO_PWD": PASSWORD, "MONGO_HOST": "10.0.0.5", "MONGO_PORT": "27018",
              "MONGODUMP_BIN": str(tools / "mongodump"), "MONGORESTORE_BIN": str(tools / "mongorestore")}
    values.update(extra)
    return values


def test_registry_knows_the_mongo_section():
    assert SOURCES["mongo"].factory is MongoSource and RESTORERS["mongo"] is restore_mongo


def test_dump_streams_the_archive_and_the_password_only_travels_in_a_private_config_file(tools, tmp_path):
    source = MongoSource(MongoOptions.model_validate(options(tools, OPLOG="true")), work_folder=tmp_path)
    run = backup_through_pipeline([source], tmp_path)
    info = run.stream("mongo-10.0.0.5")
    assert info.status == "ok" and info.kind == "mongo" and info.metadata == {"oplog": True, "format": "archive"}
    (call,) = calls(tools)
    argv = call["argv"]
    assert PASSWORD not in " ".join(argv)
    assert argv[1:] == ["--host=10.0.0.5", "--port=27018", "--username=backup", "--authenticationDatabase=admin", "--archive", "--oplog"]
    assert "--gzip" not in argv
    assert call["config_mode"] == 0o600
    assert json.loads(call["config_text"].split(": ", 1)[1]) == PASSWORD
    assert not list((tmp_path / "work").iterdir()), "the config file with the password is removed"

    run.restore("mongo-10.0.0.5", to_database=True, options=options(tools))
    assert (tools / "restored.bin").read_bytes() == expected_archive()
    restore_call = calls(tools)[-1]
    assert restore_call["program"] == "mongorestore" and "--archive" in restore_call["argv"]
    assert "--oplogReplay" in restore_call["argv"] and PASSWORD not in " ".join(restore_call["argv"])


def test_uri_file_replaces_host_arguments_and_stays_out_of_argv(tools, tmp_path):
    uri_file = tmp_path / "uri"
    uri_file.write_text(f"mongodb://backup:{PASSWORD}@db1,db2/?replicaSet=rs0\n")
    values = options(tools, MONGO_URI_FILE=str(uri_file), MONGO_PWD="", MONGO_USER="", MONGO_HOST="rs0/db1,db2")
    outcomes = dump_streams(MongoSource(MongoOptions.model_validate(values), work_folder=tmp_path), tmp_path / "set")
    outcome = outcomes["mongo-rs0-db1-db2"]
    assert outcome.error is None and outcome.data == expected_archive()
    (call,) = calls(tools)
    assert call["argv"][1:] == ["--archive"]
    assert "replicaSet=rs0" in call["config_text"] and "--host" not in " ".join(call["argv"])


def test_dump_dying_halfway_fails_the_stream_with_the_tool_reason(tools, tmp_path):
    (tools / "die-halfway").touch()
    source = MongoSource(MongoOptions.model_validate(options(tools)), work_folder=tmp_path)
    run = backup_through_pipeline([source], tmp_path)
    (result,) = run.result.streams
    assert not result.is_ok and "connection reset" in result.error
    assert run.stream("mongo-10.0.0.5").status == "failed"


def test_missing_mongodump_is_named(tmp_path):
    values = {"MONGODUMP_BIN": str(tmp_path / "nowhere" / "mongodump")}
    outcomes = dump_streams(MongoSource(MongoOptions.model_validate(values), work_folder=tmp_path), tmp_path / "set")
    error = outcomes["mongo-127.0.0.1"].error
    assert "nowhere/mongodump" in str(error) and "not found" in str(error)


def test_restore_of_one_database_with_force_passes_ns_include_and_drop(tools, tmp_path):
    import io

    request = RestoreRequest("mongo-x", "mongo", {"oplog": False}, to_database=True, database="shop", force=True, options=options(tools))
    restore_mongo(io.BytesIO(b"archive bytes"), request)
    argv = calls(tools)[-1]["argv"]
    assert "--nsInclude=shop.*" in argv and "--drop" in argv and "--oplogReplay" not in argv
    assert (tools / "restored.bin").read_bytes() == b"archive bytes"


def test_restore_without_to_database_is_refused(tools):
    import io

    with pytest.raises(BackupError, match="--to-database"):
        restore_mongo(io.BytesIO(b""), RestoreRequest("mongo-x", "mongo", {}, options=options(tools)))


def test_check_names_the_tool_version_and_says_connection_is_not_tested(tools, tmp_path):
    lines = MongoSource(MongoOptions.model_validate(options(tools)), work_folder=tmp_path).check()
    assert all(line.ok for line in lines)
    assert "100.9.4" in lines[0].text and "not tested" in lines[-1].text


def test_restore_takes_the_server_from_the_config_and_a_database_name_only_as_a_pattern_value(tools):
    import io

    hostile = {"oplog": False, "host": "10.6.6.6", "port": 6666, "socket": "/tmp/evil.sock", "instance": "evil", "database": "x"}
    request = RestoreRequest("mongo-x", "mongo", hostile, to_database=True, database="-we*ird=x'`", options=options(tools))
    restore_mongo(io.BytesIO(b"archive bytes"), request)
    argv = calls(tools)[-1]["argv"]
    assert argv[1:4] == ["--host=10.0.0.5", "--port=27018", "--username=backup"]
    assert "--nsInclude=-we\\*ird=x'`.*" in argv
    assert not any("10.6.6.6" in arg or "6666" in arg or "evil" in arg for arg in argv)


@pytest.mark.parametrize("database", ["shop.orders", "a/b", "a\\b", 'a"b', "a$b", "a b", "a\0b"])
def test_restore_refuses_a_name_mongodb_cannot_hold(tools, database):
    import io

    request = RestoreRequest("mongo-x", "mongo", {}, to_database=True, database=database, options=options(tools))
    with pytest.raises(BackupError, match="not a MongoDB database name"):
        restore_mongo(io.BytesIO(b"archive bytes"), request)
    assert not (tools / "calls.jsonl").exists()
