"""A deterministic benchmark corpus: the same seed and size always give the same bytes, names and times.

Mix (for a corpus of S bytes): ~20k small files (S >= 1 GiB; proportionally fewer below) in nested
folders, 70 % text and 30 % binary; the rest of S is half compressible text (log-like lines) and half
incompressible random bytes, 60 % of it in four large files and 40 % in 1-8 MiB files. A few
symlinks and empty folders too. The corpus is cached under its seed and size and reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

GENERATOR_VERSION = 2
GIB = 1 << 30
MIB = 1 << 20
SMALL_FILES_PER_GIB = 20_000
SMALL_FILES_MAX = 20_000
WRITE_CHUNK_BYTES = 1 * MIB
BASE_MTIME_SECONDS = 1_700_000_000
MARKER_SUFFIX = ".json"  # <corpus>.json, written last next to the folder: it means "complete"

_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """'1GiB', '100MiB', '512M', '4G', '1000000' -> bytes (binary units: 1G = 1 GiB)."""
    match = _SIZE_PATTERN.match(text)
    if not match:
        raise ValueError(f"size {text!r} is not understood; write it like 100MiB, 1GiB or 4GiB")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "").upper()[:1]])


def size_label(size_bytes: int) -> str:
    """Bytes -> '1GiB' / '100MiB' / '12345B' (the shortest exact binary unit)."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    return f"{size_bytes}B"


@dataclass(frozen=True)
class CorpusStats:
    seed: int
    size_bytes: int
    generator_version: int
    files: int
    small_files: int
    symlinks: int
    empty_dirs: int
    text_bytes: int
    binary_bytes: int
    content_digest: str     # tree_digest(..., with_content=True) of the corpus folder
    generated_seconds: float = 0.0


@dataclass(frozen=True)
class Corpus:
    path: Path
    stats: CorpusStats


def ensure_corpus(cache_folder: Path, *, seed: int, size_bytes: int, log=print) -> Corpus:
    """Return the cached corpus for (seed, size_bytes), generating it first if it is missing or stale."""
    path = cache_folder / f"corpus-seed{seed}-{size_label(size_bytes)}"
    marker = path.with_name(path.name + MARKER_SUFFIX)
    if marker.exists():
        stats = CorpusStats(**json.loads(marker.read_text()))
        if stats.generator_version == GENERATOR_VERSION:
            return Corpus(path, stats)
    if path.exists():
        shutil.rmtree(path)
    building = path.with_name(path.name + ".building")
    if building.exists():
        shutil.rmtree(building)
    log(f"generating corpus {path.name} (seed {seed}, {size_label(size_bytes)}); cached for later runs")
    started = time.perf_counter()
    counts = _generate(building, seed=seed, size_bytes=size_bytes)
    digest, _, _ = tree_digest(building, with_content=True)
    stats = CorpusStats(
        seed=seed, size_bytes=size_bytes, generator_version=GENERATOR_VERSION,
        content_digest=digest, generated_seconds=round(time.perf_counter() - started, 1), **counts,
    )
    building.rename(path)
    marker.write_text(json.dumps(asdict(stats), indent=2))
    return Corpus(path, stats)


def warm_up(folder: Path) -> tuple[int, float]:
    """Read every file once (so page-cache state is the same for every tool); return (bytes, seconds)."""
    started = time.perf_counter()
    buffer = bytearray(WRITE_CHUNK_BYTES)
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            full = os.path.join(root, name)
            if os.path.islink(full):
                continue
            with open(full, "rb", buffering=0) as handle:
                while count := handle.readinto(buffer):
                    total += count
    return total, time.perf_counter() - started


def tree_digest(folder: Path, *, with_content: bool) -> tuple[str, int, int]:
    """Digest of a tree's relative paths, kinds, sizes, symlink targets and modes (+ bytes); (hex, files, bytes).

    Two trees with the same digest hold the same names and, with_content, the same bytes: the
    benchmark's check that a restore really restored the corpus.
    """
    digest = hashlib.sha256()
    files = total_bytes = 0
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        relative_root = os.path.relpath(root, folder)
        entries = sorted(names) + [d for d in dirs if os.path.islink(os.path.join(root, d))]
        digest.update(f"D {relative_root} {sorted(dirs)!r}\n".encode("utf-8", "surrogateescape"))
        for name in sorted(entries):
            full = os.path.join(root, name)
            relative = os.path.join(relative_root, name)
            info = os.lstat(full)
            if os.path.islink(full):
                digest.update(f"L {relative} {os.readlink(full)}\n".encode("utf-8", "surrogateescape"))
                continue
            digest.update(f"F {relative} {info.st_size} {info.st_mode & 0o7777:o}\n".encode("utf-8", "surrogateescape"))
            files += 1
            total_bytes += info.st_size
            if with_content:
                digest.update(_file_sha256(full))
    return digest.hexdigest(), files, total_bytes


def _file_sha256(path: str) -> bytes:
    file_hash = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(WRITE_CHUNK_BYTES):
            file_hash.update(chunk)
    return file_hash.digest()


# --- generation ---------------------------------------------------------------------------------


class _TextSource:
    """Log-like text from a seeded pool of lines: compresses about like real logs and configs."""

    POOL_LINES = 50_000
    VOCABULARY_WORDS = 4_000

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        letters = "abcdefghijklmnopqrstuvwxyz"
        words = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(self.VOCABULARY_WORDS)]
        cumulative, total = [], 0.0
        for rank in range(len(words)):
            total += 1 / (rank + 1)  # Zipf-like word frequencies, as in natural text
            cumulative.append(total)
        levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
        self.lines = []
        for _ in range(self.POOL_LINES):
            message = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(4, 14)))
            self.lines.append(
                (
                    f"2026-11-{rng.randint(1, 30):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
                    f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z srv-{rng.randint(1, 40):02d} "
                    f"{rng.choice(levels)} [{rng.choice(words)}] {message} id={rng.getrandbits(48):012x}\n"
                ).encode()
            )

    def chunk(self, size_bytes: int) -> bytes:
        """About size_bytes of text, cut to exactly size_bytes."""
        average = 100
        parts, produced = [], 0
        while produced < size_bytes:
            lines = self.rng.choices(self.lines, k=max(1, (size_bytes - produced) // average + 1))
            block = b"".join(lines)
            parts.append(block)
            produced += len(block)
        return b"".join(parts)[:size_bytes]


def _write_file(path: Path, size_bytes: int, *, is_text: bool, text: _TextSource, rng: random.Random) -> None:
    with open(path, "wb") as handle:
        remaining = size_bytes
        while remaining > 0:
            step = min(remaining, WRITE_CHUNK_BYTES)
            handle.write(text.chunk(step) if is_text else rng.randbytes(step))
            remaining -= step


def _generate(root: Path, *, seed: int, size_bytes: int) -> dict[str, int]:
    rng = random.Random(seed)
    text = _TextSource(rng)
    root.mkdir(parents=True)
    written: list[Path] = []
    text_bytes = binary_bytes = 0

    def add(path: Path, size: int, is_text: bool) -> None:
        nonlocal text_bytes, binary_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_file(path, size, is_text=is_text, text=text, rng=rng)
        written.append(path)
        if is_text:
            text_bytes += size
        else:
            binary_bytes += size

    # ~20k small files (0-16 KiB, most around 1-4 KiB) in three levels of folders, like /etc or a web root.
    small_count = min(SMALL_FILES_MAX, max(1, round(SMALL_FILES_PER_GIB * size_bytes / GIB)))
    small_budget = size_bytes // 4  # tiny corpora: never let small files eat everything
    small_total = 0
    small_written = 0
    for index in range(small_count):
        size = min(16 * 1024, int(rng.lognormvariate(7.6, 1.0)))
        if small_total + size > small_budget:
            break
        is_text = rng.random() < 0.7
        extension = rng.choice([".conf", ".txt", ".php", ".json"]) if is_text else rng.choice([".png", ".gz", ".bin"])
        folder = root / "small" / f"d{index // 1000:02d}" / f"e{(index // 100) % 10}"  # 100 files per folder
        add(folder / f"file{index:05d}{extension}", size, is_text)
        small_total += size
        small_written += 1

    remaining = size_bytes - small_total
    large_share = remaining * 60 // 100
    large_names = [("app.log", True), ("media.tar", False), ("access.log", True), ("db.img", False)]
    for name, is_text in large_names:
        add(root / "large" / name, large_share // len(large_names), is_text)
    medium_budget = remaining - (large_share // len(large_names)) * len(large_names)
    index = 0
    medium_text = medium_binary = 0
    while medium_budget > 0:
        size = min(medium_budget, rng.randint(1 * MIB, 8 * MIB))
        is_text = medium_text <= medium_binary  # balance by bytes, so even tiny corpora stay half text
        if is_text:
            medium_text += size
        else:
            medium_binary += size
        add(root / "medium" / f"m{index // 50:02d}" / (f"report{index:04d}.log" if is_text else f"blob{index:04d}.dat"), size, is_text)
        medium_budget -= size
        index += 1

    # A few non-regular entries every backup tool must carry: symlinks (one dangling) and empty folders.
    links = root / "links"
    links.mkdir()
    (links / "to-large-log").symlink_to("../large/app.log")
    (links / "to-small").symlink_to("../small")
    (links / "dangling").symlink_to("../does-not-exist")
    empty_dirs = 0
    for name in ("empty/a", "empty/b/c", "cache/tmp"):
        (root / name).mkdir(parents=True)
        empty_dirs += 1

    # Fixed modes and mtimes: the tar stream, hence every compressed size, is the same on every run.
    for number, path in enumerate(written):
        os.chmod(path, 0o600 if number % 17 == 0 else 0o644)
        os.utime(path, (BASE_MTIME_SECONDS + number, BASE_MTIME_SECONDS + number))
    return {
        "files": len(written), "small_files": small_written, "symlinks": 3, "empty_dirs": empty_dirs,
        "text_bytes": text_bytes, "binary_bytes": binary_bytes,
    }
