"""`ncbackup init` finding the real MariaDB and PostgreSQL servers the suite starts, and `check` accepting what it wrote."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ncbackup import hostinfo
from tests.integration.servers.mariadb import MariaDB, free_port
from tests.integration.servers.postgres import SUPERUSER, Postgres

pytestmark = pytest.mark.integration


def _init(ncbackup_cmd: list[str], tmp_path: Path, *flags: str) -> tuple[subprocess.CompletedProcess, dict]:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "hello.txt").write_text("hello")
    config = tmp_path / "conf.json"
    result = subprocess.run(
        [*ncbackup_cmd, "init", "--non-interactive", "--output", str(config), "--include", str(data),
         "--work-folder", str(tmp_path / "work"), "--log-file", str(tmp_path / "ncbackup.log"),
         "--local-folder", str(tmp_path / "backups"), *flags],
        capture_output=True, text=True, timeout=300, input="")
    assert result.returncode == 0, result.stdout + result.stderr
    return result, json.loads(config.read_text())


def _check(ncbackup_cmd: list[str], tmp_path: Path) -> str:
    result = subprocess.run([*ncbackup_cmd, "check", "-c", str(tmp_path / "conf.json")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_usual_places_find_a_mariadb_socket_and_port_and_a_postgres_socket(mariadb: MariaDB, postgres: Postgres, tmp_path):
    assert hostinfo.mysql_candidates(sockets=[tmp_path / "missing.sock", mariadb.socket_path], port=mariadb.port) == \
        [str(mariadb.socket_path)]
    assert hostinfo.mysql_candidates(sockets=[tmp_path / "missing.sock"], port=mariadb.port) == [str(mariadb.port)]
    assert hostinfo.mysql_candidates(sockets=[], port=free_port()) == []
    assert hostinfo.postgres_candidates(folders=[tmp_path, postgres.socket_folder], port=None) == \
        [(str(postgres.socket_folder), postgres.port)]
    assert hostinfo.postgres_candidates(folders=[tmp_path], port=postgres.port) == [(hostinfo.LOOPBACK, postgres.port)]


def test_a_mariadb_socket_becomes_a_mysql_section_that_check_accepts(mariadb: MariaDB, ncbackup_cmd, tmp_path):
    result, config = _init(ncbackup_cmd, tmp_path, "--mysql", str(mariadb.socket_path))
    assert config["MYSQL"]["NAME"] == "mysql_backup"
    assert config["MYSQL"]["PARAMETERS"] == {"MY_INSTANCES": str(mariadb.socket_path)}
    assert "MariaDB" in result.stdout and f"socket {mariadb.socket_path}" in result.stdout
    output = _check(ncbackup_cmd, tmp_path)
    assert "will dump legacy, mysql, shop" in output


def test_a_mariadb_port_with_a_credential_file_becomes_a_mysql_section(mariadb: MariaDB, ncbackup_cmd, tmp_path):
    _result, config = _init(ncbackup_cmd, tmp_path, "--mysql", str(mariadb.port), "--mysql-credentials",
                            str(mariadb.credential_path))
    assert config["MYSQL"]["PARAMETERS"] == {"MY_INSTANCES": str(mariadb.port), "CREDENTIAL_PATH": str(mariadb.credential_path)}
    assert f"MySQL instance {mariadb.port}: connected to mariadb" in _check(ncbackup_cmd, tmp_path)


def test_a_server_that_does_not_answer_is_written_disabled_and_check_still_passes(ncbackup_cmd, tmp_path):
    dead = str(free_port())
    result, config = _init(ncbackup_cmd, tmp_path, "--mysql", dead)
    assert "MYSQL" not in config
    disabled = config["__DISABLED_MYSQL"]
    assert disabled["PARAMETERS"] == {"MY_INSTANCES": dead} and "could not connect" in disabled["__WHY"]
    assert "DISABLED" in result.stdout
    assert "MYSQL" not in _check(ncbackup_cmd, tmp_path)


def test_a_postgres_socket_folder_is_scanned_for_its_port(postgres: Postgres, ncbackup_cmd, tmp_path):
    result, config = _init(ncbackup_cmd, tmp_path, "--postgres-host", str(postgres.socket_folder))
    assert config["POSTGRES"]["FROM"] == "postgres" and config["POSTGRES"]["CLASS"] == "PostgresBackup"
    assert config["POSTGRES"]["PARAMETERS"] == {"HOST": str(postgres.socket_folder), "PORT": str(postgres.port), "USER": SUPERUSER}
    assert "PostgreSQL 15" in result.stdout
    assert "will dump app, postgres, reports and globals" in _check(ncbackup_cmd, tmp_path)


def test_postgres_over_tcp_with_a_password_file(postgres: Postgres, ncbackup_cmd, tmp_path):
    _result, config = _init(ncbackup_cmd, tmp_path, "--postgres-host", "127.0.0.1", "--postgres-port", str(postgres.port),
                            "--postgres-password-file", str(postgres.password_file))
    assert config["POSTGRES"]["PARAMETERS"]["PASSWORD_FILE"] == str(postgres.password_file)
    output = _check(ncbackup_cmd, tmp_path)
    assert f"PostgreSQL on 127.0.0.1 port {postgres.port}: connected" in output


def test_a_wrong_postgres_password_is_written_disabled_with_the_reason(postgres: Postgres, ncbackup_cmd, tmp_path):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not the password\n")
    wrong.chmod(0o600)
    result, config = _init(ncbackup_cmd, tmp_path, "--postgres-host", "127.0.0.1", "--postgres-port", str(postgres.port),
                           "--postgres-password-file", str(wrong))
    assert "POSTGRES" not in config and "password authentication failed" in config["__DISABLED_POSTGRES"]["__WHY"]
    assert "not the password" not in result.stdout + result.stderr + (tmp_path / "conf.json").read_text()
    _check(ncbackup_cmd, tmp_path)


def test_interactive_init_asks_about_each_server_found(mariadb: MariaDB, ncbackup_cmd, tmp_path):
    (tmp_path / "data").mkdir()
    config = tmp_path / "conf.json"
    flags = ["--output", str(config), "--include", str(tmp_path / "data"), "--mysql", str(mariadb.socket_path),
             "--mysql", str(free_port()), "--work-folder", str(tmp_path / "work"), "--log-file", str(tmp_path / "ncbackup.log"),
             "--local-folder", str(tmp_path / "backups")]
    # host, folders, leave out, (the dead server is only reported), back up the socket one? no, storage, folder, recipient
    answers = "\n\n\nn\n\n\n\n"
    result = subprocess.run([*ncbackup_cmd, "init", *flags], input=answers, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Back up MariaDB/MySQL on socket {mariadb.socket_path} (MariaDB" in result.stdout
    assert "cannot connect" in result.stdout and "written disabled" in result.stdout
    written = json.loads(config.read_text())
    assert "MYSQL" not in written and list(written["__DISABLED_MYSQL"]["PARAMETERS"].values())[0] != str(mariadb.socket_path)
