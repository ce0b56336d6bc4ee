"""The docs follow the code: reference tables written from the option models, figures only from bench/README.md."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

import ncbackup
from ncbackup import docgen
from tests.support import REPO

DOCS = sorted((REPO / "docs").glob("*.md"))
BENCH_README = REPO / "bench" / "README.md"
# Packages whose pydantic models are config options (a plugin's own section, GENERAL, the planner's keys).
OPTION_PACKAGES = ("ncbackup.config", "ncbackup.engine", "ncbackup.sources", "ncbackup.stages", "ncbackup.storage")


def test_generated_tables_match_the_option_models():
    stale = docgen.stale_pages(DOCS, write=False)
    assert not stale, (
        f"the reference tables in {', '.join(page.name for page in stale)} differ from the option models "
        f"(a default, a description or a key changed); run: {docgen.REGENERATE_COMMAND}, and commit the docs"
    )


def test_every_table_is_in_a_page():
    used = docgen.block_names(DOCS)
    assert sorted(set(docgen.tables()) - set(used)) == []


def _option_models() -> set[type[BaseModel]]:
    for package_name in OPTION_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__, prefix=f"{package_name}."):
            importlib.import_module(module.name)
    found: set[type[BaseModel]] = set()
    pending = list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__.startswith(OPTION_PACKAGES):
            found.add(model)
    return found


def test_every_option_model_has_a_table():
    """A new source, stage or storage brings its options model; its keys must reach the docs too."""
    missing = {f"{model.__module__}.{model.__name__}" for model in _option_models()} - {
        f"{model.__module__}.{model.__name__}" for model in docgen.tables().values()
    }
    assert not missing, f"option models without a generated table: {sorted(missing)}; add them to docgen.tables()"


@pytest.mark.parametrize("name", list(docgen.tables()))
def test_every_option_says_what_it_means(name):
    model = docgen.tables()[name]
    undocumented = [field.alias or key for key, field in model.model_fields.items() if not field.description]
    assert not undocumented, f"{model.__name__}: give these fields a Field(description=...): {undocumented}"


def test_a_changed_default_makes_the_page_stale(tmp_path):
    page = tmp_path / "storage.md"
    page.write_text((REPO / "docs" / "storage.md").read_text(encoding="utf-8"), encoding="utf-8")
    row = re.compile(r"(\| `CHUNK_SIZE_MB` \|[^\n]*?\| )`8`( \|)")
    assert row.search(page.read_text(encoding="utf-8")), "storage.md shows CHUNK_SIZE_MB's default 8"
    page.write_text(row.sub(r"\g<1>`16`\g<2>", page.read_text(encoding="utf-8")), encoding="utf-8")

    assert docgen.stale_pages([page], write=False) == [page]
    assert docgen.stale_pages([page], write=True) == [page]
    assert row.search(page.read_text(encoding="utf-8")) and docgen.stale_pages([page], write=False) == []


def test_check_names_the_command_that_fixes_the_docs(tmp_path, monkeypatch, capsys):
    (tmp_path / "config.md").write_text("<!-- BEGIN GENERATED: FILESET -->\nold\n<!-- END GENERATED -->\n")
    monkeypatch.setattr(docgen, "DOCS_FOLDER", tmp_path)
    assert docgen.main(["--check"]) == 1
    assert docgen.REGENERATE_COMMAND in capsys.readouterr().err
    assert docgen.main([]) == 0 and docgen.main(["--check"]) == 0
    assert "`FILESET_INCLUDE`" in (tmp_path / "config.md").read_text()


def test_an_unknown_block_name_is_one_sentence(tmp_path, monkeypatch, capsys):
    (tmp_path / "config.md").write_text("<!-- BEGIN GENERATED: FILESETS -->\n<!-- END GENERATED -->\n")
    monkeypatch.setattr(docgen, "DOCS_FOLDER", tmp_path)
    assert docgen.main(["--check"]) == 2
    assert "unknown generated block 'FILESETS'; use one of GENERAL, FILESET" in capsys.readouterr().err


def test_table_rows_read_defaults_and_ranges_from_the_model():
    from ncbackup.storage.s3 import S3Options

    table = docgen.render_table(S3Options)
    assert "| `CHUNK_SIZE_MB` |" in table
    chunk_row = next(line for line in table.splitlines() if line.startswith("| `CHUNK_SIZE_MB`"))
    default = S3Options.model_fields["chunk_size_mib"].default
    assert f"| `{default}` | whole number, 5 to 5120 |" in chunk_row
    assert "| **required** |" in next(line for line in table.splitlines() if line.startswith("| `BUCKET`"))


def test_every_storage_destination_is_documented():
    from ncbackup.storage.registry import STORAGES

    storage_page = (REPO / "docs" / "storage.md").read_text(encoding="utf-8")
    config_page = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    destination_row = next(line for line in config_page.splitlines() if line.startswith("| `DESTINATION` | `local`"))
    for name in STORAGES:
        assert f"`{name}`" in storage_page, f"docs/storage.md does not describe DESTINATION {name!r}"
        assert f"`{name}`" in destination_row, f"docs/config.md's STORAGE DESTINATION row does not list {name!r}"


# Performance figures: timings ("4.76 s"), ratios ("1.12x"), throughput ("430 MB/s"), and MiB on a line
# about memory ("126 MiB peak RSS"). Sizes of data ("1 GiB") and settings ("8 MiB requests") are not figures.
_TIMING = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))? s\b")
_RATIO = re.compile(r"(?<![\w.])(\d+\.\d+)(?:-(\d+\.\d+))?x\b")
_THROUGHPUT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))? ?[KMG]i?B/s\b")
_MEMORY = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))? MiB\b")
_MEMORY_LINE = re.compile(r"RSS|peak|memory|Memory", re.IGNORECASE)
_DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def performance_figures(text: str) -> list[str]:
    """The numbers a page quotes as measurements."""
    figures = []
    for line in text.splitlines():
        patterns = [_TIMING, _RATIO, _THROUGHPUT] + ([_MEMORY] if _MEMORY_LINE.search(line) else [])
        for pattern in patterns:
            for match in pattern.finditer(line):
                figures.extend(number for number in match.groups() if number)
    return figures


def test_figure_finder_sees_the_kinds_of_figures():
    assert performance_figures("took 5.2-6.4 s against 7.2 s (1.57x); 430 MB/s; peaks at 74 MiB RSS") == [
        "5.2", "6.4", "7.2", "1.57", "430", "74",
    ]
    assert performance_figures("the log rotates at 10 MiB; S3 sends 8 MiB requests of a 1 GiB stream") == []


@pytest.mark.parametrize("page", [*DOCS, REPO / "README.md"], ids=lambda page: page.name)
def test_pages_quote_only_figures_from_bench_readme_with_their_date(page):
    bench_text = BENCH_README.read_text(encoding="utf-8")
    bench_numbers = set(re.findall(r"\d+(?:\.\d+)?", bench_text))
    text = page.read_text(encoding="utf-8")
    figures = performance_figures(text)
    unknown = sorted({figure for figure in figures if figure not in bench_numbers})
    assert not unknown, (
        f"{page.name} quotes figures that bench/README.md does not have: {unknown}; "
        "quote the current bench/README.md (with its date) or link to it"
    )
    if figures:
        assert "bench/README.md" in text, f"{page.name} quotes measurements without pointing to bench/README.md"
        dates = set(_DATE.findall(text)) & set(_DATE.findall(bench_text))
        assert dates, f"{page.name} quotes measurements without the date bench/README.md gives for them"


def test_ncbackup_package_is_the_checkout():
    # The generator writes docs/ beside src/; an installed copy elsewhere would check another tree.
    assert Path(ncbackup.__file__).resolve().is_relative_to(REPO / "src")
    assert docgen.DOCS_FOLDER == REPO / "docs"
