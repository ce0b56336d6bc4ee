"""`ncbackup init` as a new user runs it: a config that passes `check`, makes a real set and restores, keys made safely.

Every test points --output (and so the keys beside it), storage, WORK_FOLDER and the log into tmp.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support import REPO, need


def _run(cmd: list[str], *args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *args], input=stdin if stdin is not None else "", capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def _folders(tmp_path: Path) -> list[str]:
    """Flags that keep everything but the config and keys (which go beside --output) inside tmp_path."""
    return ["--work-folder", str(tmp_path / "work"), "--log-file", str(tmp_path / "ncbackup.log"),
            "--local-folder", str(tmp_path / "backups"), "--no-databases"]


def _make_data(data: Path) -> None:
    (data / "app").mkdir(parents=True)
    for index in range(20):
        (data / "app" / f"setting-{index:02}.conf").write_text(f"key{index} = value {index}\n" * 30)
    (data / "blob.bin").write_bytes(os.urandom(300_000))
    (data / "cache").mkdir()
    (data / "cache" / "junk.tmp").write_text("left out")


def _tree(root: Path) -> dict[str, bytes | str]:
    return {str(path.relative_to(root)): "dir" if path.is_dir() else path.read_bytes() for path in sorted(root.rglob("*"))}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_non_interactive_config_passes_check_makes_a_set_and_restores(ncbackup_cmd, tmp_path):
    data = tmp_path / "data"
    _make_data(data)
    config = tmp_path / "etc" / "conf.json"
    result = _run(ncbackup_cmd, "init", "--non-interactive", "--output", str(config), "--include", str(data),
                  "--exclude", str(data / "cache"), *_folders(tmp_path))
    assert result.returncode == 0, result.stderr
    key, signing_key = tmp_path / "etc" / "key.txt", tmp_path / "etc" / "signing.key"
    assert _mode(config) == 0o600 and _mode(key) == 0o600 and _mode(signing_key) == 0o600
    public_key = (tmp_path / "etc" / "signing.key.pub").read_text().splitlines()[-1]
    assert public_key in result.stdout and "signing.key.pub" in result.stdout
    # No recipient given: the identity is made here, and init says loudly that it must be copied away.
    assert f"COPY {key} OFF THIS SERVER" in result.stderr
    secret = next(line for line in key.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1"))
    assert secret not in result.stdout + result.stderr + config.read_text()

    written = json.loads(config.read_text())
    assert any(name.startswith("__") for name in written) and "__KEY_FILE" in written["ENCRYPTION"]["PARAMETERS"]

    checked = _run(ncbackup_cmd, "check", "-c", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ran = _run(ncbackup_cmd, "run", "-c", str(config))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    target = tmp_path / "restored"
    restored = _run(ncbackup_cmd, "restore", "-c", str(config), "--latest", "--target", str(target))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    expected = _tree(data)
    del expected["cache/junk.tmp"], expected["cache"]
    assert _tree(target / str(data).lstrip("/")) == expected


def test_a_recipient_from_the_operator_keeps_every_secret_key_off_the_server(ncbackup_cmd, tmp_path):
    operator_key = tmp_path / "operator" / "identity.txt"
    made = _run(ncbackup_cmd, "keygen", "--output", str(operator_key))
    assert made.returncode == 0, made.stderr
    recipient = made.stdout.strip()
    data = tmp_path / "data"
    _make_data(data)
    server = tmp_path / "server"
    config = server / "conf.json"
    result = _run(ncbackup_cmd, "init", "--non-interactive", "--output", str(config), "--include", str(data),
                  "--recipient", recipient, *_folders(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "COPY" not in result.stderr and "cannot read" in result.stdout
    assert (server / "recipients.txt").read_text().splitlines()[-1] == recipient
    assert not (server / "key.txt").exists()
    assert not [path for path in server.rglob("*") if b"AGE-SECRET-KEY" in path.read_bytes()]
    assert json.loads(config.read_text())["ENCRYPTION"]["PARAMETERS"]["KEY_FILE"] == str(server / "recipients.txt")

    assert _run(ncbackup_cmd, "check", "-c", str(config)).returncode == 0
    ran = _run(ncbackup_cmd, "run", "-c", str(config))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    # The server cannot read its own backups; the operator's identity can.
    refused = _run(ncbackup_cmd, "restore", "-c", str(config), "--latest", "--target", str(tmp_path / "no"))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    target = tmp_path / "restored"
    restored = _run(ncbackup_cmd, "restore", "-c", str(config), "--latest", "--target", str(target),
                    "--key-file", str(operator_key))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert _tree(target / str(data).lstrip("/")) == _tree(data)


def test_no_flag_but_output_writes_local_storage_and_this_hosts_folders_and_passes_check(ncbackup_cmd, tmp_path):
    config = tmp_path / "conf.json"
    result = _run(ncbackup_cmd, "init", "--non-interactive", "--output", str(config))
    assert result.returncode == 0, result.stderr
    written = json.loads(config.read_text())
    includes = written["FILESET"]["PARAMETERS"]["FILESET_INCLUDE"]
    assert includes[0] == "/etc"
    assert includes == [path for path in ("/etc", "/home", "/root", "/var/www", "/srv", "/opt") if Path(path).is_dir()]
    assert written["STORAGE"]["PARAMETERS"]["DESTINATION"] == "local"
    assert written["STORAGE"]["PARAMETERS"]["ARGS_DICT"] == {"LOCAL_BACKUP": "/var/backups/ncbackup"}
    assert written["GENERAL"]["LOG_FOLDER"] == "/var/log/ncbackup.log"
    assert written["ENCRYPTION"]["PARAMETERS"]["KEY_FILE"] == str(tmp_path / "key.txt")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["conf.json", "key.txt", "signing.key", "signing.key.pub"]
    # check writes nothing, so this runs against the host's real defaults.
    checked = _run(ncbackup_cmd, "check", "-c", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_interactive_answers_on_stdin_write_the_config_they_describe(ncbackup_cmd, tmp_path):
    data = tmp_path / "data"
    _make_data(data)
    operator_key = tmp_path / "identity.txt"
    recipient = _run(ncbackup_cmd, "keygen", "--output", str(operator_key)).stdout.strip()
    config = tmp_path / "conf" / "conf.json"
    answers = "\n".join([
        "web7",                                   # host name
        f"{data} /does/not/exist",                # refused: asked again
        str(data),                                # folders
        "*.tmp",                                  # leave out
        "ftp",                                    # refused: asked again
        "local",
        str(tmp_path / "backups"),
        "not-a-recipient",                        # refused: asked again
        recipient,
    ]) + "\n"
    result = _run(ncbackup_cmd, "init", "--output", str(config), "--work-folder", str(tmp_path / "work"),
                  "--log-file", str(tmp_path / "ncbackup.log"), "--no-databases", stdin=answers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/does/not/exist does not exist" in result.stdout
    assert "answer one of local, s3, sftp" in result.stdout and "is not an age recipient" in result.stdout
    written = json.loads(config.read_text())
    assert written["GENERAL"]["HOSTNAME"] == "web7"
    assert written["FILESET"]["PARAMETERS"]["FILESET_INCLUDE"] == [str(data)]
    assert written["FILESET"]["PARAMETERS"]["FILESET_EXCLUDE"] == ["*.tmp"]
    assert written["STORAGE"]["PARAMETERS"]["ARGS_DICT"] == {"LOCAL_BACKUP": str(tmp_path / "backups")}
    assert (config.parent / "recipients.txt").read_text().splitlines()[-1] == recipient
    checked = _run(ncbackup_cmd, "check", "-c", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_interactive_answers_that_end_early_write_nothing(ncbackup_cmd, tmp_path):
    config = tmp_path / "conf.json"
    result = _run(ncbackup_cmd, "init", "--output", str(config), "--no-databases", stdin="web7\n")
    assert result.returncode == 3
    assert "answers ended before the question" in result.stderr and "--non-interactive" in result.stderr
    assert list(tmp_path.iterdir()) == []


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 3, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("ncbackup: error: "), result.stderr
    return lines[0]


def test_a_bucket_name_with_spaces_is_one_sentence_and_writes_nothing(ncbackup_cmd, tmp_path):
    config = tmp_path / "out" / "conf.json"
    result = _run(ncbackup_cmd, "init", "--non-interactive", "--output", str(config), "--bucket", "my backups",
                  "--include", "/etc", "--no-databases")
    assert "S3 bucket name 'my backups' is not valid" in _one_error_line(result)
    assert not (tmp_path / "out").exists()


def test_an_existing_config_is_kept_unless_force_and_existing_keys_are_never_replaced(ncbackup_cmd, tmp_path):
    config = tmp_path / "conf.json"
    config.write_text('{"GENERAL": {}}\n')
    flags = ["--non-interactive", "--output", str(config), "--include", "/etc", *_folders(tmp_path)]
    result = _run(ncbackup_cmd, "init", *flags)
    assert "already exists" in _one_error_line(result) and "--force" in result.stderr
    assert config.read_text() == '{"GENERAL": {}}\n' and sorted(p.name for p in tmp_path.iterdir()) == ["conf.json"]

    assert _run(ncbackup_cmd, "init", *flags, "--force").returncode == 0
    assert (tmp_path / "conf.json.bak").read_text() == '{"GENERAL": {}}\n'
    keys = {name: (tmp_path / name).read_bytes() for name in ("key.txt", "signing.key", "signing.key.pub")}
    again = _run(ncbackup_cmd, "init", *flags, "--force")
    assert again.returncode == 0, again.stderr
    assert {name: (tmp_path / name).read_bytes() for name in keys} == keys
    assert "exists and is used as it is" in again.stdout and "COPY" not in again.stderr


def test_an_output_folder_that_cannot_exist_is_one_sentence(ncbackup_cmd, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = _run(ncbackup_cmd, "init", "--non-interactive", "--output", str(blocker / "conf.json"), "--include", "/etc",
                  *_folders(tmp_path))
    assert "is a file, not a folder" in _one_error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_an_unwritable_output_folder_is_one_sentence(tmp_path):
    # As root every folder is writable: run init as nobody, on the system Python with this checkout on its path.
    python = shutil.which("python3", path="/usr/bin:/bin")
    need(python is not None, "no /usr/bin/python3 to run init as an unprivileged user")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *site.getsitepackages()]),
           "HOME": "/tmp"}
    probe = subprocess.run([python, "-c", "import ncbackup.cli"], user="nobody", env=env, capture_output=True, timeout=60)
    need(os.geteuid() == 0 and probe.returncode == 0, "cannot run ncbackup as the user nobody here")
    folder = Path(tempfile.mkdtemp(prefix="ncb-init-ro-"))   # pytest's own tmp folders are private to root
    try:
        folder.chmod(0o755)
        result = subprocess.run([python, "-m", "ncbackup.cli", "init", "--non-interactive", "--output",
                                 str(folder / "conf.json"), "--include", "/etc", "--no-databases"],
                                user="nobody", env=env, cwd="/tmp", capture_output=True, text=True, timeout=120)
        assert f"cannot write in the folder {folder}" in _one_error_line(result)
        assert list(folder.iterdir()) == []
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_an_identity_given_as_recipient_is_refused_without_echoing_it(ncbackup_cmd, tmp_path):
    key = tmp_path / "identity.txt"
    _run(ncbackup_cmd, "keygen", "--output", str(key))
    secret = next(line for line in key.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1"))
    result = _run(ncbackup_cmd, "init", "--non-interactive", "--output", str(tmp_path / "out" / "conf.json"),
                  "--recipient", secret, "--include", "/etc", "--no-databases")
    line = _one_error_line(result)
    assert "not a recipient" in line and secret not in result.stdout + result.stderr


@pytest.mark.parametrize("flags, expected", [
    (["--bucket", "acme-backups", "--endpoint-url", "http://127.0.0.1:9"],
     {"DESTINATION": "s3", "ARGS_DICT": {"BUCKET": "acme-backups", "ENDPOINT_URL": "http://127.0.0.1:9"}}),
    (["--sftp-host", "backup.example.com", "--sftp-user", "ncb", "--sftp-folder", "/srv/sets"],
     {"DESTINATION": "sftp", "ARGS_DICT": {"REMOTE_HOST": "backup.example.com", "PORT": "22", "REMOTE_DIR": "/srv/sets",
                                           "REMOTE_USER": "ncb"}}),
])
def test_remote_storage_flags_write_a_storage_section_the_loader_accepts(ncbackup_cmd, tmp_path, flags, expected):
    config = tmp_path / "conf.json"
    result = _run(ncbackup_cmd, "init", "--non-interactive", "--output", str(config), "--include", "/etc",
                  *_folders(tmp_path), *flags)
    assert result.returncode == 0, result.stderr
    parameters = json.loads(config.read_text())["STORAGE"]["PARAMETERS"]
    assert {key: value for key, value in parameters.items() if not key.startswith("__")} == expected


def test_init_is_listed_in_the_command_help(ncbackup_cmd):
    result = _run(ncbackup_cmd, "--help")
    assert result.returncode == 0 and "init" in result.stdout


def test_a_config_the_loader_would_refuse_is_never_written(ncbackup_cmd, tmp_path):
    # init loads and plans the text before writing anything: here neither the log folder nor its parent exists.
    config = tmp_path / "out" / "conf.json"
    result = _run(ncbackup_cmd, "init", "--non-interactive", "--output", str(config), "--include", "/etc", "--no-databases",
                  "--log-file", str(tmp_path / "missing" / "deeper" / "ncbackup.log"), "--local-folder", str(tmp_path / "backups"))
    line = _one_error_line(result)
    assert "the config would not load" in line and "LOG_FOLDER" in line and str(config) in line and ".tmp" not in line
    assert not (tmp_path / "out").exists()


def test_relative_paths_are_written_absolute_so_cron_finds_them(ncbackup_cmd, tmp_path):
    (tmp_path / "data").mkdir()
    result = _run(ncbackup_cmd, "init", "--non-interactive", "--output", "conf.json", "--include", str(tmp_path / "data"),
                  "--no-databases", "--log-file", "ncbackup.log", "--work-folder", str(tmp_path / "work"),
                  "--local-folder", str(tmp_path / "backups"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "conf.json").read_text())
    assert written["ENCRYPTION"]["PARAMETERS"]["KEY_FILE"] == str(tmp_path / "key.txt")
    assert written["ENCRYPTION"]["PARAMETERS"]["SIGNING_KEY"] == str(tmp_path / "signing.key")
    assert written["GENERAL"]["LOG_FOLDER"] == str(tmp_path / "ncbackup.log")
