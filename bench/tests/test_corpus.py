"""The corpus is deterministic, exactly the size asked, cached, and its digest catches a changed byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.corpus import ensure_corpus, parse_size, size_label, tree_digest

SIZE_BYTES = 3 << 20


def _apparent_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_same_seed_gives_same_bytes_and_another_seed_does_not(tmp_path):
    first = ensure_corpus(tmp_path / "a", seed=7, size_bytes=SIZE_BYTES, log=lambda _: None)
    again = ensure_corpus(tmp_path / "b", seed=7, size_bytes=SIZE_BYTES, log=lambda _: None)
    other = ensure_corpus(tmp_path / "c", seed=8, size_bytes=SIZE_BYTES, log=lambda _: None)
    assert first.stats.content_digest == again.stats.content_digest
    assert first.stats.content_digest != other.stats.content_digest
    assert tree_digest(first.path, with_content=True)[0] == tree_digest(again.path, with_content=True)[0]


def test_corpus_has_exactly_the_requested_size_and_the_promised_mix(tmp_path):
    size_bytes = 16 << 20  # big enough for several medium files
    corpus = ensure_corpus(tmp_path, seed=1, size_bytes=size_bytes, log=lambda _: None)
    assert _apparent_bytes(corpus.path) == size_bytes
    assert corpus.stats.text_bytes + corpus.stats.binary_bytes == size_bytes
    assert corpus.stats.small_files > 200
    assert (corpus.path / "links" / "dangling").is_symlink()
    assert (corpus.path / "empty" / "b" / "c").is_dir()
    # Text compresses, random bytes do not: both kinds are really there.
    assert 0.4 < corpus.stats.text_bytes / size_bytes < 0.65


def test_cached_corpus_is_reused_without_regenerating(tmp_path):
    messages: list[str] = []
    first = ensure_corpus(tmp_path, seed=1, size_bytes=SIZE_BYTES, log=messages.append)
    marker_time = first.path.with_name(first.path.name + ".json").stat().st_mtime_ns
    second = ensure_corpus(tmp_path, seed=1, size_bytes=SIZE_BYTES, log=messages.append)
    assert len(messages) == 1  # only the first call generated
    assert second.stats == first.stats
    assert first.path.with_name(first.path.name + ".json").stat().st_mtime_ns == marker_time


def test_half_built_corpus_is_never_taken_for_a_cached_one(tmp_path):
    corpus = ensure_corpus(tmp_path, seed=1, size_bytes=SIZE_BYTES, log=lambda _: None)
    corpus.path.with_name(corpus.path.name + ".json").unlink()  # as if the run died before the marker
    (corpus.path / "large" / "app.log").write_bytes(b"truncated")
    rebuilt = ensure_corpus(tmp_path, seed=1, size_bytes=SIZE_BYTES, log=lambda _: None)
    assert tree_digest(rebuilt.path, with_content=True)[0] == corpus.stats.content_digest


def test_content_digest_notices_one_flipped_byte_but_metadata_digest_does_not(tmp_path):
    corpus = ensure_corpus(tmp_path, seed=1, size_bytes=SIZE_BYTES, log=lambda _: None)
    metadata_before = tree_digest(corpus.path, with_content=False)[0]
    victim = corpus.path / "large" / "db.img"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    assert tree_digest(corpus.path, with_content=True)[0] != corpus.stats.content_digest
    assert tree_digest(corpus.path, with_content=False)[0] == metadata_before


@pytest.mark.parametrize(("text", "expected"), [
    ("1GiB", 1 << 30), ("4G", 4 << 30), ("100MiB", 100 << 20), ("512m", 512 << 20), ("12345", 12345),
])
def test_parse_size_reads_binary_units(text, expected):
    assert parse_size(text) == expected
    assert parse_size(size_label(expected)) == expected


def test_parse_size_refuses_nonsense():
    with pytest.raises(ValueError, match="100MiB"):
        parse_size("a lot")
