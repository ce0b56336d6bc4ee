"""Secrets never leave a run: ``ncbackup run --json`` where a program, a storage or a database client
prints the secret, checked in the log file, the JSON, stderr and the POST report of a real local server.

Each kind of secret gets a stand-in that really outputs it (a script printing its arguments, a
mongodump/mysql/psql echoing the file it was given, an S3 endpoint quoting the key in its error),
so the assertions fail if masking ever stops working.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import REPO

PROCESS_TIMEOUT_SECONDS = 120


@dataclass
class Report:
    url: str
    bodies: list[str] = field(default_factory=list)


def _serve(handler: type[BaseHTTPRequestHandler]):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def report_server():
    report = Report(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            report.bodies.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = _serve(Handler)
    report.url = f"http://127.0.0.1:{server.server_address[1]}/report"
    try:
        yield report
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def s3_quoting_the_key():
    """An S3 endpoint that refuses every request with an error message quoting the secret key it was 'given'."""
    quoted: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _refuse(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = (f"<?xml version='1.0'?><Error><Code>InvalidRequest</Code><Message>the secret key "
                    f"{quoted[0]} is not accepted here</Message></Error>").encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _refuse  # noqa: N815

        def log_message(self, *args):
            pass

    server = _serve(Handler)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", quoted
    finally:
        server.shutdown()
        server.server_close()


def stand_in(path: Path, body: str) -> Path:
    """An executable Python script at path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


# Each builder returns (sections, GENERAL additions) for a run whose output contains `secret`.
Builder = Callable[..., tuple[dict, dict]]


def _external(tmp_path: Path, parameters: dict) -> dict:
    stand_in(tmp_path / "home" / "leaky" / "leaky.py", """
        import sys
        print("connecting with", " ".join(sys.argv[1:]))
        print("login refused for", " ".join(sys.argv[1:]), file=sys.stderr)
        sys.exit(1)
    """)
    return {"LEAKY": {"ACTION": "execute", "NAME": "leaky", "EXECUTE_WITH": "python", "PARAMETERS": parameters}}


def _data_set(tmp_path: Path, storage: dict) -> dict:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "a.txt").write_text("some data\n")
    return {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(tmp_path / "key.txt")}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": storage},
    }


def _local_storage(tmp_path: Path) -> dict:
    return {"STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {
        "DESTINATION": "local", "ARGS_DICT": repr({"LOCAL_BACKUP": str(tmp_path / "backups")})}}}


def execute_password(tmp_path, secret, report, _s3):
    return _external(tmp_path, {"DB_NAME": "shop", "PASSWORD": secret}), {}


def report_url_token(tmp_path, secret, report, _s3):
    # The script receives GENERAL, the report URL included, and prints it.
    return _external(tmp_path, {"DB_NAME": "shop"}), {"MESSAGE_CONFIG_COMMAND": f"{report.url}?host=web1&token={secret}"}


def report_url_user_password(tmp_path, secret, report, _s3):
    url = report.url.replace("http://", f"http://backup:{secret}@")
    return _external(tmp_path, {"DB_NAME": "shop"}), {"MESSAGE_CONFIG_COMMAND": url}


def args_dict_token(tmp_path, secret, report, _s3):
    upload = stand_in(tmp_path / "bin" / "upload", """
        import sys
        sys.stdin.buffer.read()
        print(f"error: the API token {sys.argv[1]} was refused", file=sys.stderr)
        sys.exit(1)
    """)
    return _data_set(tmp_path, {"DESTINATION": "custom_command", "ARGS_DICT": repr({"API_TOKEN": secret}),
                                "UPLOAD_COMMAND_TEMPLATE": f"{upload} %(API_TOKEN)s %(stdin)s"}), {}


_MONGODUMP = """
    import sys
    config = next(a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--config="))
    print("Failed: cannot connect with", open(config).read().replace("\\n", " "), file=sys.stderr)
    sys.exit(1)
"""


def mongo_password(tmp_path, secret, report, _s3):
    mongodump = stand_in(tmp_path / "bin" / "mongodump", _MONGODUMP)
    return {"MONGODB": {"ACTION": "load", "FROM": "mongo", "CLASS": "MongoBackup", "PARAMETERS": {
        "MONGO_USER": "backup", "MONGO_PWD": secret, "MONGODUMP_BIN": str(mongodump)}},
        **_local_storage(tmp_path)}, {}


def mongo_uri_file(tmp_path, secret, report, _s3):
    mongodump = stand_in(tmp_path / "bin" / "mongodump", _MONGODUMP)
    uri_file = tmp_path / "mongo.uri"
    uri_file.write_text(f"mongodb://backup:{secret}@db1.example:27017/admin\n")
    return {"MONGODB": {"ACTION": "load", "FROM": "mongo", "CLASS": "MongoBackup", "PARAMETERS": {
        "MONGO_URI_FILE": str(uri_file), "MONGODUMP_BIN": str(mongodump)}}, **_local_storage(tmp_path)}, {}


def mysql_credential_file(tmp_path, secret, report, _s3):
    client = stand_in(tmp_path / "bin" / "mysql", """
        import sys
        defaults = sys.argv[1].split("=", 1)[1]
        print("ERROR 1045 (28000): Access denied; options were", open(defaults).read().replace("\\n", " "), file=sys.stderr)
        sys.exit(1)
    """)
    credentials = tmp_path / "my.cnf"
    credentials.write_text(f"[client]\nuser=backup\npassword={secret}\n")
    credentials.chmod(0o600)
    return {"MYSQL": {"ACTION": "execute", "NAME": "mysql_backup", "PARAMETERS": {
        "CREDENTIAL_PATH": str(credentials), "MY_INSTANCES": "3306", "MYSQL_BINARY": str(client),
        "MYSQL_DUMP_BINARY": str(client)}}, **_local_storage(tmp_path)}, {}


_PSQL = """
    import os, sys
    print("psql: error: FATAL: password authentication failed; passfile says",
          open(os.environ["PGPASSFILE"]).read().replace("\\n", " "), file=sys.stderr)
    sys.exit(2)
"""


def postgres_passfile(tmp_path, secret, report, _s3):
    psql = stand_in(tmp_path / "bin" / "psql", _PSQL)
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"# the backup user\ndb1:5432:*:backup:{secret}\n")
    passfile.chmod(0o600)
    return {"POSTGRES": {"ACTION": "load", "FROM": "postgres", "CLASS": "PostgresBackup", "PARAMETERS": {
        "PSQL": str(psql), "PSQLDUMP": str(psql), "PGPASSFILE": str(passfile), "USER": "backup"}},
        **_local_storage(tmp_path)}, {}


def postgres_password_file(tmp_path, secret, report, _s3):
    psql = stand_in(tmp_path / "bin" / "psql", _PSQL)
    password_file = tmp_path / "pg-password"
    password_file.write_text(f"{secret}\n")
    return {"POSTGRES": {"ACTION": "load", "FROM": "postgres", "CLASS": "PostgresBackup", "PARAMETERS": {
        "PSQL": str(psql), "PSQLDUMP": str(psql), "PASSWORD_FILE": str(password_file), "USER": "backup"}},
        **_local_storage(tmp_path)}, {}


def aws_credentials_file(tmp_path, secret, report, s3):
    endpoint, quoted = s3
    quoted.append(secret)
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(f"[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = {secret}\n")
    credentials.chmod(0o600)
    return _data_set(tmp_path, {"DESTINATION": "s3", "ARGS_DICT": repr({
        "BUCKET": "backups", "ENDPOINT_URL": endpoint, "REGION": "us-east-1", "CREDENTIALS_FILE": str(credentials),
        "ADDRESSING_STYLE": "path", "MAX_ATTEMPTS": "1"})}), {}


KINDS: dict[str, Builder] = {
    "execute PARAMETERS password printed by the script": execute_password,
    "report URL ?token= passed to a script": report_url_token,
    "report URL user:password@": report_url_user_password,
    "ARGS_DICT token in a failing upload command": args_dict_token,
    "MONGO_PWD echoed by mongodump": mongo_password,
    "password inside a MONGO_URI_FILE URI": mongo_uri_file,
    "MySQL CREDENTIAL_PATH password": mysql_credential_file,
    "PGPASSFILE password": postgres_passfile,
    "PostgreSQL PASSWORD_FILE": postgres_password_file,
    "AWS shared credentials file secret key": aws_credentials_file,
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_secret_the_run_outputs_is_masked_in_the_log_the_json_and_the_report(
        tmp_path, ncbackup_cmd, report_server, s3_quoting_the_key, kind):
    secret = f"S3cr3t-{list(KINDS).index(kind):02d}-vault-q8"
    sections, general_extra = KINDS[kind](tmp_path, secret, report_server, s3_quoting_the_key)
    general = {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "HOME_FOLDER": str(tmp_path / "home"),
               "LOG_FOLDER": str(tmp_path / "log") + "/", "DISK_SPACE_CHECK": "False",
               "MESSAGE_CONFIG_COMMAND": report_server.url, **general_extra}
    (tmp_path / "log").mkdir()
    (tmp_path / "home").mkdir(exist_ok=True)
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({"GENERAL": general, **sections}, indent=2))

    completed = subprocess.run([*ncbackup_cmd, "run", "-c", str(config), "--json", "-l", "DEBUG"],
                               capture_output=True, text=True, timeout=PROCESS_TIMEOUT_SECONDS,
                               env={**os.environ, "PYTHONPATH": str(REPO / "src")})

    assert completed.returncode == 2, completed.stdout + completed.stderr   # every stand-in fails its step
    log_file = tmp_path / "log" / "ncbackup.log"
    log_text = log_file.read_text()
    result = json.loads(completed.stdout)
    (body,) = report_server.bodies
    fields = urllib.parse.parse_qs(body, keep_blank_values=True)
    outputs = {"log file": log_text, "--json": completed.stdout, "stderr": completed.stderr,
               "report body": body, "report fields": json.dumps(fields)}
    for name, text in outputs.items():
        assert secret not in text and urllib.parse.quote(secret) not in text, f"{kind}: the secret leaked into {name}"
    # The secret was really there to leak: its place is marked in the log, the JSON and the report.
    assert "***" in log_text
    assert "***" in json.dumps(result["steps"]) + str(result["error"])
    assert "***" in fields["log"][0] + fields["error"][0]
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert "Traceback" not in completed.stderr
