"""Which values of a config are secrets: by key name, and credentials inside URLs.

Every secret found is registered with ``engine.logs.add_secret`` when a config is loaded, so it is
masked by value in every log line, the report and the ``--json`` output. Modules that read a secret
from a file (credential files, password files, URI files) register what they read themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ncbackup.config.settings import Config
from ncbackup.engine.logs import add_secret

# PASSWORD, DB_PASSWD, MONGO_PWD, PASSPHRASE, SECRET_KEY, ACCESSKEYSECRET, API_TOKEN, PRIVATE_KEY, KEY, ?sig=...
_SECRET_NAME = re.compile(
    r"PASSW(OR)?D|PASSPHRASE|PWD|SECRET|TOKEN|PRIVATE|CREDENTIAL|APIKEY|ACCESSKEY"
    r"|(^|[_-])(PASS|KEY|AUTH|SIG|SIGNATURE)$",
    re.IGNORECASE,
)
# ...but a key naming where a secret is (KEY_FILE, MONGO_PWD_FILE, CREDENTIAL_PATH), or an identifier
# (AWS_ACCESS_KEY_ID, SSE_KMS_KEY_ID) or a public key, holds no secret itself.
_NOT_A_SECRET_NAME = re.compile(r"[_-](PATH|FILE|DIR|FOLDER|BIN|ID|NAME|USER)$|PUBLIC", re.IGNORECASE)
# ncbackup's own section keys about secrets hold names and choices, not secrets.
_OWN_KEYS = frozenset({"SECRETS_VIA", "SECRET_PARAMETERS"})
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_NOT_SECRET_VALUES = frozenset({"true", "false", "none", "null"})


def is_secret_name(name: str) -> bool:
    """True when a key's name says its value is a secret (PASSWORD, MONGO_PWD, API_TOKEN, SECRET_KEY...)."""
    if name.upper() in _OWN_KEYS:
        return False
    return bool(_SECRET_NAME.search(name)) and not _NOT_A_SECRET_NAME.search(name)


def is_secret_value(text: str) -> bool:
    """False for values no secret-named key really hides: blank, True/False, None/null."""
    return bool(text.strip()) and text.strip().lower() not in _NOT_SECRET_VALUES


def url_secrets(text: str) -> list[str]:
    """The credentials inside the URLs of text: ``user:PASSWORD@host`` and secret-named query values (``?token=``)."""
    found: list[str] = []
    for match in _URL.finditer(text):
        try:
            parts = urlsplit(match.group())
            password = parts.password
        except ValueError:
            continue
        if password:
            found += [password, unquote(password)]
        found += [value for key, value in parse_qsl(parts.query, keep_blank_values=False) if is_secret_name(key)]
    return [value for value in dict.fromkeys(found) if value]


def secret_entries(values: Mapping[str, Any], *, where: str) -> Iterator[tuple[str, str]]:
    """(where, value) for every secret in a block of settings: secret-named values, nested dicts, URL credentials."""
    for key, value in values.items():
        place = f"{where}.{key}"
        if isinstance(value, Mapping):
            yield from secret_entries(value, where=place)
        elif isinstance(value, list):
            yield from secret_entries({str(index): item for index, item in enumerate(value)}, where=place)
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            if is_secret_name(str(key)) and is_secret_value(text):
                yield place, text
            for secret in url_secrets(text):
                yield f"the credential in the URL of {place}", secret


def register_config_secrets(config: Config) -> None:
    """Register every secret written in the config (GENERAL entries, every section's PARAMETERS and keys)."""
    found = list(secret_entries(config.general.entries, where="GENERAL"))
    if config.general.report_url:
        found += [("the credential in MESSAGE_CONFIG_COMMAND", secret) for secret in url_secrets(config.general.report_url)]
    for section in config.sections:
        found += secret_entries(section.parameters, where=f"{section.name}.PARAMETERS")
        found += secret_entries(section.raw_parameters, where=f"{section.name}.PARAMETERS")
        found += secret_entries(section.extra, where=section.name)
    for where, value in found:
        add_secret(value, where=where)
