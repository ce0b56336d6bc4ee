"""How long retention takes on S3 with thousands of sets (issue 10: a prune of 3,000 sets in under a minute).

    python3 -m bench.prune_s3 [--sets 3000] [--remove 2900]

Starts a moto S3 server in a child process (as the integration tests do), writes `--sets` small signed
sets (a part, manifest.json and its signature each, through ``setformat.write_manifest``, with set ids one
night apart going back ~8 years), then times, counting the HTTP requests each makes:

- ``list_sets`` as prune reads the storage (manifests read in parallel, ``read_workers``), and the same
  one set after the other (the reads before this issue), for comparison;
- the whole ``retention.prune.prune_storage`` with ``LAST`` = sets - `--remove`: one listing, every manifest
  read and verified (in parallel), the rule engine, an Object Lock query, then the `--remove` oldest sets
  removed, signature and manifest first, parts after (S3 DeleteObjects, 1000 keys a request).

Prints a Markdown table. The writing of the sets is setup, not timed.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from ncbackup.config.settings import GeneralSettings, SectionSettings  # noqa: E402
from ncbackup.setformat import Manifest, PartInfo, StreamInfo, list_sets, write_manifest  # noqa: E402
from ncbackup.signing import Trust, generate_key  # noqa: E402
from ncbackup.retention.policy import Policy  # noqa: E402
from ncbackup.retention.prune import prune_storage  # noqa: E402
from ncbackup.retention.rules import Rules  # noqa: E402
from ncbackup.storage.base import ObjectInfo, Storage  # noqa: E402
from ncbackup.storage.s3 import S3Storage  # noqa: E402
from tests.integration.servers.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, moto_in_a_child_process  # noqa: E402

BUCKET = "bench-prune"
FIRST_NIGHT = datetime(2018, 12, 1, 2, 30, tzinfo=timezone.utc)


class RequestCounter:
    """Counts the HTTP requests a botocore client sends, by operation."""

    def __init__(self, client: Any) -> None:
        self.by_operation: dict[str, int] = {}
        self._lock = threading.Lock()
        client.meta.events.register("before-send.s3", self._seen)

    def _seen(self, event_name: str, **_: Any) -> None:
        name = event_name.rsplit(".", 1)[-1]    # before-send.s3.GetObject
        with self._lock:
            self.by_operation[name] = self.by_operation.get(name, 0) + 1

    def take(self) -> dict[str, int]:
        with self._lock:
            counts, self.by_operation = self.by_operation, {}
        return counts


class OneAtATime:
    """The storage without its read_workers: list_sets reads one set after the other, as before this issue."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.name = inner.name

    def put(self, key: str, stream: BinaryIO) -> None:
        self.inner.put(key, stream)

    def get(self, key: str) -> BinaryIO:
        return self.inner.get(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


def make_storage(endpoint_url: str, work: Path) -> S3Storage:
    section = SectionSettings(name="STORAGE", action="execute", module="storage", parameters={
        "DESTINATION": "s3", "ARGS_DICT": {"BUCKET": BUCKET, "ENDPOINT_URL": endpoint_url, "REGION": "us-east-1"}})
    return S3Storage.from_section(section, GeneralSettings(hostname="web1", work_folder=work))


def a_set(set_id: str, started_at: datetime) -> tuple[Manifest, bytes]:
    import hashlib

    part = f"files {set_id}\n".encode() * 4
    stream = StreamInfo(name="files", kind="files", file_name="files.tar.zst.age", codec="zstd", cipher="age",
                        bytes_in=len(part) * 3, bytes_out=len(part),
                        parts=(PartInfo("files.tar.zst.age.000", len(part), hashlib.sha256(part).hexdigest()),))
    manifest = Manifest(host="web1", set_id=set_id, started_at=started_at,
                        finished_at=started_at + timedelta(minutes=7), streams=(stream,))
    return manifest, part


def write_sets(storage: S3Storage, count: int, signer: Any) -> list[str]:
    """count signed sets, one night apart, the newest last night; 16 writers (setup, not timed)."""
    nights = [FIRST_NIGHT + timedelta(days=index) for index in range(count)]
    ids = [night.strftime("%Y%m%dT%H%M%SZ") for night in nights]

    def write(index: int) -> None:
        manifest, part = a_set(ids[index], nights[index])
        storage.put(f"{ids[index]}/files.tar.zst.age.000", io.BytesIO(part))
        write_manifest(storage, manifest, signer)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(write, range(count)))
    return ids


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, result); the CPU seconds of this process (the client side) go to CPU_SECONDS."""
    start, cpu = time.perf_counter(), time.process_time()
    result = call()
    CPU_SECONDS.append(time.process_time() - cpu)
    return time.perf_counter() - start, result


CPU_SECONDS: list[float] = []


def require(condition: bool, problem: str) -> None:
    if not condition:
        raise SystemExit(f"prune_s3: {problem}")


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=int, default=3000)
    parser.add_argument("--remove", type=int, default=2900)
    parser.add_argument("--skip-sequential", action="store_true", help="do not time the one-at-a-time listing")
    args = parser.parse_args(argv)

    import tempfile

    os.environ.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                       "AWS_EC2_METADATA_DISABLED": "true"})
    signer = generate_key()
    trust = Trust(keys=(signer.public,))
    rows: list[tuple[str, float, float, dict[str, int]]] = []
    with moto_in_a_child_process() as server, tempfile.TemporaryDirectory(prefix="ncbackup-bench-") as work:
        server.client().create_bucket(Bucket=BUCKET)
        storage = make_storage(server.endpoint_url, Path(work))
        counter = RequestCounter(storage._client)
        seconds, ids = timed(lambda: write_sets(storage, args.sets, signer))
        print(f"setup: wrote {len(ids)} sets ({3 * len(ids)} objects) in {seconds:.1f} s", flush=True)
        counter.take()

        seconds, sets = timed(lambda: list_sets(storage, trust))
        require(len(sets) == args.sets and all(info.is_complete for info in sets), "not every set reads as complete")
        rows.append((f"list_sets, {args.sets} sets (parallel reads)", seconds, CPU_SECONDS[-1], counter.take()))
        if not args.skip_sequential:
            seconds, sequential = timed(lambda: list_sets(OneAtATime(storage), trust))
            require(sequential == sets, "the one-at-a-time listing differs from the parallel one")
            rows.append((f"list_sets, {args.sets} sets (one at a time, as before)", seconds, CPU_SECONDS[-1], counter.take()))

        keep = args.sets - args.remove
        policy = Policy(rules=Rules(last=keep))
        now = FIRST_NIGHT + timedelta(days=args.sets, hours=6)    # the morning after the newest set
        seconds, outcome = timed(lambda: prune_storage(storage, policy, trust, hostname="web1", now=now,
                                                       dry_run=False, may_remove_incomplete=True))
        require(not outcome.warnings, f"prune warned: {outcome.warnings[:3]}")
        require(len(outcome.removed) == args.remove, f"prune removed {len(outcome.removed)} sets, not {args.remove}")
        rows.append((f"prune_storage (LAST {keep}): read {args.sets} sets, removed {len(outcome.removed)} "
                     f"({3 * len(outcome.removed)} objects)", seconds, CPU_SECONDS[-1], counter.take()))
        remaining = {info.key.split("/", 1)[0] for info in storage.list()}
        counter.take()
        require(remaining == set(ids[-keep:]), "the wrong sets remain after the prune")

    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, moto {moto_version()} in a child process, "
          f"{os.cpu_count()} CPUs, load average {load_average()} at the end\n")
    print("| step | seconds | client CPU seconds | HTTP requests |")
    print("|---|---:|---:|---|")
    for label, seconds, cpu_seconds, counts in rows:
        detail = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
        print(f"| {label} | {seconds:.1f} | {cpu_seconds:.1f} | {sum(counts.values())} ({detail}) |")
    return 0


def moto_version() -> str:
    try:
        import moto
    except ImportError:
        return "?"
    return str(moto.__version__)


if __name__ == "__main__":
    raise SystemExit(main())
