"""Incremental sets through `ncbackup run` on real trees and local storages: what is stored, what the index
lists, when a run is full and why, and that a failed run keeps the state of the last complete set."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

from tests.integration.incremental.chains import CLI, Chain
from tests.support import need_binary


def _tree(chain: Chain) -> None:
    (chain.data / "etc").mkdir()
    (chain.data / "etc" / "app.conf").write_text("port 80\n")
    (chain.data / "etc" / "old.conf").write_text("old\n")
    (chain.data / "www").mkdir()
    for number in range(20):
        (chain.data / "www" / f"page{number}.html").write_text(f"<p>{number}</p>" * 200)


def _next_second() -> None:
    time.sleep(1.05)   # set ids are per second; a set in the same second gets a -2 suffix, which is fine too


def test_no_change_incremental_stores_only_the_index(tmp_path):
    need_binary("age", "zstd")
    chain = Chain.make(tmp_path)
    _tree(chain)
    chain.run()
    _next_second()
    chain.run()
    full, incremental = chain.set_ids()
    assert chain.manifest(full).level == "full" and chain.manifest(full).chain == ()
    manifest = chain.manifest(incremental)
    assert (manifest.level, manifest.parent, manifest.chain) == ("incremental", full, (full,))
    assert chain.files_metadata(incremental)["level"] == "incremental"
    assert "full_reason" not in chain.files_metadata(incremental)
    assert chain.tar_names(incremental) == []
    index = chain.index(incremental)
    assert index.keys() == chain.index(full).keys()
    assert {where for _type, where in index.values()} == {full}
    assert manifest.stream("files").bytes_in <= 10240     # the end-of-archive record only
    assert "files: incremental on top of set " + full in chain.log()
    verified = subprocess.run([*CLI, "verify", "-c", str(chain.config), "--latest", "--key-file", str(chain.key)],
                              capture_output=True, text=True, timeout=300)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    target = tmp_path / "restored"
    restored = subprocess.run([*CLI, "restore", "-c", str(chain.config), "--latest", "--target", str(target)],
                              capture_output=True, text=True, timeout=300)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert (target / str(chain.data).lstrip("/") / "www" / "page7.html").read_text() == "<p>7</p>" * 200


def test_a_changed_file_is_stored_and_a_deleted_one_leaves_the_index(tmp_path):
    need_binary("age", "zstd")
    chain = Chain.make(tmp_path)
    _tree(chain)
    chain.run()
    _next_second()
    (chain.data / "etc" / "app.conf").write_text("port 8080\n")
    (chain.data / "etc" / "old.conf").unlink()
    (chain.data / "www" / "new.html").write_text("new")
    chain.run()
    full, incremental = chain.set_ids()
    assert sorted(chain.tar_names(incremental)) == ["etc", "etc/app.conf", "www", "www/new.html"]
    index = chain.index(incremental)
    assert "etc/old.conf" not in index
    assert index["etc/app.conf"] == ("file", None) and index["www/page3.html"] == ("file", full)


def test_lost_or_damaged_state_makes_a_full_set_that_says_why(tmp_path):
    need_binary("age", "zstd")
    chain = Chain.make(tmp_path)
    _tree(chain)
    chain.run()
    (state,) = chain.state_files()
    assert state.stat().st_mode & 0o777 == 0o600 and state.parent.stat().st_mode & 0o777 == 0o700
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    _next_second()
    chain.run()
    damaged = chain.set_ids()[-1]
    assert chain.manifest(damaged).level == "full"
    reason = chain.files_metadata(damaged)["full_reason"]
    assert reason.startswith("the state of the previous set is damaged")
    assert f"files: full because {reason}" in chain.log()
    state.unlink()
    _next_second()
    chain.run()
    lost = chain.set_ids()[-1]
    assert chain.files_metadata(lost)["full_reason"].startswith("there is no state of a previous set")
    _next_second()
    chain.run()
    assert chain.manifest(chain.set_ids()[-1]).parent == lost


def test_parent_pruned_from_one_storage_makes_a_full_on_both(tmp_path):
    need_binary("age", "zstd")
    chain = Chain.make(tmp_path, storages=2)
    _tree(chain)
    chain.run()
    _next_second()
    chain.run()
    first, second = chain.set_ids(0)
    assert chain.set_ids(1) == [first, second]
    assert chain.manifest(second, 0).chain == chain.manifest(second, 1).chain == (first,)
    shutil.rmtree(chain.storages[1] / "web1" / second)      # pruned there
    _next_second()
    chain.run()
    third = chain.set_ids(0)[-1]
    assert chain.manifest(third, 0).level == chain.manifest(third, 1).level == "full"
    reason = chain.files_metadata(third)["full_reason"]
    assert f"set {second} of the chain is not complete on storage" in reason and "backups1" in reason


def test_a_storage_new_in_the_config_makes_a_full(tmp_path):
    need_binary("age", "zstd")
    chain = Chain.make(tmp_path, storages=2)
    _tree(chain)
    chain.write_config(storages=chain.storages[:1])
    chain.run()
    _next_second()
    chain.write_config()
    chain.run()
    latest = chain.set_ids(1)[-1]
    assert chain.manifest(latest, 1).level == "full"
    assert "does not hold set" in chain.files_metadata(latest)["full_reason"]


def test_full_every_and_max_chain_start_a_new_chain(tmp_path):
    need_binary("age", "zstd")
    chain = Chain.make(tmp_path, MAX_CHAIN=2)
    _tree(chain)
    for _ in range(4):
        chain.run()
        _next_second()
    levels = [chain.manifest(set_id).level for set_id in chain.set_ids()]
    assert levels == ["full", "incremental", "incremental", "full"]
    assert chain.files_metadata(chain.set_ids()[-1])["full_reason"].startswith("MAX_CHAIN 2 is reached")
    assert chain.manifest(chain.set_ids()[2]).chain == tuple(chain.set_ids()[:2])

    chain.write_config(FULL_EVERY="1s")
    chain.run()
    latest = chain.set_ids()[-1]
    assert chain.manifest(latest).level == "full"
    assert chain.files_metadata(latest)["full_reason"].startswith("FULL_EVERY 1s is due")


def test_changed_includes_make_a_full(tmp_path):
    need_binary("age", "zstd")
    chain = Chain.make(tmp_path)
    _tree(chain)
    chain.run()
    _next_second()
    chain.write_config(FILESET_EXCLUDE="*.conf")
    chain.run()
    assert "what the stream reads changed" in chain.files_metadata(chain.set_ids()[-1])["full_reason"]


def test_a_failed_run_keeps_the_state_of_the_last_complete_set(tmp_path):
    need_binary("age", "zstd")
    chain = Chain.make(tmp_path)
    _tree(chain)
    chain.run()
    (full,) = chain.set_ids()
    (state,) = chain.state_files()
    before = state.read_bytes()
    host = chain.storages[0] / "web1"
    shutil.move(host, tmp_path / "moved")
    host.write_text("not a folder: every put fails")
    _next_second()
    (chain.data / "etc" / "app.conf").write_text("changed while the storage was down\n")
    chain.run(expect_code=2)
    assert state.read_bytes() == before
    assert chain.state_files() == [state] and not list(state.parent.glob(".*"))   # no temporary file left
    host.unlink()
    shutil.move(tmp_path / "moved", host)
    _next_second()
    chain.run()
    latest = chain.set_ids()[-1]
    assert chain.manifest(latest).parent == full
    assert "etc/app.conf" in chain.tar_names(latest)


def test_a_storage_that_missed_the_set_makes_the_next_run_full(tmp_path):
    need_binary("age", "zstd")
    chain = Chain.make(tmp_path, storages=2)
    _tree(chain)
    chain.run()
    _next_second()
    host = chain.storages[1] / "web1"
    shutil.move(host, tmp_path / "moved")
    host.write_text("not a folder: every put fails")
    chain.run(expect_code=2)             # complete on the first storage only
    complete_on_first = chain.set_ids(0)[-1]
    assert chain.manifest(complete_on_first).level == "full"   # the second storage shows no set at all
    host.unlink()
    shutil.move(tmp_path / "moved", host)
    _next_second()
    chain.run()
    latest = chain.set_ids(0)[-1]
    assert chain.manifest(latest).level == "full"
    assert f"does not hold set {complete_on_first}" in chain.files_metadata(latest)["full_reason"]


def test_list_shows_each_sets_level_and_parent(tmp_path):
    need_binary("age", "zstd")
    chain = Chain.make(tmp_path)
    _tree(chain)
    chain.run()
    _next_second()
    chain.run()
    full, incremental = chain.set_ids()
    listed = subprocess.run([*CLI, "list", "-c", str(chain.config), "--json"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = {row["set_id"]: row for row in json.loads(listed.stdout)}
    assert (rows[full]["level"], rows[full]["parent"]) == ("full", None)
    assert (rows[incremental]["level"], rows[incremental]["parent"], rows[incremental]["chain"]) == (
        "incremental", full, [full])
    table = subprocess.run([*CLI, "list", "-c", str(chain.config)], capture_output=True, text=True, timeout=120).stdout
    assert "LEVEL" in table
    assert any(line.startswith(incremental) and f"incr of {full}" in line for line in table.splitlines()), table


def test_a_state_folder_that_cannot_be_made_gives_full_sets_and_a_warning(tmp_path):
    need_binary("age", "zstd")
    chain = Chain.make(tmp_path)
    _tree(chain)
    (tmp_path / "state").write_text("a file where the state folder should be")
    output = chain.run(expect_code=1)
    assert "the state folder" in output and "cannot be created" in output, output
    (only,) = chain.set_ids()
    assert chain.manifest(only).level == "full" and chain.tar_names(only)
