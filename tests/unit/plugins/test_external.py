"""External execute sections: the original's argument convention, interpreters, output into the log, timeouts."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from pathlib import Path

import pytest

from ncbackup import platform
from ncbackup.config import loads_config
from ncbackup.errors import BackupError, ConfigError
from ncbackup.plugins.external import build_arguments, resolve, run_program
from tests.support import need


def load(tmp_path: Path, section: dict, general_extra: dict | None = None):
    general = {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "HOME_FOLDER": str(tmp_path / "home")}
    general.update(general_extra or {})
    path = tmp_path / "conf.json"
    text = json.dumps({"GENERAL": general, "SCRIPT": section})
    path.write_text(text)
    config = loads_config(text, path=path)
    return config.sections[0], config.general


def install(tmp_path: Path, name: str, file: str, body: str) -> Path:
    folder = tmp_path / "home" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_text(textwrap.dedent(body))
    return folder / file


def test_named_arguments_follow_the_original_convention(tmp_path):
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "x", "PARAMETERS": {
        "TARGETS": "/etc /home/user", "EMPTY": "", "FLAG": "True", "N": 5}},
        {"LOCAL_BACKUP": "/var/local backup"})
    assert build_arguments(section, general) == [
        "--OBJECTIVES", "/etc /home/user", "--FLAG", "True", "--N", "5",
        "--HOSTNAME", "web1", "--WORK_FOLDER", str(tmp_path / "work"), "--HOME_FOLDER", str(tmp_path / "home"),
        "--LOCAL_BACKUP", "/var/local backup",
    ]


def test_flat_mode_passes_parameter_values_positionally(tmp_path):
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "x", "PARAMETERS_MODE": "flat",
                                       "PARAMETERS": {"A": "one", "B": "two words", "C": ""}})
    arguments = build_arguments(section, general)
    assert arguments[:2] == ["one", "two words"]
    assert arguments[2:4] == ["--HOSTNAME", "web1"]


def test_python_script_receives_exactly_the_original_argument_convention(tmp_path, caplog):
    install(tmp_path, "checker", "checker.py", """
        import argparse, sys
        parser = argparse.ArgumentParser()
        for key in ("OBJECTIVES", "DESTINATION", "HOSTNAME", "WORK_FOLDER", "HOME_FOLDER"):
            parser.add_argument("--" + key, required=True)
        args = parser.parse_args()
        assert args.OBJECTIVES == "/etc /srv/my data", args.OBJECTIVES
        assert args.DESTINATION == "s3"
        assert args.HOSTNAME == "web1"
        print("convention ok")
    """)
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "checker", "EXECUTE_WITH": "python",
                                       "PARAMETERS": {"TARGETS": "/etc /srv/my data", "DESTINATION": "s3"}})
    program = resolve(section, general)
    caplog.set_level(logging.INFO)
    run_program(program, logging.getLogger("ncbackup.test"))
    assert "convention ok" in caplog.text


def test_default_executable_is_name_dot_py_run_with_the_current_python(tmp_path):
    install(tmp_path, "tool", "tool.py", "print('hi')\n")
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "tool"})
    program = resolve(section, general)
    assert program.argv[:2] == [sys.executable, str(tmp_path / "home" / "tool" / "tool.py")]


def test_bash_script_output_goes_to_the_log_and_nonzero_exit_fails(tmp_path, caplog):
    install(tmp_path, "sh", "run.sh", """
        echo "to stdout $1"
        echo "to stderr" >&2
        exit 4
    """)
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "sh", "EXECUTABLE": "run.sh",
                                       "EXECUTE_WITH": "bash", "PARAMETERS": {"A": "x"}})
    caplog.set_level(logging.INFO)
    with pytest.raises(BackupError, match="exited with status 4"):
        run_program(resolve(section, general), logging.getLogger("ncbackup.test"))
    assert "to stdout --A" in caplog.text and "to stderr" in caplog.text


def test_hanging_script_is_killed_at_its_timeout_with_its_children(tmp_path):
    install(tmp_path, "hang", "hang.sh", "sleep 300 &\nsleep 300\n")
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "hang", "EXECUTABLE": "hang.sh",
                                       "EXECUTE_WITH": "bash", "TIMEOUT": "1"})
    with pytest.raises(BackupError, match="did not finish within TIMEOUT 1 s"):
        run_program(resolve(section, general), logging.getLogger("ncbackup.test"))


def test_unknown_interpreter_is_named(tmp_path):
    install(tmp_path, "t", "t.x", "")
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "t", "EXECUTABLE": "t.x",
                                       "EXECUTE_WITH": "no-such-interpreter"})
    with pytest.raises(BackupError, match="EXECUTE_WITH 'no-such-interpreter' was not found"):
        resolve(section, general)


def test_secret_looking_values_are_not_logged_by_the_runner_itself(tmp_path, caplog):
    # The runner logs the program's output, never its argument list at INFO.
    install(tmp_path, "quiet", "quiet.sh", "exit 0\n")
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "quiet", "EXECUTABLE": "quiet.sh",
                                       "EXECUTE_WITH": "bash", "PARAMETERS": {"PASSWORD": "hunter2-secret"}})
    caplog.set_level(logging.INFO)
    run_program(resolve(section, general), logging.getLogger("ncbackup.test"))
    assert "hunter2-secret" not in caplog.text


def test_secret_parameters_are_masked_even_at_debug_and_in_the_programs_output(tmp_path, caplog):
    from ncbackup.engine.logs import run_logging

    install(tmp_path, "echoer", "echoer.sh", 'echo "I was given $*"\n')
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "echoer", "EXECUTABLE": "echoer.sh",
                                       "EXECUTE_WITH": "bash",
                                       "PARAMETERS": {"MONGO_PWD": "pw-9f8e7d6c", "CREDENTIAL_PATH": "/etc/creds"}})
    log_file = tmp_path / "run.log"
    with run_logging(log_file, "DEBUG"):
        run_program(resolve(section, general), logging.getLogger("ncbackup.test"))
    text = log_file.read_text()
    assert "pw-9f8e7d6c" not in text
    assert "I was given" in text and "/etc/creds" in text


# A program that records exactly what it received: its arguments, its NCBACKUP_* variables, and the
# secrets file named by --SECRETS_FILE (content, mode) while it runs.
RECORDER = """
    import json, os, stat, sys
    from pathlib import Path
    args = sys.argv[1:]
    record = {"argv": args, "env": {k: v for k, v in os.environ.items() if k.startswith("NCBACKUP_")}}
    if "--SECRETS_FILE" in args:
        path = Path(args[args.index("--SECRETS_FILE") + 1])
        record["file"] = {"path": str(path), "content": json.loads(path.read_text()),
                          "mode": stat.S_IMODE(path.stat().st_mode)}
    Path(os.environ.get("RECORD_TO", "record.json")).write_text(json.dumps(record))
"""


def run_recorder(tmp_path: Path, section_extra: dict, parameters: dict, general_extra: dict | None = None):
    install(tmp_path, "rec", "rec.py", RECORDER)
    (tmp_path / "work").mkdir(exist_ok=True)
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "rec", "EXECUTE_WITH": "python",
                                       "PARAMETERS": parameters, **section_extra}, general_extra)
    program = resolve(section, general)
    run_program(program, logging.getLogger("ncbackup.test"))
    return program, json.loads((tmp_path / "home" / "rec" / "record.json").read_text())


SECRET_PARAMETERS = {"DB_NAME": "shop", "DB_PASSWORD": "pw-2c4e6a8b", "API_TOKEN": "tok-1357"}


def test_by_default_secrets_stay_on_the_command_line_as_the_original_passed_them(tmp_path):
    program, record = run_recorder(tmp_path, {}, SECRET_PARAMETERS)
    assert record["argv"][:6] == ["--DB_NAME", "shop", "--DB_PASSWORD", "pw-2c4e6a8b", "--API_TOKEN", "tok-1357"]
    assert record["env"] == {} and "file" not in record
    assert program.secrets_via == "argv" and program.secret_names == ("DB_PASSWORD", "API_TOKEN")


def test_secrets_via_env_leaves_them_off_the_command_line_and_sets_ncbackup_variables(tmp_path):
    _program, record = run_recorder(tmp_path, {"SECRETS_VIA": "env"}, SECRET_PARAMETERS)
    assert "pw-2c4e6a8b" not in record["argv"] and "tok-1357" not in record["argv"]
    assert "--DB_PASSWORD" not in record["argv"] and record["argv"][:2] == ["--DB_NAME", "shop"]
    assert record["env"] == {"NCBACKUP_DB_PASSWORD": "pw-2c4e6a8b", "NCBACKUP_API_TOKEN": "tok-1357"}


def test_secrets_via_file_passes_a_private_json_file_removed_afterwards(tmp_path):
    _program, record = run_recorder(tmp_path, {"SECRETS_VIA": "file"}, SECRET_PARAMETERS)
    assert "pw-2c4e6a8b" not in record["argv"] and "--DB_PASSWORD" not in record["argv"]
    assert record["argv"][-2] == "--SECRETS_FILE"
    assert record["file"]["content"] == {"DB_PASSWORD": "pw-2c4e6a8b", "API_TOKEN": "tok-1357"}
    assert record["file"]["mode"] == 0o600
    assert Path(record["file"]["path"]).parent == tmp_path / "work"
    assert not Path(record["file"]["path"]).exists()


def test_secret_parameters_names_more_keys_and_a_report_url_token_moves_too(tmp_path):
    _program, record = run_recorder(
        tmp_path, {"SECRETS_VIA": "env", "SECRET_PARAMETERS": ["DSN_TEXT"]},
        {"DSN_TEXT": "host=db password=dsn-pw-99", "DB_NAME": "shop"},
        {"MESSAGE_CONFIG_COMMAND": "https://reports.example/in?token=rep-tok-31"},
    )
    assert record["env"] == {"NCBACKUP_DSN_TEXT": "host=db password=dsn-pw-99",
                             "NCBACKUP_MESSAGE_CONFIG_COMMAND": "https://reports.example/in?token=rep-tok-31"}
    assert not any("dsn-pw-99" in arg or "rep-tok-31" in arg for arg in record["argv"])


def test_flat_mode_drops_the_secret_values_from_the_positions(tmp_path):
    _program, record = run_recorder(tmp_path, {"SECRETS_VIA": "file", "PARAMETERS_MODE": "flat"}, SECRET_PARAMETERS)
    assert record["argv"][0] == "shop" and record["argv"][1] == "--HOSTNAME"
    assert record["file"]["content"] == {"DB_PASSWORD": "pw-2c4e6a8b", "API_TOKEN": "tok-1357"}


def test_unknown_secrets_via_is_a_config_error_listing_the_choices(tmp_path):
    install(tmp_path, "rec", "rec.py", RECORDER)
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "rec", "SECRETS_VIA": "stdin"})
    with pytest.raises(ConfigError, match=r'SCRIPT.SECRETS_VIA: unknown SECRETS_VIA "stdin"; use "argv".*"env".*"file"'):
        resolve(section, general)


def test_the_secrets_file_is_removed_even_when_the_program_fails(tmp_path):
    install(tmp_path, "fail", "fail.py", """
        import sys
        print("got file", sys.argv[-1])
        open("seen.txt", "w").write(sys.argv[-1])
        sys.exit(3)
    """)
    (tmp_path / "work").mkdir()
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "fail", "EXECUTE_WITH": "python",
                                       "SECRETS_VIA": "file", "PARAMETERS": {"PASSWORD": "pw-fail-1"}})
    with pytest.raises(BackupError, match="exited with status 3"):
        run_program(resolve(section, general), logging.getLogger("ncbackup.test"))
    seen = Path((tmp_path / "home" / "fail" / "seen.txt").read_text())
    assert seen.name.startswith(".ncbackup-secrets-") and not seen.exists()


def test_a_secrets_file_that_cannot_be_written_fails_the_step_in_one_sentence(tmp_path):
    import dataclasses

    install(tmp_path, "rec", "rec.py", RECORDER)
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "rec", "SECRETS_VIA": "file",
                                       "PARAMETERS": {"PASSWORD": "pw-nowhere-1"}})
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    program = dataclasses.replace(resolve(section, general), secrets_folder=not_a_folder)
    with pytest.raises(BackupError, match=r"cannot create the secrets file for rec.py in .*a-file"):
        run_program(program, logging.getLogger("ncbackup.test"))


# --- programs other users could rewrite ------------------------------------------------------------


def test_a_program_only_its_owner_may_write_gives_no_warning(tmp_path):
    install(tmp_path, "tidy", "tidy.sh", "true\n").chmod(0o755)
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "tidy", "EXECUTABLE": "tidy.sh"})
    assert resolve(section, general).warnings == ()


@pytest.mark.parametrize(("what", "mode"), [("program", 0o775), ("program", 0o757), ("folder", 0o777),
                                            ("home", 0o770)])
def test_a_program_others_may_rewrite_is_a_warning_naming_the_path(tmp_path, what, mode):
    need(platform.IS_POSIX, "POSIX permissions")
    program = install(tmp_path, "open", "open.sh", "true\n")
    program.chmod(0o755)
    target = {"program": program, "folder": program.parent, "home": tmp_path / "home"}[what]
    target.chmod(mode)
    section, general = load(tmp_path, {"ACTION": "execute", "NAME": "open", "EXECUTABLE": "open.sh"})
    (warning,) = resolve(section, general).warnings
    assert f"{target} is writable by other users (mode {mode:04o})" in warning and f"chmod go-w {target}" in warning
    assert warning.startswith("section SCRIPT:")


def test_a_run_of_a_world_writable_script_ends_with_warnings(tmp_path):
    need(platform.IS_POSIX, "POSIX permissions")
    from ncbackup.commands.run import run_config
    from ncbackup.engine.result import Status
    from ncbackup.exitcodes import EXIT_WARNINGS

    install(tmp_path, "open", "open.sh", "echo ran\n").chmod(0o777)
    load(tmp_path, {"ACTION": "execute", "NAME": "open", "EXECUTABLE": "open.sh", "EXECUTE_WITH": "bash"})
    result = run_config(loads_config((tmp_path / "conf.json").read_text(), path=tmp_path / "conf.json"),
                        level="CRITICAL")
    assert result.exit_status == EXIT_WARNINGS and result.steps[0].status == Status.WARNING
    assert any("writable by other users" in warning for warning in result.steps[0].warnings)
