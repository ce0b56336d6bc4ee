"""chain_links: the sets an incremental set needs, found on the storage and checked to belong to its chain."""

from __future__ import annotations

import shutil

from ncbackup.engine.chainsets import STATUS_MISSING, STATUS_REFUSED, chain_links, first_problem
from tests.support import TRUST, read_manifest
from tests.support_chains import ChainMaker


def _maker(tmp_path, name: str) -> ChainMaker:
    data = tmp_path / name / "data"
    data.mkdir(parents=True)
    (data / "a.txt").write_text(name)
    return ChainMaker.create(tmp_path / name, data)


def test_a_full_set_needs_nothing_and_an_incremental_its_whole_chain(tmp_path):
    maker = _maker(tmp_path, "a")
    full, first, second = maker.backup(), maker.backup(), maker.backup()
    assert chain_links(maker.storage, read_manifest(maker.storage, full), TRUST) == []
    links = chain_links(maker.storage, read_manifest(maker.storage, second), TRUST)
    assert [link.set_id for link in links] == [full, first]
    assert all(link.is_usable for link in links) and first_problem(links) is None


def test_a_set_of_another_chain_under_the_same_id_is_refused(tmp_path):
    ours, other = _maker(tmp_path, "a"), _maker(tmp_path, "b")
    _full, first, second = ours.backup(), ours.backup(), ours.backup()
    other.backup()
    stranger = other.backup(full=True)       # same id as `first`, but a full: not what `second` was made on
    assert stranger == first
    shutil.rmtree(ours.set_folder(first))
    shutil.copytree(other.set_folder(stranger), ours.set_folder(first))
    links = chain_links(ours.storage, read_manifest(ours.storage, second), TRUST)
    assert links[1].status == STATUS_REFUSED
    assert f"set {second} needs set {first}, but set {first} on {ours.storage.name} is not the one it was made on" in (
        first_problem(links) or "")


def test_a_missing_set_is_named_with_the_storage(tmp_path):
    maker = _maker(tmp_path, "a")
    full, first = maker.backup(), maker.backup()
    shutil.rmtree(maker.set_folder(full))
    (link,) = chain_links(maker.storage, read_manifest(maker.storage, first), TRUST)
    assert link.status == STATUS_MISSING
    assert link.problem is not None and link.problem.startswith(
        f"set {first} needs set {full}, which is not on {maker.storage.name};")
