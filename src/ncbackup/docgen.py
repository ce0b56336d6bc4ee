"""Write the config reference tables in docs/*.md from the option models, so the docs cannot drift from the code.

A table sits between ``<!-- BEGIN GENERATED: NAME -->`` and ``<!-- END GENERATED -->`` in a page; NAME
is a key of ``tables()``. Each row is one field of the model: its alias (the config key), its
``description``, its default and the values it accepts. Where the model's default does not say what
happens (``None`` meaning "the server's own", say), the field states it in
``json_schema_extra={"shown_default": ...}``; ``"allowed"`` there replaces the allowed values read from
the type. ``python -m ncbackup.docgen`` rewrites the pages; ``--check`` only says which are stale.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
import typing
from collections.abc import Iterable
from pathlib import Path

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

DOCS_FOLDER = Path(__file__).resolve().parents[2] / "docs"
REGENERATE_COMMAND = "python -m ncbackup.docgen"
_BLOCK = re.compile(
    r"(?P<begin><!-- BEGIN GENERATED: (?P<name>[A-Za-z0-9_-]+) -->\n)(?P<body>.*?)(?P<end><!-- END GENERATED -->)",
    re.DOTALL,
)
_HEADER = "| key | meaning | default | allowed values |\n|---|---|---|---|\n"


def tables() -> dict[str, type[BaseModel]]:
    """Block name -> the model whose fields it lists."""
    from ncbackup.config.general import GeneralKeys
    from ncbackup.engine.plan import FolderOptions
    from ncbackup.notify.email import EmailOptions
    from ncbackup.notify.sections import NotifyOptions
    from ncbackup.retention.policy import CleanupOptions, KeepMonthly, KeepOptions, KeepWeekly
    from ncbackup.snapshots.aliyun_ecs import AliyunEcsOptions
    from ncbackup.snapshots.aws_ebs import AwsEbsOptions
    from ncbackup.snapshots.local import LocalSnapshotOptions
    from ncbackup.snapshots.ucloud import UCloudImageOptions, UCloudUDiskOptions
    from ncbackup.snapshots.vss import VssOptions
    from ncbackup.sources.ad import AdOptions
    from ncbackup.sources.files import FilesetOptions
    from ncbackup.sources.mongo import MongoOptions
    from ncbackup.sources.mssql import MssqlOptions
    from ncbackup.sources.mysql import MysqlOptions
    from ncbackup.sources.postgres import PostgresOptions
    from ncbackup.sources.sqlite import SqliteOptions
    from ncbackup.stages.options import CompressionOptions, EncryptionOptions
    from ncbackup.storage.command import CommandOptions
    from ncbackup.storage.rclone import RcloneOptions
    from ncbackup.storage.s3 import S3Options
    from ncbackup.storage.sftp import SshOptions

    return {
        "GENERAL": GeneralKeys,
        "FILESET": FilesetOptions,
        "MYSQL": MysqlOptions,
        "POSTGRES": PostgresOptions,
        "MONGODB": MongoOptions,
        "SQLITE": SqliteOptions,
        "MSSQL": MssqlOptions,
        "AD": AdOptions,
        "COMPRESSION": CompressionOptions,
        "ENCRYPTION": EncryptionOptions,
        "FOLDERS": FolderOptions,
        "S3": S3Options,
        "SSH": SshOptions,
        "CUSTOM_COMMAND": CommandOptions,
        "RCLONE": RcloneOptions,
        "NOTIFY": NotifyOptions,
        "NOTIFY_EMAIL": EmailOptions,
        "CLEANUP": CleanupOptions,
        "CLEANUP_KEEP": KeepOptions,
        "KEEP_WEEKLY": KeepWeekly,
        "KEEP_MONTHLY": KeepMonthly,
        "SNAPSHOT_LOCAL": LocalSnapshotOptions,
        "SNAPSHOT_AWS_EBS": AwsEbsOptions,
        "SNAPSHOT_UCLOUD_IMAGE": UCloudImageOptions,
        "SNAPSHOT_UCLOUD_UDISK": UCloudUDiskOptions,
        "SNAPSHOT_ALIYUN_ECS": AliyunEcsOptions,
        "SNAPSHOT_VSS": VssOptions,
    }


def _extra(field: FieldInfo) -> dict[str, object]:
    return dict(field.json_schema_extra) if isinstance(field.json_schema_extra, dict) else {}


def _code(value: object) -> str:
    return f"`{value}`"


def _plain_type(annotation: object) -> object:
    """The annotation without ``None`` and ``Annotated`` wrappers: ``LegacyInt | None`` -> int."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _plain_type(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        others = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _plain_type(others[0]) if len(others) == 1 else annotation
    return annotation


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return _code(int(value))
    if isinstance(value, (list, tuple)):
        return _code(" ".join(str(item) for item in value)) if value else "none"
    if value is None:
        return "not set"
    return _code(value)


def default_text(field: FieldInfo) -> str:
    """What the default column says: the field's shown_default, "required", or its default value."""
    shown = _extra(field).get("shown_default")
    if isinstance(shown, str):
        return shown
    if shown is not None:
        return _value_text(shown)
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        return _value_text(field.default_factory())  # type: ignore[call-arg]
    return _value_text(None if field.default is PydanticUndefined else field.default)


def _number(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _bounds(field: FieldInfo) -> str:
    low: object = None
    high: object = None
    low_open = high_open = False
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low, low_open = item.gt, True
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high, high_open = item.lt, True
    if low is not None and high is not None and not low_open and not high_open:
        return f", {_number(low)} to {_number(high)}"
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {_number(low)}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {_number(high)}")
    return (", " + " and ".join(parts)) if parts else ""


def allowed_text(field: FieldInfo) -> str:
    """What the allowed-values column says: the field's "allowed", or the kind of value its type reads."""
    allowed = _extra(field).get("allowed")
    if isinstance(allowed, str):
        return allowed
    if isinstance(allowed, (list, tuple)):
        return ", ".join(_code(item) for item in allowed)
    kind = _plain_type(field.annotation)
    if typing.get_origin(kind) is typing.Literal:
        return ", ".join(_code(item) for item in typing.get_args(kind))
    if kind is bool:
        return "yes/no"
    if kind is int:
        return "whole number" + _bounds(field)
    if kind is float:
        return "number" + _bounds(field)
    if kind is Path:
        return "path"
    if typing.get_origin(kind) is list:
        return "path list" if typing.get_args(kind) == (Path,) else "word list"
    return "text"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_table(model: type[BaseModel]) -> str:
    """One Markdown table: a row per field, in the model's order."""
    from ncbackup.config.legacy import KEY_ALIASES

    rows = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        key_text = " ".join([_code(key)] + [f"({_code(old)})" for old, new in KEY_ALIASES.items() if new == key])
        meaning = field.description or ""
        rows.append(f"| {_cell(key_text)} | {_cell(meaning)} | {_cell(default_text(field))} "
                    f"| {_cell(allowed_text(field))} |\n")
    return _HEADER + "".join(rows)


class UnknownBlock(ValueError):
    """A page names a generated block no model stands behind."""


def regenerate(text: str, *, known: dict[str, type[BaseModel]], where: str = "") -> str:
    """The page text with every generated block rewritten; an unknown block name is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in known:
            raise UnknownBlock(f"{where}: unknown generated block {name!r}; use one of {', '.join(known)}")
        return match.group("begin") + render_table(known[name]) + match.group("end")

    return _BLOCK.sub(replace, text)


def stale_pages(pages: Iterable[Path], *, write: bool) -> list[Path]:
    """The pages whose generated blocks differ from the models (rewritten when write is set)."""
    known = tables()
    stale = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        fresh = regenerate(text, known=known, where=str(page))
        if fresh != text:
            stale.append(page)
            if write:
                page.write_text(fresh, encoding="utf-8")
    return stale


def block_names(pages: Iterable[Path]) -> list[str]:
    """Every generated block name used in these pages, in order of appearance."""
    return [match.group("name") for page in pages for match in _BLOCK.finditer(page.read_text(encoding="utf-8"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE_COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a page is stale")
    args = parser.parse_args(argv)
    try:
        stale = stale_pages(sorted(DOCS_FOLDER.glob("*.md")), write=not args.check)
    except UnknownBlock as error:
        print(f"docgen: error: {error}", file=sys.stderr)
        return 2
    for page in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {page}")
    if args.check and stale:
        print(f"the generated tables differ from the option models; run: {REGENERATE_COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
