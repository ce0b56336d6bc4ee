"""`ncbackup status --all-hosts` over a fake fleet on a local moto S3 server: 200 hosts x 30 sets by default.

    python3 bench/status_fleet.py [--hosts 200] [--sets 30]

Each set is a small signed manifest written with setformat.write_manifest (no parts: the status view reads
manifests only). moto runs in its own process, as an object store would. Prints the time and the number of S3
requests of the status read (in process, through the product's own functions), then the wall time of the CLI
(`ncbackup status --all-hosts --json`, a fresh process: imports and client set-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleet import write_fake_set  # noqa: E402
from bench.s3_case import _MOTO_SCRIPT, FAKE_KEY_ID, FAKE_SECRET, REGION, _free_port  # noqa: E402

BUCKET = "fleet"


def _config(folder: Path, endpoint_url: str, credentials: Path) -> Path:
    path = folder / "conf.json"
    path.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "host000", "WORK_FOLDER": str(folder / "work")},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption",
                       "PARAMETERS": {"KEY_FILE": str(folder / "key.txt"), "SIGNING_KEY": str(folder / "signing.key")}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "s3", "ARGS_DICT": {
            "BUCKET": BUCKET, "ENDPOINT_URL": endpoint_url, "REGION": REGION, "CREDENTIALS_FILE": str(credentials)}}},
    }))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--sets", type=int, default=30)
    args = parser.parse_args(argv)

    import boto3

    from ncbackup.commands.setselect import open_configured_storage, trust_for
    from ncbackup.config import load_config
    from ncbackup.signing import write_signing_key
    from ncbackup.stages.keys import write_identity_file
    from ncbackup.status.collect import every_host, fleet_status, workers_for
    from ncbackup.storage.retry import with_retries

    folder = Path(tempfile.mkdtemp(prefix="ncbackup-status-bench-"))
    credentials = folder / "credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {FAKE_KEY_ID}\naws_secret_access_key = {FAKE_SECRET}\n")
    credentials.chmod(0o600)
    write_identity_file(folder / "key.txt")
    signer = write_signing_key(folder / "signing.key")
    port = _free_port()
    moto = subprocess.Popen([sys.executable, "-c", _MOTO_SCRIPT, str(port)],  # noqa: S603 - argument list
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert moto.stdout is not None
        if moto.stdout.readline().strip() != b"ready":
            raise SystemExit("the moto S3 server did not start (is moto[server] installed?)")
        endpoint_url = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint_url, region_name=REGION, aws_access_key_id=FAKE_KEY_ID,
                     aws_secret_access_key=FAKE_SECRET).create_bucket(Bucket=BUCKET)
        config_path = _config(folder, endpoint_url, credentials)
        configured = open_configured_storage(config_path, None)
        base = configured.storage.inner  # type: ignore[attr-defined]
        now = datetime.now(timezone.utc).replace(microsecond=0)

        started = time.monotonic()
        def fill(number: int) -> None:
            host = f"host{number:03d}"
            storage = base._sibling(f"{host}/")
            for index in range(args.sets):
                write_fake_set(storage, signer, host=host, moment=now - timedelta(days=index, hours=number % 40),
                               size_bytes=1_000_000 + index * 1000 + number)
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(fill, range(args.hosts)))
        print(f"created {args.hosts} hosts x {args.sets} sets in {time.monotonic() - started:.1f} s")

        requests = 0
        lock = threading.Lock()
        def count(**_kwargs) -> None:
            nonlocal requests
            with lock:
                requests += 1
        base._client.meta.events.register("before-send.s3", count)
        config = load_config(config_path)
        trust = trust_for(config, [], allow_unsigned=False)
        started = time.monotonic()
        hosts = [(name, with_retries(storage, attempts=3)) for name, storage in every_host(configured.storage)]
        found = fleet_status(hosts, trust, now=now, alert_after_hours=config.general.alert_after_hours,
                             workers=workers_for(configured.storage))
        elapsed = time.monotonic() - started
        complete = sum(status.states.get("complete", 0) for status in found)
        print(f"status read (in process): {len(found)} hosts, {complete} complete sets, {elapsed:.1f} s, "
              f"{requests} S3 requests, {workers_for(configured.storage)} threads")

        started = time.monotonic()
        program = Path(sys.executable).with_name("ncbackup")
        cli = subprocess.run([str(program), "status", "-c", str(config_path), "--all-hosts", "--json"],  # noqa: S603
                             capture_output=True, text=True, env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"})
        wall = time.monotonic() - started
        hosts_seen = len(json.loads(cli.stdout)["hosts"]) if cli.stdout.strip() else 0
        print(f"ncbackup status --all-hosts --json (CLI): exit {cli.returncode}, {hosts_seen} hosts, {wall:.1f} s wall")
        if cli.returncode not in (0, 1) or hosts_seen != args.hosts:
            print(cli.stderr[-2000:], file=sys.stderr)
            return 1
    finally:
        moto.kill()
        moto.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
