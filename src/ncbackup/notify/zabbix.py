"""The `zabbix` method: the run's figures as trapper items, sent with the Zabbix sender protocol.

One TCP request to the server or proxy (ARGS_DICT SERVER, PORT 10051): the header ``ZBXD\\x01``, the
body's length as 8 bytes little-endian, then ``{"request": "sender data", "data": [{host, key, value}]}``.
The answer has the same framing, and its ``info`` says ``processed: N; failed: M``: an item the server
did not take (no such host, item or type) fails the delivery. The items and the trigger "no success
for 26 h" are in examples/zabbix_template_ncbackup.yaml. Sections and storages are sent through
low-level discovery (``ncbackup.sections.discovery``) with the run's own items, then in a second
request that may be partly refused until Zabbix has created the discovered items (logged, not a failure).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ncbackup.engine.result import Status
from ncbackup.errors import BackupError
from ncbackup.notify.args import int_arg, text_arg
from ncbackup.notify.base import Message
from ncbackup.notify.values import RunValues, run_values

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings

log = logging.getLogger(__name__)

DEFAULT_PORT = 10051
TIMEOUT_SECONDS = 15.0
HEADER = b"ZBXD\x01"
MAX_ANSWER_BYTES = 1024 * 1024
SECTIONS_DISCOVERY = "ncbackup.sections.discovery"
STORAGES_DISCOVERY = "ncbackup.storages.discovery"
TEST_ITEM = "ncbackup.notify_test"
_INFO = re.compile(r"processed:\s*(?P<processed>\d+);\s*failed:\s*(?P<failed>\d+)", re.IGNORECASE)


def _item(host: str, key: str, value: object) -> dict[str, str]:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    return {"host": host, "key": key, "value": text}


def run_items(values: RunValues, *, host: str) -> list[dict[str, str]]:
    """The run's own items and the discovery of its sections and storages; last success only when it succeeded."""
    def item(key: str, value: object) -> dict[str, str]:
        return _item(host, key, value)

    found = [
        item(SECTIONS_DISCOVERY, json.dumps([{"{#SECTION}": section.section} for section in values.sections])),
        item(STORAGES_DISCOVERY, json.dumps([{"{#STORAGE}": storage.storage} for storage in values.storages])),
        item("ncbackup.last_run_timestamp", int(values.run_timestamp_seconds)),
        item("ncbackup.last_run_status", values.status.value),
        item("ncbackup.last_run_duration_seconds", values.duration_seconds),
        item("ncbackup.last_run_input_bytes", values.bytes_in),
        item("ncbackup.last_run_output_bytes", values.bytes_out),
    ]
    if values.part_count is not None:
        found.append(item("ncbackup.last_run_parts", values.part_count))
    # Zabbix keeps the history: not sending it after a failure is what lets nodata() see the silence.
    if values.is_success:
        found.append(item("ncbackup.last_success_timestamp", int(values.run_timestamp_seconds)))
    return found


def discovered_items(values: RunValues, *, host: str) -> list[dict[str, str]]:
    """The per-section and per-storage items: they exist in Zabbix once it has processed the discovery."""
    def item(key: str, value: object) -> dict[str, str]:
        return _item(host, key, value)

    found = []
    for section in values.sections:
        found += [
            item(f"ncbackup.section.status[{_key_parameter(section.section)}]", section.status.value),
            item(f"ncbackup.section.duration_seconds[{_key_parameter(section.section)}]", section.duration_seconds),
            item(f"ncbackup.section.input_bytes[{_key_parameter(section.section)}]", section.bytes_in),
            item(f"ncbackup.section.output_bytes[{_key_parameter(section.section)}]", section.bytes_out),
        ]
        if section.part_count is not None:
            found.append(item(f"ncbackup.section.parts[{_key_parameter(section.section)}]", section.part_count))
    for storage in values.storages:
        found += [
            item(f"ncbackup.storage.last_run_success[{_key_parameter(storage.storage)}]", int(storage.is_success)),
            item(f"ncbackup.storage.output_bytes[{_key_parameter(storage.storage)}]", storage.bytes_out),
        ]
        if storage.is_success:
            found.append(item(f"ncbackup.storage.last_success_timestamp[{_key_parameter(storage.storage)}]",
                              int(values.run_timestamp_seconds)))
    return found


def _key_parameter(value: str) -> str:
    """value as one item-key parameter: quoted when it holds a character Zabbix's key syntax reserves."""
    if re.fullmatch(r"[A-Za-z0-9_.+\-]+", value):
        return value
    return '"' + value.replace('"', '\\"') + '"'


def frame(payload: bytes) -> bytes:
    """payload with the sender protocol's header: ZBXD, flags 1, its length as 8 bytes little-endian."""
    return HEADER + struct.pack("<Q", len(payload)) + payload


def send_items(server: str, port: int, data: list[dict[str, str]], *, timeout_seconds: float) -> tuple[int, int]:
    """Send data in one request; return (processed, failed) from the answer. BackupError when it fails."""
    where = f"Zabbix server {server} port {port}"
    request = frame(json.dumps({"request": "sender data", "data": data}).encode("utf-8"))
    try:
        with socket.create_connection((server, port), timeout=timeout_seconds) as connection:
            connection.sendall(request)
            header = _receive(connection, len(HEADER) + 8)
            if len(header) < len(HEADER) + 8 or not header.startswith(HEADER):
                raise BackupError(f"{where} did not answer with the Zabbix protocol; check SERVER and PORT "
                                  "(the trapper port, 10051 unless changed)")
            (length,) = struct.unpack("<Q", header[len(HEADER):])
            if length > MAX_ANSWER_BYTES:
                raise BackupError(f"{where} announced an answer of {length} bytes; check SERVER and PORT")
            body = _receive(connection, length)
    except OSError as error:
        raise BackupError(f"could not send to {where} ({error.strerror or type(error).__name__}); check SERVER, "
                          "PORT and that the server's trapper accepts this host") from None
    try:
        answer = json.loads(body.decode("utf-8"))
        info = str(answer.get("info", ""))
        response = answer.get("response")
    except (ValueError, AttributeError):
        raise BackupError(f"{where} sent an answer that is not JSON; check SERVER and PORT") from None
    match = _INFO.search(info)
    if response != "success" or match is None:
        raise BackupError(f"{where} refused the values (response {response!r}, {info or 'no info'}); check "
                          "that it accepts trapper data from this machine")
    return int(match.group("processed")), int(match.group("failed"))


def _receive(connection: socket.socket, size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = connection.recv(min(size, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


@dataclass
class ZabbixSender:
    """Sends the run's figures to a Zabbix trapper."""

    server: str
    port: int = DEFAULT_PORT
    host: str | None = None       # the host's name in Zabbix; None: the run's HOSTNAME
    timeout_seconds: float = TIMEOUT_SECONDS
    name: str = "zabbix"
    outcomes: frozenset[Status] = frozenset(Status)

    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> ZabbixSender:
        return cls(
            server=text_arg(args, "SERVER", name=name, section=section),
            port=int_arg(args, "PORT", name=name, section=section, default=DEFAULT_PORT, low=1, high=65535),
            host=text_arg(args, "HOST", name=name, section=section, default="") or None,
            name=name,
            outcomes=outcomes,
        )

    def send(self, message: Message) -> None:
        """Send every item once; BackupError when the server is unreachable or did not take every item."""
        host = self.host or message.result.hostname
        if message.is_test:  # a test must not record made-up figures as the host's last run
            data = [_item(host, TEST_ITEM, int(message.result.start.timestamp()))]
            later: list[dict[str, str]] = []
        else:
            values = run_values(message.result, message.status)
            data, later = run_items(values, host=host), discovered_items(values, host=host)
        processed, failed = send_items(self.server, self.port, data, timeout_seconds=self.timeout_seconds)
        if failed:
            raise BackupError(
                f"Zabbix server {self.server} took {processed} of {processed + failed} values for host {host}; "
                "import examples/zabbix_template_ncbackup.yaml, link it to that host and check the host's name "
                "(ARGS_DICT HOST)"
            )
        if later:
            # Zabbix creates a new section's items a while after it processed the discovery sent just now:
            # until then they are refused, which is no reason to warn about the run.
            processed, failed = send_items(self.server, self.port, later, timeout_seconds=self.timeout_seconds)
            if failed:
                log.warning("Zabbix server %s took %d of %d per-section values for host %s; sections new to it "
                            "appear after its next discovery", self.server, processed, processed + failed, host)
