"""``ncbackup run`` and ``backup.py -r`` as a user runs them: subprocesses on temp folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import REPO

PROCESS_TIMEOUT_SECONDS = 120


def run_cli(command: list[str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=PROCESS_TIMEOUT_SECONDS,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO / "src")})


def write_config(tmp_path: Path, sections: dict, *, general: dict | None = None) -> Path:
    general_section = {
        "HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "HOME_FOLDER": str(tmp_path / "home"),
        "LOG_FOLDER": str(tmp_path / "log") + "/", "LOCAL_BACKUP": str(tmp_path / "backups"),
    }
    general_section.update(general or {})
    (tmp_path / "log").mkdir(exist_ok=True)
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({"GENERAL": general_section, **sections}, indent=2))
    return path


def add_program(tmp_path: Path, name: str, file: str, body: str) -> None:
    folder = tmp_path / "home" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_text(textwrap.dedent(body))


def assert_no_traceback(completed: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in completed.stderr and "Traceback" not in completed.stdout


def test_external_bash_script_runs_and_its_output_lands_in_the_log(tmp_path, ncbackup_cmd):
    add_program(tmp_path, "greeter", "greet.sh", """
        echo "hello from bash, first argument $1 $2"
    """)
    path = write_config(tmp_path, {"GREET": {"ACTION": "execute", "NAME": "greeter", "EXECUTABLE": "greet.sh",
                                             "EXECUTE_WITH": "bash", "PARAMETERS": {"WHO": "ops team"}}})
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path))
    assert completed.returncode == 0, completed.stderr
    assert "hello from bash, first argument --WHO ops team" in (tmp_path / "log" / "ncbackup.log").read_text()
    assert "[ok     ] GREET" in completed.stdout


def test_python_script_receives_the_original_argument_convention(tmp_path, ncbackup_cmd):
    add_program(tmp_path, "legacy", "legacy.py", f"""
        import sys
        expected = ["--OBJECTIVES", "/srv/a /srv/b", "--DESTINATION", "/tmp/x y",
                    "--HOSTNAME", "web1", "--WORK_FOLDER", {str(tmp_path / "work")!r},
                    "--HOME_FOLDER", {str(tmp_path / "home")!r}, "--LOG_FOLDER", {str(tmp_path / "log") + "/"!r},
                    "--LOCAL_BACKUP", {str(tmp_path / "backups")!r}]
        if sys.argv[1:] != expected:
            print("got", sys.argv[1:], file=sys.stderr)
            sys.exit(9)
        print("arguments as the original passed them")
    """)
    path = write_config(tmp_path, {"LEGACY": {"ACTION": "execute", "NAME": "legacy", "EXECUTE_WITH": "python",
                                              "PARAMETERS": {"TARGETS": "/srv/a /srv/b", "EMPTY": "",
                                                             "DESTINATION": "/tmp/x y"}}})
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path), "-l", "INFO")
    assert completed.returncode == 0, completed.stderr + completed.stdout
    assert "arguments as the original passed them" in completed.stderr


def test_legacy_plugin_class_is_loaded_and_driven(tmp_path, ncbackup_cmd):
    marker = tmp_path / "plugin-ran.txt"
    add_program(tmp_path, "myplugins", "counter.py", f"""
        class Counter:
            def __init__(self, params, logger):
                self.params, self.logger, self.calls = params, logger, []
            def config_plugin(self):
                self.calls.append("config")
            def works_execution(self):
                self.calls.append("works")
                self.logger.info("counting %s", self.params["OBJECTIVES"])
            def output(self):
                self.calls.append("output")
                open({str(marker)!r}, "w").write(",".join(self.calls))
    """)
    path = write_config(tmp_path, {"COUNT": {"ACTION": "load", "FROM": "myplugins", "FILENAME": "counter",
                                             "CLASS": "Counter", "PARAMETERS": {"TARGETS": "/srv"}}})
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path), "-l", "INFO")
    assert completed.returncode == 0, completed.stderr
    assert marker.read_text() == "config,works,output"
    assert "counting /srv" in completed.stderr


def test_broken_plugin_fails_its_step_in_one_sentence(tmp_path, ncbackup_cmd):
    add_program(tmp_path, "bad", "bad.py", """
        class Bad:
            def __init__(self, only_one):
                pass
    """)
    path = write_config(tmp_path, {"BAD": {"ACTION": "load", "FROM": "bad", "CLASS": "Bad"}})
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path))
    assert completed.returncode == 2
    assert "cannot be constructed as Bad(parameters, logger)" in completed.stdout
    assert_no_traceback(completed)


def test_fileset_barrier_script_and_size_and_qa_through_the_cli(tmp_path, ncbackup_cmd):
    data = tmp_path / "data"
    data.mkdir()
    (data / "report.txt").write_text("quarterly numbers\n")
    add_program(tmp_path, "inspect", "inspect.sh", f"""
        # The barrier rule promises the FILESET stream as a plain tar in WORK_FOLDER/files.
        tar -tf {tmp_path}/work/files/files.tar | grep -q "data/report.txt" || exit 5
        echo "tar found by the script"
    """)
    path = write_config(tmp_path, {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "INSPECT": {"ACTION": "execute", "NAME": "inspect", "EXECUTABLE": "inspect.sh", "EXECUTE_WITH": "bash"},
        "COMPRESSION": {"ACTION": "execute", "NAME": "compression",
                        "PARAMETERS": {"OBJECTIVES": str(tmp_path / "work" / "files")}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
        "SIZE": {"ACTION": "load", "FROM": "tools", "FILENAME": "size_calculation", "CLASS": "SizeCalculation",
                 "PARAMETERS": {"OBJECTIVES": str(tmp_path / "work" / "encrypted")}},
        "QA": {"ACTION": "load", "FROM": "qa", "CLASS": "QA"},
    })
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path), "--json")
    report = json.loads(completed.stdout)
    kinds = [(step["name"], step["kind"], step["status"]) for step in report["steps"]]
    assert kinds[:3] == [("FILESET", "to-folder", "ok"), ("INSPECT", "execute", "ok"),
                         ("COMPRESSION+STORAGE", "backup-set", "warning")], kinds  # warning: no ENCRYPTION
    assert kinds[3][:2] == ("SIZE", "size") and kinds[4][:2] == ("QA", "qa")
    assert report["size"] and report["size"] != "N/A"
    assert report["steps"][2]["set_id"]
    # REMOVE_OBJECTIVES defaults to True for COMPRESSION: the folder this run wrote is gone.
    assert not (tmp_path / "work" / "files").exists()
    assert completed.returncode == 1 and report["exit_status"] == 1


def test_json_report_is_versioned(tmp_path, ncbackup_cmd):
    path = write_config(tmp_path, {})
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path), "--json")
    report = json.loads(completed.stdout)
    assert report["schema_version"] == 1 and report["exit_status"] == 0 and report["steps"] == []


def test_hanging_script_is_stopped_at_its_timeout(tmp_path, ncbackup_cmd):
    add_program(tmp_path, "hang", "hang.sh", "sleep 600\n")
    path = write_config(tmp_path, {"HANG": {"ACTION": "execute", "NAME": "hang", "EXECUTABLE": "hang.sh",
                                            "EXECUTE_WITH": "bash", "TIMEOUT": "2"}})
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path))
    assert completed.returncode == 2
    assert "did not finish within TIMEOUT 2 s" in completed.stdout
    assert_no_traceback(completed)


def test_unwritable_work_folder_exits_3_naming_it(tmp_path, ncbackup_cmd):
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    path = write_config(tmp_path, {}, general={"WORK_FOLDER": str(blocker / "work")})
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path))
    assert completed.returncode == 3
    assert "WORK_FOLDER" in completed.stdout and "not a writable folder" in completed.stdout
    assert_no_traceback(completed)


def test_log_folder_parent_missing_exits_3_naming_it(tmp_path, ncbackup_cmd):
    path = write_config(tmp_path, {}, general={"LOG_FOLDER": str(tmp_path / "nope" / "deeper" / "ncbackup.log")})
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path))
    assert completed.returncode == 3
    assert "LOG_FOLDER" in completed.stderr and str(tmp_path / "nope") in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert_no_traceback(completed)


def test_missing_log_folder_is_created_0700_and_said_once_without_a_warning(tmp_path, ncbackup_cmd):
    add_program(tmp_path, "greeter", "greet.sh", "echo hello\n")
    log_folder = tmp_path / "var-log" / "ncbackup"
    log_folder.parent.mkdir()
    path = write_config(tmp_path, {"GREET": {"ACTION": "execute", "NAME": "greeter", "EXECUTABLE": "greet.sh",
                                             "EXECUTE_WITH": "bash"}},
                        general={"LOG_FOLDER": str(log_folder / "ncbackup.log")})
    for _night in range(2):
        completed = run_cli(ncbackup_cmd, "run", "-c", str(path), "--json")
        assert completed.returncode == 0, completed.stderr + completed.stdout
        assert json.loads(completed.stdout)["warnings"] == []
    assert oct(log_folder.stat().st_mode & 0o777) == oct(0o700)
    assert (log_folder / "ncbackup.log").read_text().count(f"created the log folder {log_folder}") == 1


def test_missing_and_broken_configs_exit_3_in_one_sentence(tmp_path, ncbackup_cmd):
    missing = run_cli(ncbackup_cmd, "run", "-c", str(tmp_path / "nothere.json"))
    assert missing.returncode == 3 and "not found" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "GENERAL": {\n    "HOSTNAME": "a"\n    "WORK_FOLDER": "/tmp"\n  }\n}\n')
    completed = run_cli(ncbackup_cmd, "run", "-c", str(broken))
    assert completed.returncode == 3 and "line 4" in completed.stderr
    assert_no_traceback(missing)
    assert_no_traceback(completed)


def test_missing_external_program_exits_3_naming_section_and_line(tmp_path, ncbackup_cmd):
    path = write_config(tmp_path, {"SCRIPT": {"ACTION": "execute", "NAME": "ghost"}})
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path))
    assert completed.returncode == 3
    assert "ghost" in completed.stdout and "line" in completed.stdout
    assert_no_traceback(completed)


def test_argparse_usage_error_exits_3(ncbackup_cmd):
    completed = run_cli(ncbackup_cmd, "run")
    assert completed.returncode == 3


def test_second_concurrent_run_exits_0_and_logs_it(tmp_path, ncbackup_cmd):
    release = tmp_path / "release"
    started = tmp_path / "started"
    add_program(tmp_path, "waiter", "waiter.sh", f"""
        touch {started}
        for i in $(seq 1 600); do [ -e {release} ] && exit 0; sleep 0.1; done
        exit 1
    """)
    path = write_config(tmp_path, {"WAIT": {"ACTION": "execute", "NAME": "waiter", "EXECUTABLE": "waiter.sh",
                                            "EXECUTE_WITH": "bash"}})
    first = subprocess.Popen([*ncbackup_cmd, "run", "-c", str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        for _attempt in range(600):
            if started.exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        assert started.exists(), "the first run never started its script"
        second = run_cli(ncbackup_cmd, "run", "-c", str(path))
        assert second.returncode == 0
        assert f"another ncbackup run holds the lock {tmp_path / 'work' / 'ncbackup.lock'} (pid {first.pid}" in second.stderr
        as_json = run_cli(ncbackup_cmd, "run", "-c", str(path), "--json")
        assert as_json.returncode == 0
        document = json.loads(as_json.stdout)
        assert document["status"] == "skipped" and document["exit_status"] == 0
    finally:
        release.touch()
        first.communicate(timeout=PROCESS_TIMEOUT_SECONDS)
    assert first.returncode == 0
    assert "another ncbackup run holds the lock" in (tmp_path / "log" / "ncbackup.log").read_text()


@pytest.fixture
def report_server():
    received: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            received.append(urllib.parse.parse_qs(body, keep_blank_values=True))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", received
    finally:
        server.shutdown()
        server.server_close()


def test_failed_run_posts_the_legacy_report(tmp_path, ncbackup_cmd, report_server):
    url, received = report_server
    add_program(tmp_path, "fail", "fail.sh", "echo 'the disk said no' >&2\nexit 1\n")
    path = write_config(tmp_path, {"FAIL": {"ACTION": "execute", "NAME": "fail", "EXECUTABLE": "fail.sh",
                                            "EXECUTE_WITH": "bash"}},
                        general={"MESSAGE_CONFIG_COMMAND": url, "MESSAGE_CONFIG_METHOD": "post"})
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path))
    assert completed.returncode == 2
    (fields,) = received
    assert fields["srvname"] == ["web1"] and fields["result"] == ["1"] and fields["bckmethod"] == ["ncscript-py"]
    assert "the disk said no" in fields["error"][0] and "the disk said no" in fields["log"][0]


HOLDER = """
import json, sys
from datetime import datetime, timedelta, timezone
from ncbackup.engine.lock import single_instance
with single_instance(sys.argv[1]) as me:
    # A run that started two days ago and never ended.
    start = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()
    with open(sys.argv[1], "w") as record:
        json.dump({"pid": me.pid, "start": start}, record)
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_run_held_up_past_max_runtime_exits_2_naming_the_holder_and_reports_failure(tmp_path, ncbackup_cmd,
                                                                                       report_server):
    url, received = report_server
    path = write_config(tmp_path, {}, general={"MAX_RUNTIME": "24h", "MESSAGE_CONFIG_COMMAND": url})
    (tmp_path / "work").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "work" / "ncbackup.lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    try:
        assert holder.stdout.readline().strip() == "held"
        completed = run_cli(ncbackup_cmd, "run", "-c", str(path), "--json")
    finally:
        holder.kill()
        holder.wait()
    assert completed.returncode == 2
    document = json.loads(completed.stdout)
    assert document["status"] == "failed" and f"pid {holder.pid}" in document["error"]
    assert "MAX_RUNTIME" in document["error"]
    (fields,) = received
    assert fields["result"] == ["1"] and fields["status"] == ["failed"] and f"pid {holder.pid}" in fields["error"][0]
    assert_no_traceback(completed)


def test_a_skipped_run_reports_success_and_status_skipped(tmp_path, ncbackup_cmd, report_server):
    url, received = report_server
    path = write_config(tmp_path, {}, general={"MESSAGE_CONFIG_COMMAND": url})
    (tmp_path / "work").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.replace("timedelta(days=2)", "timedelta(0)"),
                               str(tmp_path / "work" / "ncbackup.lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    try:
        assert holder.stdout.readline().strip() == "held"
        completed = run_cli(ncbackup_cmd, "run", "-c", str(path), "--json")
    finally:
        holder.kill()
        holder.wait()
    assert completed.returncode == 0 and json.loads(completed.stdout)["status"] == "skipped"
    (fields,) = received
    assert fields["result"] == ["0"] and fields["status"] == ["skipped"]
    assert "another ncbackup run holds the lock" in fields["log"][0]


def test_backup_py_r_runs_the_config_from_a_checkout(tmp_path):
    add_program(tmp_path, "hello", "hello.sh", "echo hi\n")
    path = write_config(tmp_path, {"HELLO": {"ACTION": "execute", "NAME": "hello", "EXECUTABLE": "hello.sh",
                                             "EXECUTE_WITH": "bash"}})
    completed = run_cli([sys.executable, str(REPO / "backup.py")], "-r", "-c", str(path), "-l", "info")
    assert completed.returncode == 0, completed.stderr
    assert "[ok     ] HELLO" in completed.stdout


def test_backup_py_refuses_r_and_t_together(tmp_path):
    path = write_config(tmp_path, {})
    completed = run_cli([sys.executable, str(REPO / "backup.py")], "-r", "-t", "-c", str(path))
    assert completed.returncode == 3 and "not allowed with" in completed.stderr


@pytest.mark.parametrize(("section", "expected"), [
    ({"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": "/"}}, "FILESET_INCLUDE"),
    ({"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": "{'a': "}},
     "ARGS_DICT"),
    ({"ACTION": "launch", "NAME": "x"}, "ACTION"),
])
def test_bad_sections_exit_3_in_one_sentence_naming_the_key(tmp_path, ncbackup_cmd, section, expected):
    path = write_config(tmp_path, {"BAD": section})
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path))
    assert completed.returncode == 3
    output = completed.stdout + completed.stderr
    assert expected in output and "conf.json" in output
    assert_no_traceback(completed)


def test_a_key_file_others_may_read_stops_the_run_with_exit_3_in_one_sentence(tmp_path, ncbackup_cmd):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    key = tmp_path / "key.txt"
    assert run_cli(ncbackup_cmd, "keygen", "--output", str(key)).returncode == 0
    key.chmod(0o644)
    path = write_config(tmp_path, {
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(key)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {"DESTINATION": "local"}},
    })
    completed = run_cli(ncbackup_cmd, "run", "-c", str(path))
    assert completed.returncode == 3
    assert f"can be read by other users (mode 0644); run `chmod 600 {key}`" in completed.stdout + completed.stderr
    assert_no_traceback(completed)
    assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").rglob("*.age*"))


def test_ctrl_c_stops_the_run_and_everything_its_script_started(tmp_path, ncbackup_cmd):
    import signal

    pids = tmp_path / "pids"
    add_program(tmp_path, "hang", "hang.sh", f"""
        sleep 600 &
        echo "$$ $!" > {pids}.tmp && mv {pids}.tmp {pids}
        sleep 600
    """)
    path = write_config(tmp_path, {"HANG": {"ACTION": "execute", "NAME": "hang", "EXECUTABLE": "hang.sh",
                                            "EXECUTE_WITH": "bash"}})
    # Its own session, so the SIGINT below reaches ncbackup only, as a terminal's Ctrl-C reaches the foreground.
    run = subprocess.Popen([*ncbackup_cmd, "run", "-c", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, start_new_session=True)
    try:
        for _attempt in range(600):
            if pids.exists() or run.poll() is not None:
                break
            time.sleep(0.1)
        script, grandchild = (int(pid) for pid in pids.read_text().split())
        started = time.monotonic()
        os.kill(run.pid, signal.SIGINT)
        _out, err = run.communicate(timeout=30)
        assert time.monotonic() - started < 10
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 2 and "interrupted" in err
    for pid in (script, grandchild):
        for _attempt in range(100):
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                break
            if state == "Z":
                break
            time.sleep(0.05)
        else:
            for kill, leftover in ((os.killpg, script), (os.kill, script), (os.kill, grandchild)):
                try:
                    kill(leftover, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            raise AssertionError(f"process {pid} of the script survived Ctrl-C")
