"""Compression stages round-trip and interoperate with the zstd / gzip command-line tools."""

from __future__ import annotations

import io
import os
import subprocess

import pytest

from ncbackup.stages.compress import GzipStage, NoCompression, ZstdStage
from tests.support import need_binary

STAGES = {
    "zstd": lambda: ZstdStage(level=3, threads=-1),
    "zstd-single-thread": lambda: ZstdStage(level=1, threads=0),
    "gzip": lambda: GzipStage(level=6),
    "none": NoCompression,
}


def _data(size: int) -> bytes:
    return os.urandom(size // 3) + b"compressible text " * (size // 27 + 1)


def _compress(stage, data: bytes) -> bytes:
    out = io.BytesIO()
    writer = stage.writer(out)
    for start in range(0, len(data), 300_001):
        writer.write(data[start:start + 300_001])
    writer.close()
    assert not out.closed, "closing a compressor must leave its sink open"
    return out.getvalue()


@pytest.mark.parametrize("name", STAGES)
@pytest.mark.parametrize("size", [0, 1, 5_000_000])
def test_compression_round_trips(name: str, size: int) -> None:
    stage = STAGES[name]()
    data = _data(size)[:size] if size else b""
    compressed = _compress(stage, data)
    assert stage.reader(io.BytesIO(compressed)).read() == data


def test_zstd_output_is_read_by_zstd_binary() -> None:
    zstd = need_binary("zstd")
    data = _data(3_000_000)
    compressed = _compress(ZstdStage(level=5, threads=2), data)
    assert len(compressed) < len(data)
    assert subprocess.run([zstd, "-d", "-c"], input=compressed, capture_output=True, check=True).stdout == data


def test_zstd_binary_output_is_read_by_zstd_stage() -> None:
    zstd = need_binary("zstd")
    data = _data(2_000_000)
    compressed = subprocess.run([zstd, "-T0", "-3", "-c"], input=data, capture_output=True, check=True).stdout
    assert ZstdStage().reader(io.BytesIO(compressed)).read() == data


def test_gzip_output_is_read_by_gzip_binary() -> None:
    gzip_binary = need_binary("gzip")
    data = _data(1_000_000)
    compressed = _compress(GzipStage(), data)
    assert subprocess.run([gzip_binary, "-d", "-c"], input=compressed, capture_output=True, check=True).stdout == data


def test_zstd_level_changes_output_and_is_described() -> None:
    data = _data(2_000_000)
    assert ZstdStage(level=1).describe() == {"codec": "zstd", "level": 1}
    assert len(_compress(ZstdStage(level=19, threads=0), data)) <= len(_compress(ZstdStage(level=1, threads=0), data))


def test_corrupted_zstd_stream_raises() -> None:
    compressed = bytearray(_compress(ZstdStage(), _data(500_000)))
    compressed[len(compressed) // 2] ^= 0xFF
    with pytest.raises(Exception):  # noqa: B017 - zstandard.ZstdError; the restore layer turns it into IntegrityError
        ZstdStage().reader(io.BytesIO(bytes(compressed))).read()


@pytest.mark.parametrize("threads", [0, 1, 2, 4])
def test_seekable_frames_compressed_in_parallel_come_out_in_order_each_decompressing_to_its_slice(threads):
    import random

    import zstandard

    from ncbackup.stages.compress import parse_seek_table, seek_table_size

    rng = random.Random(threads)
    plain = b"".join(rng.choice([b"log line %d\n" % n, rng.randbytes(37)]) for n in range(20_000))
    sink = io.BytesIO()
    writer = ZstdStage(threads=threads, seek_frame_bytes=4096).writer(sink)
    position = 0
    while position < len(plain):          # odd-sized writes, across frame boundaries
        step = rng.randint(1, 9000)
        writer.write(plain[position:position + step])
        position += step
    writer.close()
    stream = sink.getvalue()
    assert ZstdStage().reader(io.BytesIO(stream)).read() == plain     # the whole stream, seek table skipped
    table = stream[-seek_table_size(stream[-9:]):]
    frames = parse_seek_table(table)
    assert len(frames) == -(-len(plain) // 4096)
    for frame in frames:
        compressed = stream[frame.compressed_offset:frame.compressed_offset + frame.compressed_bytes]
        assert zstandard.ZstdDecompressor().decompress(compressed) == plain[frame.plain_offset:frame.plain_offset + frame.plain_bytes]
    assert frames[-1].compressed_offset + frames[-1].compressed_bytes == len(stream) - len(table)
