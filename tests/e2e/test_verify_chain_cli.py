"""``ncbackup verify`` of an incremental set checks every set of its chain, and names the one that is missing or bad."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ncbackup.signing import read_secret_key
from tests.support import ensure_signing_key
from tests.support_chains import ChainMaker


@dataclass
class Chain:
    maker: ChainMaker
    config: Path

    @property
    def ids(self) -> list[str]:
        return self.maker.set_ids


@pytest.fixture
def chain(tmp_path) -> Chain:
    """A full and two incrementals on a local storage, signed with the config's own signing key."""
    data = tmp_path / "data"
    (data / "etc").mkdir(parents=True)
    for index in range(20):
        (data / "etc" / f"site-{index}.conf").write_text(f"listen {8000 + index};\n" * 200)
    (data / "big.bin").write_bytes(bytes(range(256)) * 4000)
    maker = ChainMaker.create(tmp_path, data, signer=read_secret_key(ensure_signing_key(tmp_path)))
    maker.backup()
    (data / "etc" / "site-3.conf").write_text("changed\n")
    maker.backup()
    (data / "new.txt").write_text("new\n")
    maker.backup()
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log")},
        "FILESET": {"ACTION": "execute", "NAME": "filesbackup", "PARAMETERS": {"FILESET_INCLUDE": str(data)}},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(maker.key_file)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{maker.storage_folder}'}}"}},
    }))
    return Chain(maker, config)


def verify(ncbackup_cmd: list[str], chain: Chain, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ncbackup_cmd, "verify", "-c", str(chain.config), *args], capture_output=True, text=True,
                          timeout=300)


def test_verify_of_an_incremental_set_checks_its_whole_chain(ncbackup_cmd, chain):
    full, first, second = chain.ids
    result = verify(ncbackup_cmd, chain, "--latest")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for set_id in (full, first, second):
        assert f"set {set_id} is good" in out
    # The full first, the set asked for last: the order a restore reads them.
    assert out.index(f"verifying set {full}") < out.index(f"verifying set {first}") < out.index(f"verifying set {second}")
    assert f"chain of set {second} is good: {full}, {first}, {second}" in out


def test_verify_json_lists_every_set_of_the_chain(ncbackup_cmd, chain):
    full, first, second = chain.ids
    result = verify(ncbackup_cmd, chain, "--set", first, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["set_id"] == first and report["level"] == "incremental" and report["chain"] == [full]
    assert report["good"] is True and report["error"] is None and report["exit_status"] == 0
    assert [(item["set_id"], item["level"], item["status"]) for item in report["sets"]] == [
        (full, "full", "good"), (first, "incremental", "good")]
    assert all(item["decrypted_streams"] == ["files", "files-index"] for item in report["sets"])
    assert all(item["parts_checked"] >= 2 for item in report["sets"])


def test_verify_of_a_full_set_checks_only_that_set(ncbackup_cmd, chain):
    result = verify(ncbackup_cmd, chain, "--set", chain.ids[0], "--json")
    assert result.returncode == 0, result.stderr
    assert [item["set_id"] for item in json.loads(result.stdout)["sets"]] == [chain.ids[0]]


def _rmtree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        path.unlink() if not path.is_dir() else path.rmdir()
    folder.rmdir()


def test_a_missing_set_of_the_chain_is_one_sentence_naming_it_and_the_storage(ncbackup_cmd, chain):
    full, first, second = chain.ids
    _rmtree(chain.maker.set_folder(first))
    result = verify(ncbackup_cmd, chain, "--set", second)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message
    assert f"set {second} needs set {first}, which is not on local:" in message
    listed = verify(ncbackup_cmd, chain, "--set", second, "--json")
    assert listed.returncode == 2
    report = json.loads(listed.stdout)
    assert report["good"] is False and f"needs set {first}" in report["error"] and report["exit_status"] == 2
    assert [(item["set_id"], item["status"]) for item in report["sets"]] == [
        (full, "not checked"), (first, "missing"), (second, "not checked")]


def test_an_incomplete_set_of_the_chain_is_named_as_such(ncbackup_cmd, chain):
    full, first, second = chain.ids
    (chain.maker.set_folder(full) / "manifest.json.minisig").unlink()
    result = verify(ncbackup_cmd, chain, "--set", second)
    assert result.returncode == 2
    assert f"set {second} needs set {full}, which is incomplete on local:" in result.stderr


def test_a_damaged_part_of_the_full_fails_the_incremental_naming_the_part(ncbackup_cmd, chain):
    full, first, second = chain.ids
    part = sorted(chain.maker.set_folder(full).glob("files.tar.zst.age.*"))[-1]
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    result = verify(ncbackup_cmd, chain, "--set", second, "--json")
    assert result.returncode == 2
    assert f"set {second} needs set {full}, which failed its check: part {part.name} of set {full}" in result.stderr
    report = json.loads(result.stdout)
    assert [(item["set_id"], item["status"]) for item in report["sets"]] == [
        (full, "damaged"), (first, "not checked"), (second, "not checked")]


def test_a_file_list_naming_a_set_outside_the_chain_fails_verify(tmp_path, ncbackup_cmd):
    import dataclasses

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a\n")
    maker = ChainMaker.create(tmp_path, data, signer=read_secret_key(ensure_signing_key(tmp_path)))
    maker.backup()
    # A tracker gone wrong: it says the unchanged members are in a set that is no part of the chain.
    assert maker._previous is not None
    maker._previous = {name: dataclasses.replace(seen, carried=dataclasses.replace(seen.carried, set_id="20261129T000000Z"))
                       for name, seen in maker._previous.items()}
    (data / "b.txt").write_text("b\n")
    newest = maker.backup()
    config = tmp_path / "conf.json"
    config.write_text(json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path / "work"), "LOG_FOLDER": str(tmp_path / "log")},
        "ENCRYPTION": {"ACTION": "execute", "NAME": "encryption", "PARAMETERS": {"KEY_FILE": str(maker.key_file)}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage",
                    "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": f"{{'LOCAL_BACKUP': '{maker.storage_folder}'}}"}},
    }))
    result = verify(ncbackup_cmd, Chain(maker, config), "--set", newest)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"the file list files-index of set {newest} says 'data/a.txt' is stored in set 20261129T000000Z" in result.stderr
