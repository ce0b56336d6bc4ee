"""Property: after any sequence of file operations, each with a backup after it, every set of the chain
describes the tree exactly as it was then: its index lists every path with its type, reading each member
from the set that holds it gives the content, mode and link target the tree had, and `ncbackup restore`
of that set rebuilds that tree."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from contextlib import redirect_stdout
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncbackup.archive.index import read_index
from ncbackup.cli import main
from tests.integration.incremental.chains import Chain
from tests.support import need_binary

NAMES = ["a", "b", "d/x", "d/y", "d/e/z", "f"]
_NAME = st.sampled_from(NAMES)
OPERATIONS = st.one_of(
    st.tuples(st.just("write"), _NAME, st.binary(max_size=30)),
    st.tuples(st.just("append"), _NAME, st.binary(min_size=1, max_size=5)),
    st.tuples(st.just("delete"), _NAME),
    st.tuples(st.just("rename"), _NAME, _NAME),
    st.tuples(st.just("chmod"), _NAME, st.sampled_from([0o600, 0o644, 0o755, 0o700])),
    st.tuples(st.just("to_folder"), _NAME),
    st.tuples(st.just("symlink"), _NAME, st.sampled_from(["a", "../b", "missing", "d"])),
    st.tuples(st.just("hardlink"), _NAME, _NAME),
)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _apply(root: Path, operation: tuple) -> None:
    """Do one operation if it makes sense on the tree as it is (else nothing); parents are created as needed."""
    kind, name, *rest = operation
    path = root / name
    try:
        if kind in ("write", "symlink", "to_folder") or (kind in ("rename", "hardlink") and os.path.lexists(path)):
            for parent in reversed(path.relative_to(root).parents[:-1]):
                folder = root / parent
                if os.path.lexists(folder) and not folder.is_dir():
                    _remove(folder)            # a file where a folder is needed: the file becomes a folder
                folder.mkdir(exist_ok=True)
        if kind == "write":
            _remove(path) if path.is_dir() and not path.is_symlink() else None
            path.write_bytes(rest[0]) if not path.is_symlink() else None
        elif kind == "append" and path.is_file() and not path.is_symlink():
            with open(path, "ab") as file:
                file.write(rest[0])
        elif kind == "delete":
            _remove(path)
        elif kind == "rename" and os.path.lexists(path):
            target = root / rest[0]
            if target != path and path not in target.parents:
                target.parent.mkdir(parents=True, exist_ok=True)
                _remove(target)
                path.rename(target)
        elif kind == "chmod" and path.exists() and not path.is_symlink():
            path.chmod(rest[0])
        elif kind == "to_folder":
            if not path.is_dir() or path.is_symlink():
                _remove(path)
                path.mkdir()
                (path / "inner").write_bytes(b"was a file")
            else:
                shutil.rmtree(path)
                path.write_bytes(b"was a folder")
        elif kind == "symlink":
            _remove(path)
            os.symlink(rest[0], path)
        elif kind == "hardlink" and path.is_file() and not path.is_symlink():
            target = root / rest[0]
            if target != path and path not in target.parents:
                target.parent.mkdir(parents=True, exist_ok=True)
                _remove(target)
                os.link(path, target)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError):
        pass


def tree_of(root: Path) -> dict[str, tuple]:
    """path -> what a restore must reproduce: type, content or target, mode."""
    out: dict[str, tuple] = {".": ("dir", root.stat().st_mode & 0o7777)}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        mode = path.lstat().st_mode & 0o7777
        if path.is_symlink():
            out[relative] = ("symlink", os.readlink(path))
        elif path.is_dir():
            out[relative] = ("dir", mode)
        else:
            out[relative] = ("file", path.read_bytes(), mode)
    return out


class ChainReader:
    """Reads a set of the chain as a restore would: its index, each member from the set that holds it."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._tars: dict[str, tarfile.TarFile] = {}

    def _tar(self, set_id: str) -> tarfile.TarFile:
        if set_id not in self._tars:
            plain = io.BytesIO(self.chain.decrypt(set_id, "files.tar.zst"))
            self._tars[set_id] = tarfile.open(fileobj=plain, mode="r:")  # noqa: SIM115 - in memory, kept for the test
        return self._tars[set_id]

    def tree(self, set_id: str) -> dict[str, tuple]:
        prefix = str(self.chain.data).lstrip("/")
        out: dict[str, tuple] = {}
        for entry in read_index(io.BytesIO(self.chain.decrypt(set_id, "files-index.jsonl.zst"))):
            holder = self._tar(entry.set or set_id)
            member = holder.getmember(entry.path)
            assert entry.offset == member.offset, (entry, member.offset)
            relative = entry.path[len(prefix):].lstrip("/") or "."
            if entry.type == "symlink":
                out[relative] = ("symlink", member.linkname)
            elif entry.type == "dir":
                out[relative] = ("dir", member.mode)
            else:
                if entry.type == "hardlink":
                    # a hard link points at a first name stored in the same set's stream
                    first = holder.getmember(member.linkname)
                    assert first.isfile(), (entry, first)
                    member_data = holder.extractfile(first)
                else:
                    member_data = holder.extractfile(member)
                assert member_data is not None
                out[relative] = ("file", member_data.read(), member.mode)
        return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=8))
def test_every_set_of_a_chain_describes_the_tree_as_it_was(tmp_path_factory, operations):
    need_binary("age", "zstd")
    tmp_path = tmp_path_factory.mktemp("chain")
    chain = Chain.make(tmp_path, MAX_CHAIN=20)
    (chain.data / "a").write_bytes(b"start")
    expected: list[dict[str, tuple]] = []
    for operation in [("write", "a", b"start"), *operations]:
        _apply(chain.data, operation)
        with redirect_stdout(io.StringIO()):
            assert main(["run", "-c", str(chain.config)]) == 0
        expected.append(tree_of(chain.data))
    set_ids = chain.set_ids()
    assert len(set_ids) == len(expected)
    assert [chain.manifest(set_id).level for set_id in set_ids] == ["full"] + ["incremental"] * (len(set_ids) - 1)
    reader = ChainReader(chain)
    for set_id, tree in zip(set_ids, expected, strict=True):
        assert reader.tree(set_id) == tree, set_id
    for number, (set_id, tree) in enumerate(zip(set_ids, expected, strict=True)):
        target = tmp_path / f"restored-{number}"
        with redirect_stdout(io.StringIO()) as said:
            code = main(["restore", "-c", str(chain.config), "--set", set_id, "--target", str(target)])
        assert code == 0, said.getvalue()
        assert tree_of(target / str(chain.data).lstrip("/")) == tree, set_id
