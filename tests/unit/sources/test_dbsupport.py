"""copy_stream: every byte in order, reader errors surface in the caller, a failing sink does not hang."""

from __future__ import annotations

import io
import os

import pytest

from ncbackup.sources._dbsupport import COPY_CHUNK_BYTES, copy_stream, failure_reason
from ncbackup.errors import CommandFailed


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
    error = CommandFailed(["/usr/bin/psql", "-c", "x"], 2, 'psql: error: FATAL:  password authentication failed\npassword retrieved from file "/tmp/x"')
    assert failure_reason(error) == "psql exited with status 2: psql: error: FATAL:  password authentication failed"
