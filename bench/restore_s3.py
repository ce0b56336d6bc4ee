"""Restore from S3 (moto) against the same restore from local storage (issue 14, part 3).

    sudo .venv/bin/python -m bench.restore_s3 --size 1GiB --runs 3

One `ncbackup run` writes the files corpus (bench/corpus.py, cached in bench/work) to two storages in one pass:
a local folder and a moto S3 server in a child process (objects spooled to bench/work/moto-spool, so moto's
memory stays flat), parts of 100 MB. Then, run by run, interleaved: `ncbackup restore --storage LOCAL`,
`--storage S3` (parts downloaded 4 at a time, engine/prefetch.py) and `--storage S3` with one part at a time
(the restore before issue 14), each into a fresh loop-mounted ext4 image. Prints every run's wall time,
the largest process's peak RSS (wait4), and the S3-over-local ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_FOLDER = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_FOLDER.parent))

from bench.corpus import ensure_corpus, parse_size, size_label, warm_up  # noqa: E402
from bench.run import ensure_keys, wait_for_other_benchmarks  # noqa: E402
from bench.s3_case import _MOTO_SCRIPT, FAKE_KEY_ID, FAKE_SECRET, REGION, _free_port  # noqa: E402
from bench.scratch import scratch_filesystem  # noqa: E402

BUCKET = "bench-restore"
# The restore before issue 14: the same code with one part at a time.
SEQUENTIAL = ("import sys\nimport ncbackup.storage.s3 as s3\ns3.RESTORE_PARALLEL_PARTS = 1\n"
              "from ncbackup.cli import main\nsys.exit(main(sys.argv[1:]))")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, float]:
    """Run argv; (wall seconds, its peak RSS in bytes, its CPU seconds); fails loudly on a non-zero exit."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,  # noqa: S603 - argument list
                             env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode("utf-8", "replace") if child.stderr else ""
    if child.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:4])} ... exited {child.returncode}: {stderr.strip()[-500:]}")
    return wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work-folder", type=Path, default=BENCH_FOLDER / "work")
    parser.add_argument("--diagnose-arenas", action="store_true",
                        help="also restore from S3 with glibc's MALLOC_ARENA_MAX=1 (does peak RSS come from malloc arenas?)")
    arguments = parser.parse_args(argv)
    size_bytes = parse_size(arguments.size)
    lock = wait_for_other_benchmarks(arguments.work_folder)
    work = arguments.work_folder
    spool = work / "moto-spool"
    root = work / "restore-s3"
    moto = None
    try:
        corpus = ensure_corpus(work, seed=arguments.seed, size_bytes=size_bytes, log=log)
        keys = ensure_keys(work / "keys")
        shutil.rmtree(spool, ignore_errors=True)
        spool.mkdir(parents=True)
        port = _free_port()
        moto = subprocess.Popen(  # noqa: S603 - argument list
            [sys.executable, "-c", _MOTO_SCRIPT, str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(spool)},
        )
        if moto.stdout is None or moto.stdout.readline().strip() != b"ready":
            raise SystemExit("bench: the moto S3 server did not start (is moto[server] installed?)")
        endpoint = f"http://127.0.0.1:{port}"
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=FAKE_KEY_ID,
                     aws_secret_access_key=FAKE_SECRET).create_bucket(Bucket=BUCKET)
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        credentials = root / "s3-credentials"
        credentials.write_text(f"[default]\naws_access_key_id = {FAKE_KEY_ID}\naws_secret_access_key = {FAKE_SECRET}\n")
        credentials.chmod(0o600)
        config = root / "conf.json"
        config.write_text(json.dumps({
            "GENERAL": {"HOSTNAME": "bench", "WORK_FOLDER": str(root / "work"), "LOG_FOLDER": str(root / "log") + "/"},
            "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(corpus.path)}},
            "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {"LEVEL": "3"}},
            "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption",
                           "PARAMETERS": {"KEY_FILE": str(keys.recipients_file), "FILE_SIZE": "100"}},
            "LOCAL": {"ACTION": "execute", "NAME": "storage",
                      "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": {"LOCAL_BACKUP": str(root / "backups")}}},
            "S3": {"ACTION": "execute", "NAME": "storage",
                   "PARAMETERS": {"DESTINATION": "s3", "ARGS_DICT": {
                       "BUCKET": BUCKET, "ENDPOINT_URL": endpoint, "REGION": REGION,
                       "CREDENTIALS_FILE": str(credentials)}}},
        }, indent=2))
        (root / "log").mkdir()
        ncbackup = [sys.executable, "-m", "ncbackup.cli"]
        log(f"backup of the {size_label(size_bytes)} corpus to local and S3 (untimed)")
        subprocess.run([*ncbackup, "run", "-c", str(config)], check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        warm_up(corpus.path)
        variants = {
            "local": [*ncbackup, "restore", "-c", str(config), "--storage", "LOCAL"],
            "s3, 4 parts at once": [*ncbackup, "restore", "-c", str(config), "--storage", "S3"],
            "s3, one part at a time": [sys.executable, "-c", SEQUENTIAL, "restore", "-c", str(config), "--storage", "S3"],
        }
        if arguments.diagnose_arenas:
            variants["s3, 4 parts, MALLOC_ARENA_MAX=1"] = variants["s3, 4 parts at once"]
        results: dict[str, list[tuple[float, int, float]]] = {name: [] for name in variants}
        # CPU seconds of the restore itself and of the moto server while it ran: both share this machine's cores.
        cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        images = work / "images"
        images.mkdir(exist_ok=True)
        for run in range(arguments.runs):
            for name, argv in variants.items():
                with scratch_filesystem(images, "restore-s3", size_bytes=size_bytes * 2 + (1 << 30)) as mount:
                    load = os.getloadavg()[0]
                    env = {"MALLOC_ARENA_MAX": "1"} if "MALLOC_ARENA_MAX" in name else None
                    server_before = process_cpu_seconds(moto.pid)
                    wall, rss, own_cpu = timed([*argv, "--key-file", str(keys.identity_file), "--target", str(mount / "t")], env)
                    server_cpu = process_cpu_seconds(moto.pid) - server_before
                results[name].append((wall, rss, load))
                cpu[name].append((own_cpu, server_cpu))
                log(f"run {run + 1} {name}: {wall:.2f} s, peak RSS {rss / (1 << 20):.0f} MiB, load {load:.2f}, "
                    f"CPU {own_cpu:.2f} s + server {server_cpu:.2f} s")
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait(timeout=30)
        shutil.rmtree(spool, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        lock.close()
    print(f"\n#### restore from S3 (moto) vs local, {size_label(size_bytes)} corpus, parts of 100 MB, "
          f"{arguments.runs} runs, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC\n")
    print("| run | load | " + " | ".join(f"{name} s" for name in variants) + " | s3 / local | s3 one at a time / local |")
    print("|---|" + "---:|" * (len(variants) + 3))
    for run in range(arguments.runs):
        walls = [results[name][run][0] for name in variants]
        print(f"| {run + 1} | {results['local'][run][2]:.2f} | " + " | ".join(f"{w:.2f}" for w in walls)
              + f" | {walls[1] / walls[0]:.2f} | {walls[2] / walls[0]:.2f} |")
    medians = {name: statistics.median(w for w, _, _ in values) for name, values in results.items()}
    peaks = {name: max(r for _, r, _ in values) for name, values in results.items()}
    print("\n| restore | median s | peak RSS MiB (largest process) | median CPU s, restore | median CPU s, S3 server |"
          "\n|---|---:|---:|---:|---:|")
    for name in variants:
        print(f"| {name} | {medians[name]:.2f} | {peaks[name] / (1 << 20):.0f} | "
              f"{statistics.median(c for c, _ in cpu[name]):.2f} | {statistics.median(s for _, s in cpu[name]):.2f} |")
    print(f"\nS3 over local (medians): {medians['s3, 4 parts at once'] / medians['local']:.2f}x "
          f"(one part at a time: {medians['s3, one part at a time'] / medians['local']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
