"""The HTTP side every webhook notifier shares: where the URL may come from, one bounded POST, a checked answer.

A webhook URL often is the credential itself (a token in the query or the path), so: a URL written in
ARGS_DICT may carry no password and no query (those URLs go in CREDENTIALS_FILE as ``URL=``), errors
name only the scheme, host and port, and the path and query of a credential URL are masked everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ncbackup.config.secret_values import url_secrets
from ncbackup.engine.logs import add_secret, mask_secrets
from ncbackup.errors import BackupError, ConfigError

if TYPE_CHECKING:
    import requests

    from ncbackup.config.settings import SectionSettings

TIMEOUT_SECONDS = 10.0
PROVIDER_TEXT_MAX_CHARS = 200    # of a provider's error message quoted in ours
URL_TOKEN_MIN_CHARS = 8          # shorter parts of a credential URL are words, not tokens


def section_name(section: SectionSettings | None, name: str) -> str:
    return section.name if section is not None else name


def config_problem(message: str, *, key: str, section: SectionSettings | None) -> ConfigError:
    """A ConfigError pointing at the section's ARGS_DICT (or its start) when the position is known."""
    position = (section.parameter_positions.get("ARGS_DICT") or section.position) if section else None
    return ConfigError(message, file=position.file if position else None,
                       line=position.line if position else None, key=key)


def endpoint(url: str) -> str:
    """scheme://host[:port] of url: what an error may say about where it sent (never path or query)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def resolve_url(args: Mapping[str, Any], credentials: Mapping[str, str], *, section: SectionSettings | None,
                name: str, default: str | None = None, allowed_query_keys: frozenset[str] = frozenset(),
                ) -> tuple[str, bool]:
    """The URL to send to and whether it came from CREDENTIALS_FILE; ConfigError when absent, doubled or unsafe.

    ARGS_DICT ``URL`` is written in the config, which is no place for a secret: it may carry no
    ``user:password@`` and no query (other than allowed_query_keys, which the method replaces anyway).
    """
    where = section_name(section, name)
    args_url = str(args.get("URL") or "").strip()
    credentials_url = str(credentials.get("URL") or "").strip()
    if args_url and credentials_url:
        raise config_problem(f"section {where} has URL both in ARGS_DICT and in its CREDENTIALS_FILE; keep one "
                             "(a URL that carries a token belongs in the credentials file)", key="URL", section=section)
    url = credentials_url or args_url or (default or "")
    if not url:
        raise config_problem(f"section {where} has no URL; put URL=<webhook URL> in its CREDENTIALS_FILE",
                             key="URL", section=section)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Not the URL itself in the message: it may be a mistyped credential.
        raise config_problem(f"the URL of section {where} is no http(s) URL with a host; check it",
                             key="URL", section=section)
    if args_url:
        query_keys = {key for key, _value in parse_qsl(parts.query, keep_blank_values=True)}
        if parts.password or parts.username or query_keys - allowed_query_keys:
            raise config_problem(
                f"the URL in ARGS_DICT of section {where} carries a credential (user:password@ or a ?query); "
                "move it to the section's CREDENTIALS_FILE as URL=...", key="URL", section=section)
    if credentials_url:
        register_url_secrets(credentials_url, where=f"the URL in the credentials of section {where}")
    return url, bool(credentials_url)


def register_url_secrets(url: str, *, where: str) -> None:
    """Mask the parts of a credential URL that libraries quote on their own (urllib3 logs "POST /path?query")."""
    parts = urlsplit(url)
    for secret in url_secrets(url):
        add_secret(secret, where=where)
    # Only parts long enough to be a token: masking "/in" or "1" would blank those letters in every log line.
    candidates = [parts.path, parts.path.lstrip("/"), parts.query]
    candidates += [value for _key, value in parse_qsl(parts.query)]
    for candidate in candidates:
        if len(candidate) >= URL_TOKEN_MIN_CHARS:
            add_secret(candidate, where=where)


def with_path_suffix(url: str, suffix: str) -> str:
    """url with suffix appended to its path (``/start``), its query kept."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))


def cut_utf8(text: str, limit_bytes: int, *, marker: str = "\n[... cut ...]") -> str:
    """text within limit_bytes of UTF-8, never splitting a character; the beginning kept, marked when cut."""
    data = text.encode("utf-8")
    if len(data) <= limit_bytes:
        return text
    room = max(limit_bytes - len(marker.encode("utf-8")), 0)
    return data[:room].decode("utf-8", errors="ignore") + marker


def post(url: str, *, what: str, json_body: Any = None, data: bytes | None = None,
         headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None,
         method: str = "POST", timeout_seconds: float = TIMEOUT_SECONDS) -> requests.Response:
    """One request; the answer when it is 2xx, else BackupError saying what and where (host only, no token)."""
    # Imported here: requests costs ~0.1 s at start-up and only runs that notify need it.
    import requests

    all_headers = dict(headers or {})
    if json_body is not None:
        # UTF-8 as is, not \uXXXX escapes: provider limits count bytes, and escapes double a Chinese text.
        data = json_bytes(json_body)
        all_headers.setdefault("Content-Type", "application/json; charset=utf-8")
    try:
        answer = requests.request(method, url, data=data, headers=all_headers,
                                  params=dict(params or {}), timeout=timeout_seconds,
                                  # A redirect would resend the message (and its token) elsewhere.
                                  allow_redirects=False)
    except requests.Timeout:
        raise BackupError(f"{what}: {endpoint(url)} did not answer within {timeout_seconds:.0f} s; "
                          "check that the server is up") from None
    except requests.RequestException as error:
        # Not str(error): requests quotes the whole URL, token included.
        raise BackupError(f"{what}: could not reach {endpoint(url)} ({type(error).__name__}); "
                          "check the URL and the network") from None
    if not 200 <= answer.status_code < 300:
        detail = provider_text(answer.text)
        raise BackupError(f"{what}: {endpoint(url)} answered HTTP {answer.status_code}"
                          + (f" ({detail})" if detail else "") + "; check the URL and the credentials")
    return answer


def json_bytes(value: Any) -> bytes:
    """value as the JSON bytes post() sends."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def fit_body(build: Callable[[int], dict[str, Any]], *, max_body_bytes: int) -> dict[str, Any]:
    """build(text_budget_bytes) with the largest budget whose JSON fits max_body_bytes (markup and quoting included)."""
    budget = max_body_bytes
    while True:
        body = build(budget)
        size = len(json_bytes(body))
        if size <= max_body_bytes or budget <= 0:
            return body
        budget -= size - max_body_bytes + 64


def provider_text(text: str) -> str:
    """A provider's message, masked and cut, fit to quote in one sentence."""
    one_line = " ".join(mask_secrets(text or "").split())
    return one_line[:PROVIDER_TEXT_MAX_CHARS]


def json_answer(answer: requests.Response, *, what: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer; BackupError when the provider answered something else."""
    try:
        body = answer.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        raise BackupError(f"{what}: the answer was no JSON object ({provider_text(answer.text) or 'empty'}); "
                          "check that the URL is the provider's webhook")
    return body


def check_error_code(answer: requests.Response, *, what: str, code_keys: tuple[str, ...],
                     message_keys: tuple[str, ...]) -> None:
    """BackupError when the JSON answer's error code (the first of code_keys present) is not 0."""
    body = json_answer(answer, what=what)
    code = next((body[key] for key in code_keys if key in body), None)
    if code is None:
        raise BackupError(f"{what}: the answer has no {code_keys[0]} ({provider_text(answer.text)}); "
                          "check that the URL is the provider's webhook")
    if code != 0:
        message = next((str(body[key]) for key in message_keys if key in body), "")
        raise BackupError(f"{what}: the provider refused the message ({code_keys[0]} {code}"
                          + (f": {provider_text(message)}" if message else "") + "); check the credentials")


def masked(value: Any) -> Any:
    """A JSON-ready value with every registered secret masked in every string."""
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return mask_secrets(value) if isinstance(value, str) else value


def one_of(args: Mapping[str, Any], key: str, choices: tuple[str, ...], *, section: SectionSettings | None,
           name: str) -> str:
    """ARGS_DICT key as one of choices (the first is the default); ConfigError listing them otherwise."""
    value = str(args.get(key) or choices[0]).strip().lower()
    if value not in choices:
        raise config_problem(f"{key} of section {section_name(section, name)} is {value!r}; use one of: "
                             + ", ".join(choices), key=key, section=section)
    return value


def required_credential(credentials: Mapping[str, str], key: str, *, section: SectionSettings | None,
                        name: str) -> str:
    value = str(credentials.get(key) or "").strip()
    if not value:
        raise config_problem(f"section {section_name(section, name)} needs {key}=... in its CREDENTIALS_FILE",
                             key=key, section=section)
    return value
