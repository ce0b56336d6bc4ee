"""`ncbackup init`'s pieces as data: the rendered config, the answer checks, the questions, finding sockets and ports."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from ncbackup import hostinfo
from ncbackup.commands.init import (
    Choices,
    Prompter,
    StorageChoice,
    check_bucket,
    check_excludes,
    check_recipient,
    config_text,
    render_config,
    split_recipients,
)
from ncbackup.config import load_config
from ncbackup.errors import ConfigError
from ncbackup.hostinfo import FoundServer
from ncbackup.stages.keys import generate_identity
from tests.support import need


def _choices(tmp_path: Path, **changes) -> Choices:
    values = dict(hostname="web1", includes=[tmp_path], excludes=["*.tmp"], storage=StorageChoice(local_folder=tmp_path / "sets"),
                  key_file=tmp_path / "key.txt", signing_key=tmp_path / "signing.key", work_folder=tmp_path / "work",
                  log_file=tmp_path / "ncbackup.log")
    values.update(changes)
    return Choices(**values)


def _load(tmp_path: Path, choices: Choices):
    path = tmp_path / "conf.json"
    path.write_text(config_text(render_config(choices, created="today")))
    return load_config(path)


def test_comments_are_dropped_by_the_loader_and_the_sections_run_in_order(tmp_path):
    config = _load(tmp_path, _choices(tmp_path))
    assert [section.name for section in config.sections] == ["FILESET", "COMPRESSION", "ENCRYPTION", "STORAGE"]
    assert config.general.hostname == "web1"
    encryption = next(section for section in config.sections if section.name == "ENCRYPTION")
    assert set(encryption.parameters) == {"KEY_FILE", "SIGNING_KEY", "FILE_SIZE"}


def test_the_storage_folder_inside_a_backed_up_folder_is_excluded(tmp_path):
    rendered = render_config(_choices(tmp_path), created="today")
    assert rendered["FILESET"]["PARAMETERS"]["FILESET_EXCLUDE"] == ["*.tmp", str(tmp_path / "sets"), str(tmp_path / "work")]


def test_a_server_that_did_not_answer_is_a_comment_and_one_that_did_is_a_section(tmp_path):
    good = FoundServer("postgres", "127.0.0.1 port 5432", {"HOST": "127.0.0.1", "PORT": "5432"}, is_reachable=True, detail="ok")
    bad = FoundServer("mysql", "socket /run/mysqld/mysqld.sock", {"MY_INSTANCES": "/run/mysqld/mysqld.sock"}, detail="denied")
    second = FoundServer("postgres", "127.0.0.1 port 5433", {"HOST": "127.0.0.1", "PORT": "5433"}, is_reachable=True, detail="ok")
    choices = _choices(tmp_path, databases=[good, bad, second])
    rendered = render_config(choices, created="today")
    assert "denied" in rendered["__DISABLED_MYSQL"]["__WHY"]
    config = _load(tmp_path, choices)
    assert [section.name for section in config.sections] == ["FILESET", "POSTGRES", "POSTGRES_2", "COMPRESSION", "ENCRYPTION", "STORAGE"]


@pytest.mark.parametrize("name", ["acme-backups", "abc", "backups.example.com", "a" * 63])
def test_valid_bucket_names(name):
    assert check_bucket(f" {name} ") == name


@pytest.mark.parametrize("name", ["my backups", "ab", "Acme", "-acme", "acme-", "a..b", "a" * 64, "acme_backups", ""])
def test_invalid_bucket_names_are_one_sentence(name):
    with pytest.raises(ConfigError, match="is not valid: use 3 to 63 lower-case"):
        check_bucket(name)


def test_recipients_and_identities():
    identity, recipient = generate_identity()
    assert check_recipient(recipient + "\n") == recipient
    assert check_recipient("ssh-ed25519 AAAAC3Nza... ops@laptop").startswith("ssh-ed25519")
    with pytest.raises(ConfigError, match="not a recipient") as raised:
        check_recipient(identity)
    assert identity not in str(raised.value)
    with pytest.raises(ConfigError, match="is not an age recipient"):
        check_recipient(recipient[:-1] + ("q" if recipient[-1] != "q" else "p"))


def test_one_answer_holds_age_and_ssh_recipients():
    _identity, recipient = generate_identity()
    answer = f"{recipient} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 ops@laptop ssh-rsa AAAAB3NzaC1yc2E"
    assert split_recipients(answer) == [recipient, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "ssh-rsa AAAAB3NzaC1yc2E"]
    assert split_recipients("") == []


def test_default_excludes_outside_the_backed_up_folders_are_dropped_and_a_given_one_refused():
    includes = [Path("/home"), Path("/srv/app")]
    assert check_excludes(["/home/*/.cache", "/root/.cache", "*.tmp"], includes, is_default=True) == ["/home/*/.cache", "*.tmp"]
    assert check_excludes(["/home/*/.cache"], [Path("/home/alice")], is_default=True) == ["/home/*/.cache"]
    assert check_excludes(["/srv/app/cache", "/srv/app*"], includes, is_default=False) == ["/srv/app/cache", "/srv/app*"]
    with pytest.raises(ConfigError, match="exclude /root/.cache is not inside any folder to back up"):
        check_excludes(["/root/.cache"], includes, is_default=False)


def test_a_question_is_asked_again_until_the_answer_is_valid_and_the_end_of_answers_is_an_error():
    out = io.StringIO()
    prompter = Prompter(reader=io.StringIO("Bad Name\nacme-backups\n\n"), writer=out)
    assert prompter.ask_valid("S3 bucket", "", check_bucket) == "acme-backups"
    assert "S3 bucket name 'Bad Name' is not valid" in out.getvalue()
    assert prompter.ask("Region", "eu-west-1") == "eu-west-1"
    with pytest.raises(ConfigError, match="answers ended before the question 'Host'"):
        prompter.ask("Host", "web1")


@pytest.mark.parametrize("answers, expected", [("\n", True), ("n\n", False), ("maybe\nyes\n", True)])
def test_confirm(answers, expected):
    assert Prompter(reader=io.StringIO(answers), writer=io.StringIO()).confirm("Back up it") is expected


def _listening_unix_socket(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    return server


def test_postgres_sockets_are_found_by_name_and_kind(tmp_path):
    need(hasattr(socket, "AF_UNIX"), "Unix sockets are missing on this platform")
    sockets = [_listening_unix_socket(tmp_path / name) for name in (".s.PGSQL.5433", ".s.PGSQL.5432")]
    (tmp_path / ".s.PGSQL.5434").write_text("a plain file, not a socket")
    (tmp_path / ".s.PGSQL.5432.lock").write_text("lock")
    try:
        assert hostinfo.postgres_sockets(tmp_path) == [5432, 5433]
        assert hostinfo.postgres_candidates(folders=[tmp_path, tmp_path / "missing"], port=None) == \
            [(str(tmp_path), 5432), (str(tmp_path), 5433)]
        assert hostinfo.mysql_candidates(sockets=[tmp_path / "none.sock", tmp_path / ".s.PGSQL.5433"], port=None) == \
            [str(tmp_path / ".s.PGSQL.5433")]
    finally:
        for server in sockets:
            server.close()


def test_a_listening_port_is_open_and_a_closed_one_is_not():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert hostinfo.is_port_open(port)
    assert not hostinfo.is_port_open(port)


def test_existing_paths_keeps_order_and_drops_what_is_missing(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "file").write_text("x")
    assert hostinfo.existing_paths([tmp_path / "b", tmp_path / "missing", tmp_path / "file", tmp_path / "a"]) == \
        [tmp_path / "b", tmp_path / "a"]
