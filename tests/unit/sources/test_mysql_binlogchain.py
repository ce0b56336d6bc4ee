"""MYSQL INCREMENTAL without a server: the state file (round trip, damage, atomic write), the full-or-incremental
decision for every reason, FULL_EVERY, and which binary logs a chain stream copies."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ncbackup.errors import BackupError
from ncbackup.sources._binlogchain import (
    BinlogPosition,
    ChainSettings,
    ChainState,
    FullEvery,
    StateProblem,
    decide,
    logs_since,
    read_state,
    state_path,
    to_full_every,
    write_state,
)
from ncbackup.sources.base import RestoreRequest
from ncbackup.sources.mysql import (
    MysqlOptions,
    chain_metadata,
    dump_snapshot_position,
    position_args,
    restore_mysql_binlog_chain,
)

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)
FULL = "20261127T030000Z"
STATE = ChainState(set_id="20261129T030000Z", chain=(FULL, "20261128T030000Z", "20261129T030000Z"),
                   position=BinlogPosition("mysql-bin.000007", 385, "0-1-42"), storages=("STORAGE",))
LOGS = ["mysql-bin.000006", "mysql-bin.000007", "mysql-bin.000008"]
INCREMENTAL = ChainSettings(True, None, 13)


def decision(state=STATE, *, settings=INCREMENTAL, is_binlog_on=True, logs=LOGS, folder=None,
             lacking=(), tmp_path: Path):
    if folder is None:
        folder = tmp_path
        for name in LOGS:
            (tmp_path / name).write_bytes(b"\xfebin")
    return decide(settings, state, instance="3306", is_binlog_on=is_binlog_on, binlog_files=logs,
                  readable_folder=folder, storages_lacking_parent=list(lacking), now=NOW)


def test_state_round_trips_and_is_written_private_and_atomically(tmp_path):
    path = state_path(tmp_path / "state", config="/etc/a.json", hostname="web1", section="MYSQL",
                      instance_label="/run/mysqld/mysqld.sock")
    assert "/" not in path.name and path.name.startswith("mysql-web1-MYSQL-")
    assert path != state_path(tmp_path / "state", config="/etc/b.json", hostname="web1", section="MYSQL",
                              instance_label="/run/mysqld/mysqld.sock")
    write_state(path, STATE)
    assert read_state(path) == STATE
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]   # no temporary file left


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],                                   # cut short
    lambda text: text.replace("385", "386"),                               # a changed byte: checksum
    lambda text: "{}",
])
def test_a_damaged_state_is_a_problem_that_names_the_file(tmp_path, damage):
    path = tmp_path / "state.json"
    write_state(path, STATE)
    path.write_text(damage(path.read_text()))
    with pytest.raises(StateProblem, match=f"the state file {path} is damaged"):
        read_state(path)


def test_a_state_whose_checksum_matches_but_whose_chain_is_out_of_order_is_damaged(tmp_path):
    bad = ChainState(set_id=FULL, chain=("20261129T030000Z", FULL), position=STATE.position, storages=())
    path = tmp_path / "state.json"
    write_state(path, bad)
    with pytest.raises(StateProblem, match="not in order"):
        read_state(path)


def test_a_binlog_name_that_is_a_path_is_refused():
    with pytest.raises(ValueError, match="not a plain file name"):
        BinlogPosition.from_metadata({"file": "../../etc/passwd", "position": 4})


def test_missing_state_says_so(tmp_path):
    with pytest.raises(StateProblem, match="there is no state file"):
        read_state(tmp_path / "none.json")


def test_incremental_when_nothing_stands_against_it(tmp_path):
    result = decision(tmp_path=tmp_path)
    assert result.is_incremental and result.parent == STATE and result.full_reason is None


@pytest.mark.parametrize(("change", "reason"), [
    ({"settings": ChainSettings(False, None, 13)}, None),
    ({"is_binlog_on": False}, "binary logging is off on instance 3306"),
    ({"state": StateProblem("there is no state file /x")}, "there is no state file /x"),
    ({"lacking": ["S3"]}, "parent set 20261129T030000Z is not complete on storage S3"),
    ({"settings": ChainSettings(True, None, 2)}, "MAX_CHAIN 2 reached"),
    ({"settings": ChainSettings(True, FullEvery(seconds=3 * 86400), 13)}, "FULL_EVERY is due"),
    ({"settings": ChainSettings(True, FullEvery(weekday=5), 13)}, "FULL_EVERY is due"),   # a Saturday since the full
    ({"logs": ["mysql-bin.000008"]}, "binary log mysql-bin.000007 where set 20261129T030000Z ended has been purged"),
])
def test_every_reason_for_a_full(tmp_path, change, reason):
    result = decision(tmp_path=tmp_path, **change)
    assert not result.is_incremental
    assert result.full_reason == reason if reason is None else reason in (result.full_reason or "")


def test_a_binlog_folder_without_the_log_is_a_full(tmp_path):
    result = decision(tmp_path=tmp_path, folder=tmp_path / "elsewhere")
    assert "mysql-bin.000007 is not readable" in (result.full_reason or "")


def test_max_chain_counts_incrementals_and_full_every_not_yet_due(tmp_path):
    assert decision(tmp_path=tmp_path, settings=ChainSettings(True, FullEvery(seconds=4 * 86400), 3)).is_incremental
    assert decision(tmp_path=tmp_path, settings=ChainSettings(True, FullEvery(weekday=3), 3)).is_incremental  # no Thursday


@pytest.mark.parametrize(("text", "expected"), [
    ("7d", FullEvery(seconds=7 * 86400)), ("36h", FullEvery(seconds=36 * 3600)), ("Sunday", FullEvery(weekday=6)),
    ("86400", FullEvery(seconds=86400)),
])
def test_full_every_reads_durations_and_weekdays(text, expected):
    assert to_full_every(text) == expected


def test_full_every_refuses_nonsense_in_one_sentence():
    with pytest.raises(ValueError, match='a weekday such as "sunday"'):
        to_full_every("fortnightly")


def test_a_missed_weekday_makes_the_next_run_a_full():
    sunday = FullEvery(weekday=6)
    last_full = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)    # a Sunday (noon: the same date in every time zone)
    assert not sunday.is_due(last_full, last_full + timedelta(days=6))
    assert sunday.is_due(last_full, last_full + timedelta(days=8))   # Monday after a missed Sunday


def test_the_chain_stream_copies_from_the_parents_log_up_to_the_flushed_one():
    logs = ["b.000001", "b.000002", "b.000003", "b.000004"]
    assert logs_since(logs, BinlogPosition("b.000002", 385), BinlogPosition("b.000004", 385)) == ["b.000002", "b.000003"]
    with pytest.raises(ValueError, match="purged"):
        logs_since(logs[2:], BinlogPosition("b.000002", 385), BinlogPosition("b.000004", 385))


def test_options_read_incremental_keys():
    options = MysqlOptions.model_validate({"INCREMENTAL": "True", "FULL_EVERY": "sunday", "MAX_CHAIN": "6"})
    assert options.is_incremental and options.full_every == FullEvery(weekday=6) and options.max_chain == 6
    assert MysqlOptions.model_validate({}).max_chain == 13 and not MysqlOptions.model_validate({}).is_incremental


def test_replay_refuses_a_rename_and_unusable_metadata():
    metadata = {"start_position": {"file": "b.000002", "position": 4}, "binlog_file_names": ["b.000002"]}
    with pytest.raises(BackupError, match="without --database"):
        restore_mysql_binlog_chain(io.BytesIO(), RestoreRequest("mysql-3306-binlogs", "mysql-binlog-chain", metadata,
                                                                to_database=True, database="other"))
    with pytest.raises(BackupError, match="not plain file names"):
        chain_metadata(dict(metadata, binlog_file_names=["../x"]), "mysql-3306-binlogs")
    with pytest.raises(BackupError, match="starts at b.000002 but holds b.000003"):
        chain_metadata(dict(metadata, binlog_file_names=["b.000003"]), "mysql-3306-binlogs")
    assert chain_metadata(metadata, "s") == (BinlogPosition("b.000002", 4), ["b.000002"])
    json.dumps(metadata)


@pytest.mark.parametrize(("version_line", "expected"), [
    ("mariadb-dump from 11.8.3-MariaDB, client 10.19 for debian-linux-gnu (x86_64)", ["--master-data=2"]),
    ("mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)", ["--source-data=2"]),
    ("mysqldump  Ver 8.0.25 for Linux on x86_64 (MySQL Community Server - GPL)", ["--master-data=2"]),
    ("mysqldump  Ver 8.4.2 for Linux on x86_64 (MySQL Community Server - GPL)", ["--source-data=2"]),
])
def test_the_position_option_follows_the_dump_tool(version_line, expected):
    assert position_args(version_line) == expected


def test_the_snapshot_position_is_read_from_the_dump_head_in_both_spellings():
    mariadb = b"-- MariaDB dump\n--\n-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=1234;\n"
    mysql = b"--\n-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000009', SOURCE_LOG_POS=157;\n"
    assert dump_snapshot_position(mariadb) == BinlogPosition("mysql-bin.000003", 1234)
    assert dump_snapshot_position(mysql) == BinlogPosition("binlog.000009", 157)
    # Only a comment line counts: the same text inside data, or a file name that is a path, is not a position.
    assert dump_snapshot_position(b"INSERT INTO t VALUES ('-- CHANGE MASTER TO MASTER_LOG_FILE=''x'', MASTER_LOG_POS=1;');") is None
    assert dump_snapshot_position(b"-- CHANGE MASTER TO MASTER_LOG_FILE='../x', MASTER_LOG_POS=4;\n") is None
