"""Drive a Source's streams into plain files, as the pipeline does (used until the full pipeline is wired in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncbackup.errors import BackupError
from ncbackup.sources.base import StreamReport
from tests.support import SIGNER, read_manifest


@dataclass
class Outcome:
    stream: Any
    path: Path
    report: StreamReport
    error: BackupError | None

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def dump_streams(source, folder: Path) -> dict[str, Outcome]:
    """Write every stream of source into folder/<name><suffix>; a failing stream records its error, the rest go on."""
    folder.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, Outcome] = {}
    for stream in source.streams():
        report = StreamReport()
        path = folder / f"{stream.name}{stream.suffix}"
        error = None
        with open(path, "wb") as sink:
            try:
                stream.write_to(sink, report)
            except BackupError as caught:
                error = caught
        outcomes[stream.name] = Outcome(stream, path, report, error)
    return outcomes


@dataclass
class PipelineRun:
    result: Any              # engine.backupset.SetResult
    storage: Any             # the LocalStorage the set went to
    key_file: Path

    def stream(self, name: str):
        return next(stream for stream in self.result.manifest.streams if stream.name == name)

    def restore(self, name: str, **request: Any) -> list[str]:
        """Read the stream back (parts checked, decrypted, decompressed) and hand it to its kind's restorer."""
        from ncbackup.engine.restore import open_plain_stream
        from ncbackup.sources.base import RestoreRequest
        from ncbackup.sources.registry import RESTORERS

        manifest = read_manifest(self.storage, self.result.set_id)
        info = next(stream for stream in manifest.streams if stream.name == name)
        with open_plain_stream(self.storage, manifest, name, key_file=self.key_file) as (plain, stored):
            warnings = RESTORERS[info.kind](plain, RestoreRequest(stream_name=name, kind=info.kind, metadata=info.metadata, **request))
            while plain.read(1 << 20):
                pass
            stored.drain()
        return warnings


def backup_through_pipeline(sources: list, folder: Path, *, part_size_mb: str = "1") -> PipelineRun:
    """Run the real pipeline (zstd, age with a fresh identity, parts of part_size_mb) into a local storage."""
    from ncbackup.config.settings import GeneralSettings, SectionSettings
    from ncbackup.engine.backupset import NamedStorage, PipelineSpec, write_backup_set
    from ncbackup.stages.registry import compression_from_section, encryption_from_section
    from ncbackup.storage.local import LocalStorage

    general = GeneralSettings(hostname="dbhost", work_folder=folder / "work")
    general.work_folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "key.txt"
    encryption = encryption_from_section(
        SectionSettings(name="ENCRYPTION", action="execute", module="encryption",
                        parameters={"KEY_FILE": str(key_file), "FILE_SIZE": part_size_mb}),
        general,
    )
    storage = LocalStorage(folder / "storage" / "dbhost")
    spec = PipelineSpec(signer=SIGNER,
        sources=sources, compression=compression_from_section(None, general), encryption=encryption.stage,
        part_size_bytes=encryption.part_size_bytes, storages=[NamedStorage("STORAGE", storage)],
    )
    return PipelineRun(write_backup_set(spec, hostname="dbhost"), storage, key_file)
