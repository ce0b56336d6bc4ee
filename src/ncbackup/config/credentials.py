"""A section's CREDENTIALS_FILE: KEY=value lines in a 0600 file, every value masked in logs.

Used by NOTIFY sections and the cloud snapshot methods; the config itself never holds a secret.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from ncbackup.engine.logs import add_secret
from ncbackup.errors import ConfigError


def read_credentials(
    path: Path, *, section_name: str, config_file: Path | None = None, secret_names: Collection[str] | None = None,
) -> dict[str, str]:
    """KEY=value lines of a 0600 file (``#`` comments, blank lines); every value registered as a secret, or only
    those of secret_names (compared case-blind) when given: a domain ``AD`` or a user ``Administrator`` masked
    everywhere would blank those words out of every log line."""
    from ncbackup.stages.keys import refuse_if_readable_by_others

    key = f"{section_name}.CREDENTIALS_FILE"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"the credentials file {path} of section {section_name} does not exist; create it "
                          "(KEY=value lines, mode 0600) or fix CREDENTIALS_FILE", key=key, file=config_file) from None
    except (OSError, UnicodeDecodeError) as error:
        problem = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise ConfigError(f"the credentials file {path} of section {section_name} cannot be read ({problem}); "
                          "fix its permissions or content", key=key, file=config_file) from None
    refuse_if_readable_by_others(path, "credentials file", key=key, file=config_file)
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, separator, value = stripped.partition("=")
        if not separator or not name.strip():
            # The line may be a bare secret: never quote it.
            raise ConfigError(f"line {number} of the credentials file {path} is not KEY=value; write one "
                              "KEY=value per line (# starts a comment)", key=key, file=config_file)
        values[name.strip()] = value.strip()
        is_secret = secret_names is None or name.strip().lower() in {each.lower() for each in secret_names}
        if value.strip() and is_secret:
            add_secret(value.strip(), where=f"{name.strip()} in {path}")
    return values
