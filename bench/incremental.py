"""Incremental file backups against restic on the same tree (issue 15), medians of several runs.

    sudo .venv/bin/python -m bench.incremental --size 1GiB --runs 3
    sudo .venv/bin/python -m bench.incremental --small-files 200000 --runs 3

The tree is a copy of the bench corpus (bench/corpus.py) on a fresh loop-mounted ext4 image (or, with
--small-files N, N files of ~40 bytes in 200 folders), so changes never touch the cached corpus. Both tools
back it up once untimed (ncbackup: a full set; restic: the first snapshot), then run by run, interleaved:

1. no change: `ncbackup run` (an incremental set) and `restic backup`: wall time, CPU, peak RSS, stored bytes;
2. 1 % of the files rewritten (same sizes, new bytes): the same, with the bytes changed;
3. (files corpus only) restore of the newest set of a chain of 7 (a full + 6 incrementals, 5 % churn each)
   against the restore of one full set of the same final tree, each into a fresh ext4 image.

Stored bytes: ncbackup's new set folder; restic's repository growth. Prints one table per figure with every run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_FOLDER = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_FOLDER.parent))

from bench.corpus import ensure_corpus, parse_size, size_label, warm_up  # noqa: E402
from bench.restore_s3 import timed  # noqa: E402
from bench.run import ensure_keys, tree_bytes, wait_for_other_benchmarks  # noqa: E402
from bench.scratch import scratch_filesystem  # noqa: E402

HOST = "bench"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_small_files(root: Path, count: int, *, seed: int) -> None:
    rng = random.Random(seed)
    for folder in range(200):
        (root / f"d{folder:03d}").mkdir(parents=True)
    for number in range(count):
        (root / f"d{number % 200:03d}" / f"f{number:07d}.txt").write_bytes(rng.randbytes(20).hex().encode())


def regular_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def churn(files: list[Path], fraction: float, rng: random.Random) -> int:
    """Rewrite fraction of files with new bytes of the same size; the bytes changed."""
    changed = 0
    for path in rng.sample(files, max(1, int(len(files) * fraction))):
        size = path.stat().st_size
        with path.open("wb") as handle:    # in pieces: a child's peak RSS (wait4) counts this process's at fork
            for start in range(0, size, 1 << 20):
                handle.write(rng.randbytes(min(1 << 20, size - start)))
        changed += size
    return changed


class Tools:
    """ncbackup (one config per storage folder) and restic (one repository) over one tree."""

    def __init__(self, root: Path, tree: Path, keys, *, incremental: bool = True, name: str = "nc") -> None:
        self.root = root
        self.tree = tree
        self.keys = keys
        self.backups = root / f"{name}-backups"
        self.config = root / f"{name}-conf.json"
        (root / f"{name}-log").mkdir(parents=True, exist_ok=True)
        self.config.write_text(json.dumps({
            "GENERAL": {"HOSTNAME": HOST, "WORK_FOLDER": str(root / f"{name}-work"),
                        "LOG_FOLDER": str(root / f"{name}-log") + "/", "STATE_FOLDER": str(root / f"{name}-state")},
            "FILESET": {"ACTION": "execute", "NAME": "filesbackup",
                        "PARAMETERS": {"FILESET_INCLUDE": str(tree), "INCREMENTAL": "true" if incremental else "false",
                                       "MAX_CHAIN": "100"}},
            "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {"LEVEL": "3"}},
            "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption",
                           "PARAMETERS": {"KEY_FILE": str(keys.recipients_file), "FILE_SIZE": "100"}},
            "STORAGE": {"ACTION": "execute", "NAME": "storage",
                        "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": {"LOCAL_BACKUP": str(self.backups)}}},
        }, indent=2))
        self.repository = root / f"{name}-restic"
        self.restic_env = {"RESTIC_PASSWORD_FILE": str(keys.password_file), "RESTIC_CACHE_DIR": str(root / f"{name}-restic-cache")}

    def sets(self) -> list[Path]:
        folder = self.backups / HOST
        return sorted(path for path in folder.iterdir() if path.is_dir()) if folder.exists() else []

    def ncbackup(self) -> dict:
        before = {path.name for path in self.sets()}
        wall, rss, cpu = timed([sys.executable, "-m", "ncbackup.cli", "run", "-c", str(self.config)])
        new = [path for path in self.sets() if path.name not in before]
        stored = sum(tree_bytes(path) or 0 for path in new)
        return {"wall": wall, "rss": rss, "cpu": cpu, "stored": stored, "set": new[-1].name if new else None}

    def restic_init(self) -> None:
        subprocess.run(["restic", "-r", str(self.repository), "init", "--repository-version", "2"], check=True,  # noqa: S603, S607
                       stdout=subprocess.DEVNULL, env={**os.environ, **self.restic_env})

    def restic(self) -> dict:
        before = tree_bytes(self.repository) or 0
        wall, rss, cpu = timed(["restic", "-r", str(self.repository), "backup", "--quiet", str(self.tree)], self.restic_env)
        return {"wall": wall, "rss": rss, "cpu": cpu, "stored": (tree_bytes(self.repository) or 0) - before}

    def restore(self, set_id: str, target: Path) -> dict:
        wall, rss, cpu = timed([sys.executable, "-m", "ncbackup.cli", "restore", "-c", str(self.config), "--set", set_id,
                                "--key-file", str(self.keys.identity_file), "--target", str(target)])
        return {"wall": wall, "rss": rss, "cpu": cpu}


def _table(title: str, rows: dict[str, list[dict]], extra: str = "") -> None:
    print(f"\n#### {title}\n")
    names = list(rows)
    print("| run | " + " | ".join(f"{name} s | {name} stored | {name} RSS MiB" for name in names) + " |")
    print("|---|" + "---:|" * (3 * len(names)))
    for run in range(len(rows[names[0]])):
        cells = []
        for name in names:
            row = rows[name][run]
            cells += [f"{row['wall']:.2f}", f"{row.get('stored', 0) / (1 << 20):.2f} MiB", f"{row['rss'] / (1 << 20):.0f}"]
        print(f"| {run + 1} | " + " | ".join(cells) + " |")
    medians = {name: statistics.median(row["wall"] for row in values) for name, values in rows.items()}
    print("\nmedians: " + ", ".join(f"{name} {value:.2f} s" for name, value in medians.items()))
    if len(names) == 2:
        print(f"ratio {names[0]} / {names[1]}: {medians[names[0]] / medians[names[1]]:.2f}{extra}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--small-files", type=int, default=0, help="use N files of ~40 bytes in 200 folders instead")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-chain", action="store_true", help="skip the chain-of-7 restore figure")
    parser.add_argument("--work-folder", type=Path, default=BENCH_FOLDER / "work")
    arguments = parser.parse_args(argv)
    lock = wait_for_other_benchmarks(arguments.work_folder)
    work = arguments.work_folder
    keys = ensure_keys(work / "keys")
    images = work / "images"
    rng = random.Random(arguments.seed)
    try:
        if arguments.small_files:
            label, image_bytes = f"{arguments.small_files} small files", 4 << 30
            corpus_path = None
        else:
            size_bytes = parse_size(arguments.size)
            corpus = ensure_corpus(work, seed=arguments.seed, size_bytes=size_bytes, log=log)
            label, image_bytes, corpus_path = f"{size_label(size_bytes)} corpus", size_bytes * 4 + (2 << 30), corpus.path
        with scratch_filesystem(images, "incremental", size_bytes=image_bytes) as mount:
            tree = mount / "tree"
            if corpus_path is None:
                make_small_files(tree, arguments.small_files, seed=arguments.seed)
            else:
                shutil.copytree(corpus_path, tree, symlinks=True)
            warm_up(tree)
            files = regular_files(tree)
            tools = Tools(mount, tree, keys)
            tools.restic_init()
            log(f"{label}: {len(files)} files; first backups (untimed)")
            tools.ncbackup()
            tools.restic()
            nochange: dict[str, list[dict]] = {"ncbackup incremental": [], "restic": []}
            changed: dict[str, list[dict]] = {"ncbackup incremental": [], "restic": []}
            changed_bytes = []
            for run in range(arguments.runs):
                order = [("ncbackup incremental", tools.ncbackup), ("restic", tools.restic)]
                for name, action in order if run % 2 == 0 else reversed(order):
                    nochange[name].append(action())
                    log(f"run {run + 1} no change, {name}: {nochange[name][-1]}")
                changed_bytes.append(churn(files, 0.01, rng))
                for name, action in order if run % 2 == 0 else reversed(order):
                    changed[name].append(action())
                    log(f"run {run + 1} 1 % changed, {name}: {changed[name][-1]}")
            _table(f"no-change backup, {label}, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC", nochange)
            _table(f"1 % of files rewritten, {label} (changed bytes per run: "
                   + ", ".join(f"{value / (1 << 20):.1f} MiB" for value in changed_bytes) + ")", changed)
            ratio = (statistics.median(row["wall"] for row in changed["ncbackup incremental"])
                     / statistics.median(row["wall"] for row in nochange["ncbackup incremental"]))
            print(f"ncbackup: 1 % changed / no change (medians): {ratio:.2f}")
            if corpus_path is not None and not arguments.no_chain:
                chain_figure(mount, tree, files, keys, rng, images, size_bytes=image_bytes, runs=arguments.runs)
    finally:
        lock.close()
    return 0


def chain_figure(mount: Path, tree: Path, files: list[Path], keys, rng: random.Random, images: Path, *,
                 size_bytes: int, runs: int) -> None:
    """Restore of the newest of a chain of 7 (5 % churn each) vs one full set of the same tree."""
    chain = Tools(mount, tree, keys, name="chain")
    full = Tools(mount, tree, keys, incremental=False, name="full")
    newest = chain.ncbackup()["set"]
    for _ in range(6):
        churn(files, 0.05, rng)
        newest = chain.ncbackup()["set"]
    single = full.ncbackup()["set"]
    rows: dict[str, list[dict]] = {"newest of a chain of 7": [], "one full set": []}
    for run in range(runs):
        for name, tools, set_id in (("newest of a chain of 7", chain, newest), ("one full set", full, single)):
            with scratch_filesystem(images, "incremental-restore", size_bytes=size_bytes // 2) as target:
                rows[name].append(tools.restore(set_id, target / "t"))
            log(f"run {run + 1} restore {name}: {rows[name][-1]}")
    _table(f"restore, newest set of a chain of 7 (5 % churn each) vs one full set, "
           f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC", rows)


if __name__ == "__main__":
    sys.exit(main())
