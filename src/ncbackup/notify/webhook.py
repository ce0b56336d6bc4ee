"""METHOD webhook: the run as one documented JSON document POSTed to any URL, optionally HMAC-signed.

The body (schema in docs/notify.md, bump SCHEMA_VERSION on an incompatible change) carries the figures
a receiver needs to act without parsing text. With SECRET in the credentials, the header
``X-Ncbackup-Signature-256: sha256=<hex>`` is the HMAC-SHA256 of the exact body bytes under SECRET
(GitHub's ``X-Hub-Signature-256`` scheme, so existing verifiers work); ``sent_at`` in the signed body
lets a receiver refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ncbackup.engine.result import Status
from ncbackup.notify import http
from ncbackup.notify.base import Message

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings

SCHEMA_VERSION = 1
SIGNATURE_HEADER = "X-Ncbackup-Signature-256"
ITEM_MAX_CHARS = 2_000          # one step error or warning


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= ITEM_MAX_CHARS:
        return text
    return text[:ITEM_MAX_CHARS] + " [... cut ...]"


def webhook_body(message: Message, *, sent_at: datetime) -> dict[str, Any]:
    """The JSON document of a run (every string masked, every free text bounded)."""
    result = message.result
    set_ids = list(dict.fromkeys(step.set_id for step in result.steps if step.set_id))
    return http.masked({
        "schema_version": SCHEMA_VERSION,
        "is_test": message.is_test,
        "host": result.hostname,
        "config": result.config_path,
        "status": message.status.value,
        "subject": message.subject,
        "text": message.text,
        "set_ids": set_ids,
        "start": result.start.isoformat(timespec="seconds"),
        "end": result.end.isoformat(timespec="seconds") if result.end else None,
        "duration_seconds": round(result.duration_seconds, 3),
        "bytes_in": result.bytes_in,
        "bytes_out": result.bytes_out,
        "size": result.size_human,
        "destinations": result.destinations,
        "errors": [_cut(text) for text in result.errors()],
        "warnings": [_cut(text) for text in result.warnings],
        "steps": [{
            "name": step.name,
            "kind": step.kind,
            "status": step.status.value,
            "set_id": step.set_id,
            "duration_seconds": round(step.duration_seconds, 3),
            "bytes_in": step.bytes_in,
            "bytes_out": step.bytes_out,
            "error": _cut(step.error),
            "warnings": [_cut(text) for text in step.warnings],
        } for step in result.steps],
        "log_tail": message.log_tail,
        "sent_at": sent_at.isoformat(timespec="seconds"),
    })


def signature(secret: str, body: bytes) -> str:
    """The value of SIGNATURE_HEADER for body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


@dataclass
class WebhookNotifier:
    name: str
    outcomes: frozenset[Status]
    url: str
    secret: str | None = None
    timeout_seconds: float = http.TIMEOUT_SECONDS

    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> WebhookNotifier:
        url, _from_credentials = http.resolve_url(args, credentials, section=section, name=name)
        secret = str(credentials.get("SECRET") or "").strip() or None
        return cls(name=name, outcomes=outcomes, url=url, secret=secret)

    def send(self, message: Message) -> None:
        """POST the JSON document once; BackupError on no answer or a non-2xx one."""
        body = json.dumps(webhook_body(message, sent_at=datetime.now(timezone.utc)), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "ncbackup"}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        http.post(self.url, what=f"the webhook of section {self.name}", data=body, headers=headers,
                  timeout_seconds=self.timeout_seconds)
