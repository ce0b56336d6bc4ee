"""copy_stream: every byte in order, reader errors surface in the caller, a failing sink does not hang; names shown and restored as data."""

from __future__ import annotations

import io
import os

import pytest

from ncbackup.errors import BackupError, CommandFailed
from ncbackup.sources._dbsupport import COPY_CHUNK_BYTES, copy_stream, failure_reason, restore_database_name, shown_name
from ncbackup.sources.base import RestoreRequest


def test_copy_stream_copies_every_byte_in_order():
    data = os.urandom(3 * COPY_CHUNK_BYTES + 12345)
    sink = io.BytesIO()
    assert copy_stream(io.BytesIO(data), sink) == len(data)
    assert sink.getvalue() == data


def test_reader_error_is_raised_in_the_caller():
    class Broken(io.RawIOBase):
        def read(self, size=-1):
            raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        copy_stream(Broken(), io.BytesIO())


def test_sink_error_propagates_and_the_helper_thread_ends():
    import threading

    class FullSink(io.RawIOBase):
        def write(self, data):
            raise OSError("no space left")

    before = threading.active_count()
    with pytest.raises(OSError, match="no space left"):
        copy_stream(io.BytesIO(b"x" * (10 * COPY_CHUNK_BYTES)), FullSink())
    for _ in range(200):  # bounded: the helper sees the stop flag after at most one more chunk
        if threading.active_count() <= before:
            break
        threading.Event().wait(0.01)
    assert threading.active_count() <= before


def test_failure_reason_prefers_the_error_line_over_a_trailing_hint():
    error = CommandFailed(["/usr/bin/psql", "-c", "x"], 2,
                          'psql: error: FATAL:  password authentication failed\npassword retrieved from file "/tmp/x"')
    assert failure_reason(error) == "psql exited with status 2: psql: error: FATAL:  password authentication failed"


def test_a_name_with_a_newline_is_shown_escaped_so_it_cannot_forge_an_output_line():
    assert shown_name("shop db=x -1'`") == "shop db=x -1'`"
    assert shown_name("x\n[ok] all fine") == "'x\\n[ok] all fine'"


@pytest.mark.parametrize(("metadata", "database", "expected"), [
    ({"database": "host=h port=1"}, None, "host=h port=1"),
    ({"database": "recorded"}, "-chosen", "-chosen"),
])
def test_restore_database_name_is_the_option_else_the_recorded_name(metadata, database, expected):
    request = RestoreRequest("s", "postgres", metadata, to_database=True, database=database)
    assert restore_database_name(request) == expected


@pytest.mark.parametrize("metadata", [{}, {"database": ""}, {"database": ["a"]}, {"database": 5}, {"database": "a\0b"}])
def test_restore_database_name_refuses_a_missing_odd_or_nul_holding_name(metadata):
    with pytest.raises(BackupError, match="database"):
        restore_database_name(RestoreRequest("s", "postgres", metadata, to_database=True))


def test_one_failed_stream_for_every_database_source_and_writing_it_raises_its_reason():
    from ncbackup.errors import SourceError
    from ncbackup.sources import _dbsupport, mysql, postgres
    from ncbackup.sources.base import StreamReport

    assert mysql.FailedStream is _dbsupport.FailedStream and postgres.FailedStream is _dbsupport.FailedStream
    stream = _dbsupport.FailedStream(name="mysql-3306", kind="mysql", suffix=".sql", error=SourceError("instance down"))
    with pytest.raises(SourceError, match="instance down"):
        stream.write_to(io.BytesIO(), StreamReport())
