"""Every config in examples/ passes ``ncbackup check``: the local ones as shipped (their /tmp folders moved
into tmp_path), seed-full.json once only its placeholders point at a real MariaDB and a real S3 (moto)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.servers.mariadb import MariaDB, remove_socket_folder, start_mariadb
from tests.integration.servers.s3 import (  # noqa: F401 - moto_server is a fixture
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    moto_server,
    write_credentials_file,
)
from tests.support import REPO, need_binary

EXAMPLES = REPO / "examples"
PROCESS_TIMEOUT_SECONDS = 120


def check(ncbackup_cmd: list[str], config: Path, *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*ncbackup_cmd, "check", "-c", str(config)], capture_output=True, text=True, cwd=cwd,
                          timeout=PROCESS_TIMEOUT_SECONDS, env={**os.environ, **(env or {})})


def relocated(example: str, old_root: str, new_root: Path) -> dict:
    """The example with every path under its /tmp root moved below new_root; nothing else changed."""
    text = (EXAMPLES / example).read_text()
    assert old_root in text, f"{example} no longer uses {old_root}"
    return json.loads(text.replace(old_root, str(new_root)))


def assert_passes(completed: subprocess.CompletedProcess, steps: list[str]) -> None:
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "check: all checks passed" in completed.stdout, output
    assert not [line for line in completed.stdout.splitlines() if line.strip().startswith("FAIL")], output
    lines = completed.stdout.splitlines()
    for step in steps:
        assert any(line.startswith(step) for line in lines), f"missing step line {step!r} in:\n{output}"


def test_every_example_explains_what_to_change():
    for path in sorted(EXAMPLES.glob("*.json")):
        note = json.loads(path.read_text()).get("__README", "")
        assert "change" in note, f"{path.name} has no __README saying what to change"


def test_minimal_local_example_passes_check(tmp_path, ncbackup_cmd):
    config = relocated("minimal-local.json", "/tmp/ncbackup-example", tmp_path / "example")
    path = tmp_path / "minimal-local.json"
    path.write_text(json.dumps(config))
    assert_passes(check(ncbackup_cmd, path, cwd=tmp_path), ["1. FILESET+ENCRYPTION+STORAGE [backup-set]"])


def test_external_script_example_passes_check(tmp_path, ncbackup_cmd):
    need_binary("bash")
    config = relocated("external-script.json", "/tmp/ncbackup-example-ext", tmp_path / "example-ext")
    # HOME_FOLDER is relative to the checkout root in the example; the test runs elsewhere.
    config["GENERAL"]["HOME_FOLDER"] = str(EXAMPLES / "scripts")
    path = tmp_path / "external-script.json"
    path.write_text(json.dumps(config))
    assert_passes(check(ncbackup_cmd, path, cwd=tmp_path), [
        "1. FILESET [to-folder]",
        "2. LIST_FILES [execute]",
        "3. COMPRESSION+ENCRYPTION+STORAGE [backup-set]",
    ])


@pytest.fixture(scope="module")
def mariadb_server(tmp_path_factory) -> MariaDB:
    """A throwaway MariaDB for the seed example's DBSBACKUP section (the same helper as the source tests)."""
    need_binary("mariadbd")
    need_binary("mariadb-install-db")
    server = start_mariadb(tmp_path_factory.mktemp("examples-mariadb"), name="examples", is_binlog_on=True)
    yield server
    server.stop()
    remove_socket_folder(server)


def test_seed_full_example_passes_check_with_its_placeholders_pointed_at_real_servers(
    tmp_path, ncbackup_cmd, mariadb_server, moto_server,  # noqa: F811 - moto_server is the imported fixture
):
    bucket = f"seed-example-{uuid.uuid4().hex[:8]}"
    moto_server.client().create_bucket(Bucket=bucket)
    config = relocated("seed-full.json", "/tmp/ncbackup-seed", tmp_path / "seed")

    # The placeholders, and only them: the MySQL option file and instance, the bucket and where it is.
    database = config["DBSBACKUP"]["PARAMETERS"]
    database["CREDENTIAL_PATH"] = str(mariadb_server.credential_path)
    database["MY_INSTANCES"] = str(mariadb_server.port)
    storage = config["STORAGE"]["PARAMETERS"]
    args = ast.literal_eval(storage["ARGS_DICT"])
    args.update({"BUCKET": bucket, "ENDPOINT_URL": moto_server.endpoint_url, "REGION": "us-east-1"})
    storage["ARGS_DICT"] = repr(args)
    path = tmp_path / "seed-full.json"
    path.write_text(json.dumps(config, indent=2))
    assert SECRET_ACCESS_KEY not in path.read_text() and ACCESS_KEY_ID not in path.read_text()

    # S3 credentials through the AWS chain (a shared credentials file), never in the config.
    credentials = tmp_path / "aws-credentials"
    write_credentials_file(credentials)
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_PROFILE": "ncbackup-test",
                "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"), "AWS_EC2_METADATA_DISABLED": "true"})
    completed = subprocess.run([*ncbackup_cmd, "check", "-c", str(path)], capture_output=True, text=True,
                               cwd=tmp_path, timeout=PROCESS_TIMEOUT_SECONDS, env=env)

    assert_passes(completed, [
        "1. FILESET+DBSBACKUP+COMPRESSION+ENCRYPTION+STORAGE [backup-set]",
        "2. SIZE [size]",
    ])
    assert f"MySQL instance {mariadb_server.port}: connected to mariadb" in completed.stdout
    assert f"s3://{bucket}/srv-example-web1/" in completed.stdout
