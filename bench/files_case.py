"""The files case (issue 3): a generated corpus through tar/zstd/age/split, ncbackup, restic and borg."""

from __future__ import annotations

from pathlib import Path

from bench.case import BenchCase, BenchContext, Peer, RunDirs
from bench.corpus import Corpus, ensure_corpus, tree_digest
from bench.measure import Pipeline

PART_SIZE_MIB = 100
PART_PREFIX = "files.tar.zst.age."


class FilesCase(BenchCase):
    name = "files"
    shell_restore_label = "shell: cat parts | age -d | zstd -d | tar -x"

    def __init__(self) -> None:
        self.corpus: Corpus | None = None
        self.context: BenchContext | None = None
        self._metadata_digest = ""

    def setup(self, context: BenchContext) -> dict:
        self.context = context
        self.corpus = ensure_corpus(context.work_folder, seed=context.seed, size_bytes=context.size_bytes, log=context.log)
        self._metadata_digest = tree_digest(self.corpus.path, with_content=False)[0]
        stats = self.corpus.stats
        return {
            "corpus": str(self.corpus.path), "files": stats.files, "small_files": stats.small_files,
            "text_bytes": stats.text_bytes, "binary_bytes": stats.binary_bytes,
            "content_digest": stats.content_digest,
        }

    def scratch_size_bytes(self) -> int:
        # Parts (< corpus) + a full restore + ext4 overhead for ~20k inodes, with room to spare.
        return 3 * self.context.size_bytes + (1 << 30)

    @property
    def _member(self) -> str:
        """The corpus path relative to / : how tar and ncbackup both name its members."""
        return str(self.corpus.path.resolve().relative_to("/"))

    def _tar_zstd_age(self) -> list[list[str]]:
        return [
            ["tar", "-C", "/", "-cf", "-", self._member],
            ["zstd", "-T0", "-3", "-q", "-c"],
            ["age", "-r", self.context.keys.recipient],  # a public key: fine on a command line
        ]

    def shell_backups(self, dirs: RunDirs) -> dict[str, Pipeline]:
        split = ["split", "-b", f"{PART_SIZE_MIB}M", "-d", "-a", "3", "-", str(dirs.output / PART_PREFIX)]
        return {
            f"shell: tar | zstd -T0 -3 | age | split -b {PART_SIZE_MIB}M": Pipeline(self._tar_zstd_age() + [split]),
            "shell: tar | zstd -T0 -3 | age (no split)": Pipeline(
                self._tar_zstd_age(), stdout_path=dirs.output / "files.tar.zst.age"
            ),
        }

    def shell_restore(self, dirs: RunDirs) -> Pipeline | None:
        parts = sorted(str(part) for part in dirs.output.glob(PART_PREFIX + "*"))
        return Pipeline([
            ["cat", *parts],
            ["age", "-d", "-i", str(self.context.keys.identity_file)],
            ["zstd", "-d", "-q", "-c"],
            ["tar", "-x", "-C", str(dirs.restore_target)],
        ])

    def ncbackup_restore_arguments(self, dirs: RunDirs, config_file: Path) -> list[str] | None:
        # The config names only the recipient (a write-only backup server); the operator brings the identity.
        return [
            "restore", "-c", str(config_file), "--latest", "--target", str(dirs.restore_target),
            "--key-file", str(self.context.keys.identity_file),
        ]

    def ncbackup_sections(self, dirs: RunDirs) -> dict[str, dict]:
        """The seed's chain as a legacy-style config: FILESET -> COMPRESSION -> ENCRYPTION -> STORAGE."""
        return {
            "FILESET": {
                "ACTION": "execute", "NAME": "filesbackup",
                "PARAMETERS": {"FILESET_INCLUDE": str(self.corpus.path)},
            },
            # zstd level 3 on every core: the same work as the baseline's `zstd -T0 -3`.
            "COMPRESSION": {"ACTION": "execute", "NAME": "compression", "PARAMETERS": {"LEVEL": "3"}},
            "ENCRYPTION": {
                "ACTION": "execute", "NAME": "encryption",
                "PARAMETERS": {"KEY_FILE": str(self.context.keys.recipients_file), "FILE_SIZE": str(PART_SIZE_MIB)},
            },
            "STORAGE": {
                "ACTION": "execute", "NAME": "storage",
                "PARAMETERS": {"DESTINATION": "local", "ARGS_DICT": repr({"LOCAL_BACKUP": str(dirs.local_backup)})},
            },
        }

    def check_restore(self, dirs: RunDirs, *, with_content: bool) -> str | None:
        restored = dirs.restore_target / self._member
        if not restored.is_dir():
            return f"the restore produced no {restored}"
        digest, files, total_bytes = tree_digest(restored, with_content=with_content)
        expected = self.corpus.stats.content_digest if with_content else self._metadata_digest
        if digest != expected:
            return (
                f"the restored tree differs from the corpus ({files} files, {total_bytes} bytes restored; "
                f"corpus has {self.corpus.stats.files} files, {self.corpus.stats.size_bytes} bytes)"
            )
        return None

    def peers(self, dirs: RunDirs) -> dict[str, Peer]:
        password_file = self.context.keys.password_file
        restic_env = {
            "RESTIC_REPOSITORY": str(dirs.root / "restic-repo"),
            "RESTIC_PASSWORD_FILE": str(password_file),  # the password stays in a file, off argv
            "RESTIC_CACHE_DIR": str(dirs.root / "restic-cache"),
        }
        borg_env = {
            "BORG_REPO": str(dirs.root / "borg-repo"),
            "BORG_PASSPHRASE": password_file.read_text().strip(),  # environment, never argv
            "BORG_BASE_DIR": str(dirs.root / "borg-base"),        # fresh cache and security dir: a first backup
        }
        return {
            "restic backup (first, local repo)": Peer(
                prepare=[Pipeline([["restic", "init", "-q"]], env=restic_env)],
                timed=Pipeline([["restic", "backup", "-q", str(self.corpus.path)]], env=restic_env),
                output_folder=dirs.root / "restic-repo",
            ),
            "borg create --compression zstd,3 (first)": Peer(
                prepare=[Pipeline([["borg", "init", "--encryption=repokey"]], env=borg_env)],
                timed=Pipeline(
                    [["borg", "create", "--compression", "zstd,3", "::bench", str(self.corpus.path)]], env=borg_env
                ),
                output_folder=dirs.root / "borg-repo",
            ),
        }


def make_case() -> FilesCase:
    return FilesCase()
