"""The FILESET source as the engine sees it: options from a section, two streams, check lines, restore."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from ncbackup.archive.index import read_index
from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import ConfigError, SourceError
from ncbackup.sources.base import RestoreRequest, StreamReport
from ncbackup.sources.files import FilesSource, restore_files, stream_name_for
from ncbackup.sources.registry import RESTORERS, SOURCES

GENERAL = GeneralSettings(hostname="host", work_folder=Path("/tmp"))


def _source(parameters: dict, name: str = "FILESET") -> FilesSource:
    section = SectionSettings(name=name, action="execute", module="filesbackup", parameters=parameters)
    return SOURCES["filesbackup"].factory.from_section(section, GENERAL)


def _write_streams(source: FilesSource) -> list[tuple[object, bytes, StreamReport]]:
    written = []
    for stream in source.streams():
        report = StreamReport()
        sink = io.BytesIO()
        stream.write_to(sink, report)
        written.append((stream, sink.getvalue(), report))
    return written


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "www" / "cache").mkdir(parents=True)
    (root / "www" / "index.html").write_bytes(b"<html>")
    (root / "www" / "cache" / "junk").write_bytes(b"junk")
    (root / "www" / "access.log").write_bytes(b"GET /")
    (root / "conf").mkdir()
    (root / "conf" / "app.ini").write_bytes(b"[app]\n")
    with open(os.fsencode(root / "conf") + b"/r\xe9sum\xe9", "wb") as handle:
        handle.write(b"non-utf8 name")
    return root


def test_registered_as_filesbackup_with_files_restorer():
    assert SOURCES["filesbackup"].factory is FilesSource
    assert RESTORERS["files"] is restore_files
    # No restorer for the index: restore skips it unless named, and then writes it as a plain .jsonl file.
    assert "files-index" not in RESTORERS


def test_stream_names_follow_the_section_name():
    assert stream_name_for("FILESET") == "files"
    assert stream_name_for("WEB FILES") == "files-web-files"
    assert stream_name_for("Fileset_Home") == "files-fileset_home"


def test_fileset_yields_tar_then_index_with_excludes_applied(tree):
    source = _source({
        "FILESET_INCLUDE": f"{tree}/www/ {tree / 'conf'}",
        "FILESET_EXCLUDE": f"{tree}/www/cache *.log",
        "ONE_FILE_SYSTEM": "True",
        "TAR_COMMAND": "tar czf",
    })
    (files, tar_bytes, tar_report), (index, index_bytes, index_report) = _write_streams(source)
    assert (files.name, files.kind, files.suffix) == ("files", "files", ".tar")
    assert (index.name, index.kind, index.suffix) == ("files-index", "files-index", ".jsonl")
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as reader:
        names = reader.getnames()
    prefix = str(tree).lstrip("/")
    assert f"{prefix}/www/index.html" in names
    assert not any("cache" in name or name.endswith(".log") for name in names)
    entries = list(read_index(io.BytesIO(index_bytes)))
    assert [entry.path for entry in entries] == names
    non_utf8 = next(entry for entry in entries if entry.path_bytes.endswith(b"r\xe9sum\xe9"))
    assert (non_utf8.type, non_utf8.size) == ("file", 13)
    assert b"\\udce9" in index_bytes  # escaped in the JSON text, exact bytes on the way back
    assert tar_report.notes == ["TAR_COMMAND is ignored: ncbackup writes the tar archive itself"]
    assert tar_report.metadata["members"] == len(names)
    assert index_report.metadata["entries"] == len(names)
    assert not any(str(tree) in str(value) for value in tar_report.metadata.values())


def test_missing_explicit_include_keeps_the_others_and_fails_the_run_naming_it(tree):
    """One typo or one unmounted disk must not cost the backup of every other path."""
    source = _source({"FILESET_INCLUDE": f"{tree}/www {tree}/nope {tree}/conf"})
    (files, tar_bytes, report), (index, index_bytes, index_report) = _write_streams(source)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as reader:
        names = reader.getnames()
    prefix = str(tree).lstrip("/")
    assert f"{prefix}/www/index.html" in names and f"{prefix}/conf/app.ini" in names
    assert report.errors == [
        f"FILESET_INCLUDE path {tree}/nope does not exist in section FILESET, so it is not in this backup "
        "(the other paths are); create it or remove it from FILESET_INCLUDE"
    ]
    assert report.warnings == []
    assert [entry.path for entry in read_index(io.BytesIO(index_bytes))] == names
    assert index_report.errors == []


def test_no_explicit_include_existing_fails_the_stream_naming_them(tree):
    files, _index = list(_source({"FILESET_INCLUDE": f"{tree}/nope"}).streams())
    with pytest.raises(SourceError, match=f"FILESET_INCLUDE path {tree}/nope does not exist"):
        files.write_to(io.BytesIO(), StreamReport())
    files, _index = list(_source({"FILESET_INCLUDE": f"{tree}/a {tree}/b"}).streams())
    with pytest.raises(SourceError, match=f"no FILESET_INCLUDE path of section FILESET exists \\({tree}/a, {tree}/b\\)"):
        files.write_to(io.BytesIO(), StreamReport())


def test_index_stream_of_a_failed_files_stream_says_skipped_without_repeating_the_cause(tree):
    source = _source({"FILESET_INCLUDE": f"{tree}/nope"})
    files, index = list(source.streams())
    with pytest.raises(SourceError):
        files.write_to(io.BytesIO(), StreamReport())
    with pytest.raises(SourceError) as error:
        index.write_to(io.BytesIO(), StreamReport())
    assert str(error.value) == "skipped: files failed"


def test_missing_default_includes_are_notes(monkeypatch, tmp_path):
    import ncbackup.sources.files as files_module

    monkeypatch.setattr(files_module, "DEFAULT_INCLUDE", (tmp_path / "etc-missing",))
    (files, tar_bytes, report), _ = _write_streams(_source({}))
    assert report.notes == [f"default include path {tmp_path / 'etc-missing'} does not exist; skipped"]
    assert report.warnings == []


@pytest.mark.parametrize("root", ["/", " / ", "//", "C:\\", "c:/"])
def test_whole_file_system_is_refused_as_a_config_error(root):
    with pytest.raises(ConfigError, match="FILESET.FILESET_INCLUDE: .*cannot be backed up as a file set"):
        _source({"FILESET_INCLUDE": root})


def test_relative_include_is_a_config_error():
    with pytest.raises(ConfigError, match="not an absolute path"):
        _source({"FILESET_INCLUDE": "etc"})


def test_nested_include_is_archived_once(tree):
    (files, tar_bytes, report), _ = _write_streams(_source({"FILESET_INCLUDE": f"{tree}/www {tree}"}))
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as reader:
        names = reader.getnames()
    assert len(names) == len(set(names))
    assert f"FILESET_INCLUDE {tree}/www is inside {tree}; archived once" in report.notes


def test_check_reports_one_line_per_include_and_exclude(tree):
    source = _source({
        "FILESET_INCLUDE": f"{tree}/www {tree}/missing",
        "FILESET_EXCLUDE": f"{tree}/www/cache /elsewhere *.tmp",
    })
    lines = [(line.ok, line.text) for line in source.check()]
    assert lines == [
        (True, f"include {tree}/www is readable"),
        (False, f"include {tree}/missing does not exist; create it or remove it from FILESET_INCLUDE"),
        (True, f"exclude {tree}/www/cache is inside an include path"),
        (False, "exclude /elsewhere is not inside any include path, so it excludes nothing; fix FILESET_EXCLUDE"),
        (True, "exclude pattern *.tmp applies to every include path"),
    ]


def test_restore_files_extracts_the_stream_into_the_target_with_path_globs(tree, tmp_path):
    (files, tar_bytes, _), (index, index_bytes, _) = _write_streams(_source({"FILESET_INCLUDE": str(tree)}))
    target = tmp_path / "restore"
    prefix = str(tree).lstrip("/")
    request = RestoreRequest(stream_name="files", kind="files", metadata={}, target=target, paths=(f"{prefix}/conf",))
    assert RESTORERS["files"](io.BytesIO(tar_bytes), request) == []
    restored = target / prefix
    assert sorted(path.name for path in restored.iterdir()) == ["conf"]
    assert (restored / "conf" / "app.ini").read_bytes() == b"[app]\n"
    assert (os.fsencode(restored / "conf") + b"/r\xe9sum\xe9") in [
        os.fsencode(restored / "conf") + b"/" + name for name in os.listdir(os.fsencode(restored / "conf"))
    ]
