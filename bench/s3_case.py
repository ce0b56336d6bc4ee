"""The S3 case (issue 5): the files corpus straight to a local moto S3 server, ncbackup vs the shell.

Baseline: ``tar | zstd -T0 -3 | age -r R | aws s3 cp - s3://bench-shell/...`` (the AWS CLI's streamed
multipart upload). ncbackup: FILESET -> COMPRESSION level 3 -> ENCRYPTION (recipient only, no split,
like the baseline's single object) -> STORAGE s3 on the same server. Both read the same corpus and
talk to the same moto server over HTTP on 127.0.0.1; credentials are fake and live in a credentials
file (CREDENTIALS_FILE for ncbackup, AWS_SHARED_CREDENTIALS_FILE for the CLI), never in argv.

moto runs in its own process (started by setup, stopped by teardown) and spools objects to a folder
of bench/work, so memory stays flat; each ncbackup measurement starts from an emptied bucket and
the shell overwrites one key, so that folder holds at most a couple of backups.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from bench.case import BenchCase, BenchContext, Peer, RunDirs
from bench.files_case import FilesCase
from bench.measure import Pipeline

REGION = "us-east-1"
SHELL_BUCKET, NCBACKUP_BUCKET = "bench-shell", "bench-ncbackup"
SHELL_KEY = "shell/files.tar.zst.age"
FAKE_KEY_ID, FAKE_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

_MOTO_SCRIPT = """
import sys, time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class S3Case(FilesCase):
    name = "s3"
    shell_restore_label = "shell: aws s3 cp s3://... - | age -d | zstd -d | tar -x"

    def __init__(self) -> None:
        super().__init__()
        self.endpoint_url = ""
        self.credentials_file: Path | None = None
        self.moto: subprocess.Popen | None = None
        self.spool: Path | None = None

    def setup(self, context: BenchContext) -> dict:
        facts = super().setup(context)
        self.credentials_file = context.work_folder / "s3-credentials"
        self.credentials_file.write_text(
            f"[default]\naws_access_key_id = {FAKE_KEY_ID}\naws_secret_access_key = {FAKE_SECRET}\n"
        )
        self.credentials_file.chmod(0o600)
        self.spool = context.work_folder / "moto-spool"
        shutil.rmtree(self.spool, ignore_errors=True)
        self.spool.mkdir(parents=True)
        port = _free_port()
        self.moto = subprocess.Popen(  # noqa: S603 - argument list
            [sys.executable, "-c", _MOTO_SCRIPT, str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(self.spool)},
        )
        try:
            if self.moto.stdout.readline().strip() != b"ready":
                raise RuntimeError("the moto S3 server did not start (is moto[server] installed?)")
            self.endpoint_url = f"http://127.0.0.1:{port}"
            client = self._client()
            for bucket in (SHELL_BUCKET, NCBACKUP_BUCKET):
                client.create_bucket(Bucket=bucket)
        except BaseException:
            self.teardown()
            raise
        import moto

        return {**facts, "s3_server": f"moto {moto.__version__} (ThreadedMotoServer) at {self.endpoint_url}"}

    def _client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=FAKE_KEY_ID, aws_secret_access_key=FAKE_SECRET)

    def _aws_env(self) -> dict[str, str]:
        return {"AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file), "AWS_CONFIG_FILE": os.devnull,
                "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}

    def _aws(self, *arguments: str) -> list[str]:
        return ["aws", "--endpoint-url", self.endpoint_url, "--region", REGION, *arguments]

    def shell_backups(self, dirs: RunDirs) -> dict[str, Pipeline]:
        upload = self._aws("s3", "cp", "--only-show-errors", "-", f"s3://{SHELL_BUCKET}/{SHELL_KEY}")
        return {
            "shell: tar | zstd -T0 -3 | age | aws s3 cp -": Pipeline(self._tar_zstd_age() + [upload], env=self._aws_env()),
        }

    def shell_restore(self, dirs: RunDirs) -> Pipeline | None:
        return Pipeline([
            self._aws("s3", "cp", "--only-show-errors", f"s3://{SHELL_BUCKET}/{SHELL_KEY}", "-"),
            ["age", "-d", "-i", str(self.context.keys.identity_file)],
            ["zstd", "-d", "-q", "-c"],
            ["tar", "-x", "-C", str(dirs.restore_target)],
        ], env=self._aws_env())

    def ncbackup_sections(self, dirs: RunDirs) -> dict[str, dict]:
        if dirs.root.exists() and self.endpoint_url:
            self._empty_bucket(NCBACKUP_BUCKET)  # keep the server's spool to one set
        sections = super().ncbackup_sections(dirs)
        sections["ENCRYPTION"]["PARAMETERS"]["FILE_SIZE"] = "0"   # one object, like the baseline
        sections["STORAGE"] = {
            "ACTION": "execute", "NAME": "storage",
            "PARAMETERS": {"DESTINATION": "s3", "ARGS_DICT": repr({
                "BUCKET": NCBACKUP_BUCKET, "ENDPOINT_URL": self.endpoint_url, "REGION": REGION,
                "CREDENTIALS_FILE": str(self.credentials_file),
            })},
        }
        return sections

    def _empty_bucket(self, bucket: str) -> None:
        client = self._client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])

    def ncbackup_output_folder(self, dirs: RunDirs) -> Path | None:
        return None  # the set is on the S3 server

    def peers(self, dirs: RunDirs) -> dict[str, Peer]:
        return {}

    def scratch_size_bytes(self) -> int:
        return 2 * self.context.size_bytes + (1 << 30)   # a restore, and staging that must stay empty

    def teardown(self) -> None:
        if self.moto is not None:
            self.moto.terminate()
            try:
                self.moto.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.moto.kill()
                self.moto.wait()
            self.moto = None
        if self.spool is not None:
            shutil.rmtree(self.spool, ignore_errors=True)


def make_case() -> BenchCase:
    return S3Case()

