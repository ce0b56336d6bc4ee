"""Selective restore (issue 14 part 2): one ~1 MB file restored from a set of the 4 GiB corpus, locally and from moto S3.

    python3 bench/selective.py --size 4GiB --runs 3        # ~2 min of backup on 2 cores, then the restores

Backs the corpus up once with `ncbackup run` (default COMPRESSION: seekable zstd level 3, age, FILE_SIZE 100),
copies the set's objects into a local moto S3 server (its own process, spooling to the work folder), then
times `ncbackup restore --latest --path <the file> --target <empty dir>` against the local folder and against
S3, run after run, and reads back what each restore printed: stored bytes read against the set's size. Every
restored file is compared with the corpus byte for byte. Timings are wall time of the whole CLI process, and its CPU (user + system).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import ensure_corpus, parse_size
from bench.ncbackup_cli import ncbackup_command
from bench.s3_case import _MOTO_SCRIPT, FAKE_KEY_ID, FAKE_SECRET, REGION, _free_port

HOST = "bench"
BUCKET = "bench-selective"
READ_LINE = re.compile(r"read (\d+) of the set's (\d+) bytes \((\d+) of (\d+) frames\)")


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600, **kwargs)  # noqa: S603


def _config(path: Path, work: Path, corpus: Path, key: Path, storage: dict) -> Path:
    path.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": HOST, "WORK_FOLDER": str(work / "wf"), "LOG_FOLDER": str(work / "log" / "ncbackup.log")},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(corpus)}},
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {"LEVEL": 3}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key), "FILE_SIZE": "100"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": storage},
    }, indent=2))
    return path


def _one_megabyte_file(corpus: Path) -> Path:
    candidates = sorted((abs(path.stat().st_size - 1_000_000), str(path)) for path in corpus.rglob("*")
                        if path.is_file() and not path.is_symlink() and 900_000 <= path.stat().st_size <= 1_200_000)
    if not candidates:
        raise SystemExit("the corpus has no file of about 1 MB")
    return Path(candidates[0][1])


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _restore(command: list[str], config: Path, member: str, source: Path, target: Path) -> tuple[float, float, int, int, int, int]:
    shutil.rmtree(target, ignore_errors=True)
    started, cpu_before = time.perf_counter(), _children_cpu_seconds()
    done = _run([*command, "restore", "-c", str(config), "--latest", "--path", member, "--target", str(target)])
    seconds, cpu = time.perf_counter() - started, _children_cpu_seconds() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"restore failed: {done.stdout}{done.stderr}")
    if (target / member).read_bytes() != source.read_bytes():
        raise SystemExit("the restored file differs from the corpus")
    said = READ_LINE.search(done.stdout)
    if said is None:
        raise SystemExit(f"the restore did not say what it read (not a seekable set?): {done.stdout}")
    read, total, frames, all_frames = (int(value) for value in said.groups())
    return seconds, cpu, read, total, frames, all_frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="4GiB")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--corpus-folder", type=Path, default=Path(__file__).resolve().parent / "work")
    parser.add_argument("--work-folder", type=Path, default=Path(__file__).resolve().parent / "work" / "selective")
    args = parser.parse_args(argv)
    command = ncbackup_command()
    corpus = ensure_corpus(args.corpus_folder, seed=args.seed, size_bytes=parse_size(args.size)).path
    work = args.work_folder
    shutil.rmtree(work, ignore_errors=True)
    (work / "log").mkdir(parents=True)
    key = work / "identity.txt"
    made = _run([*command, "keygen", "--output", str(key), "--signing-key", str(work / "signing.key")])
    if made.returncode != 0:
        raise SystemExit(made.stderr)
    local = work / "backups"
    local_storage = {"DESTINATION": "local", "ARGS_DICT": repr({"LOCAL_BACKUP": str(local)})}
    local_config = _config(work / "local.json", work, corpus, key, local_storage)
    print(f"load before the backup: {os.getloadavg()[0]:.2f}", flush=True)
    started = time.perf_counter()
    ran = _run([*command, "run", "-c", str(local_config)])
    if ran.returncode != 0:
        raise SystemExit(ran.stdout + ran.stderr)
    print(f"backup of {args.size}: {time.perf_counter() - started:.1f} s", flush=True)
    (set_folder,) = list((local / HOST).iterdir())
    source = _one_megabyte_file(corpus)
    member = str(source).lstrip("/")

    credentials = work / "s3-credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {FAKE_KEY_ID}\naws_secret_access_key = {FAKE_SECRET}\n")
    credentials.chmod(0o600)
    (work / "moto-spool").mkdir()
    port = _free_port()
    moto = subprocess.Popen([sys.executable, "-c", _MOTO_SCRIPT, str(port)], stdout=subprocess.PIPE,  # noqa: S603
                            stderr=subprocess.DEVNULL, env={**os.environ, "TMPDIR": str(work / "moto-spool")})
    try:
        if moto.stdout is None or moto.stdout.readline().strip() != b"ready":
            raise SystemExit("the moto S3 server did not start")
        endpoint = f"http://127.0.0.1:{port}"
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=FAKE_KEY_ID,
                              aws_secret_access_key=FAKE_SECRET)
        client.create_bucket(Bucket=BUCKET)
        for path in sorted(set_folder.iterdir()):
            client.upload_file(str(path), BUCKET, f"{HOST}/{set_folder.name}/{path.name}")
        s3_config = _config(work / "s3.json", work, corpus, key, {"DESTINATION": "s3", "ARGS_DICT": repr({
            "BUCKET": BUCKET, "ENDPOINT_URL": endpoint, "REGION": REGION, "CREDENTIALS_FILE": str(credentials)})})
        results: dict[str, list[tuple[float, float, int, int, int, int]]] = {"local": [], "moto S3": []}
        loads = []
        for _ in range(args.runs):
            loads.append(os.getloadavg()[0])
            results["local"].append(_restore(command, local_config, member, source, work / "target"))
            results["moto S3"].append(_restore(command, s3_config, member, source, work / "target"))
    finally:
        moto.terminate()
        moto.wait(timeout=30)
    part_bytes = max(path.stat().st_size for path in set_folder.glob("files.tar.zst.age.*"))
    print(f"\none file of {source.stat().st_size} bytes ({member}) from a {args.size} set, {args.runs} runs, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {min(loads):.2f}-{max(loads):.2f}\n")
    print("| storage | runs s | median s | median CPU s | bytes read | set bytes | read / set | frames read | parts of 100 MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for storage, runs in results.items():
        seconds = [run[0] for run in runs]
        cpu = statistics.median(run[1] for run in runs)
        _, _, read, total, frames, all_frames = runs[0]
        print(f"| {storage} | {', '.join(f'{s:.2f}' for s in seconds)} | {statistics.median(seconds):.2f} | {cpu:.2f} | {read:,} | {total:,} "
              f"| {100 * read / total:.3f} % | {frames} of {all_frames} | {read / part_bytes:.3f} |")
    shutil.rmtree(work / "moto-spool", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
