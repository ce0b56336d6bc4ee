"""The zabbix method against a local trapper that speaks the sender protocol and knows the shipped template's items."""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import yaml

from ncbackup.engine.result import Status
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.zabbix import ZabbixSender
from tests.support import REPO
from tests.unit.notify.metrics_support import START, message, run_result

TEMPLATE = REPO / "examples" / "zabbix_template_ncbackup.yaml"


def template_keys() -> tuple[set[str], list[re.Pattern[str]]]:
    """The template's item keys, and its item prototypes' keys as patterns (an LLD macro matches any value)."""
    (template,) = yaml.safe_load(TEMPLATE.read_text())["zabbix_export"]["templates"]
    keys = {item["key"] for item in template["items"]} | {rule["key"] for rule in template["discovery_rules"]}
    prototypes = [
        re.compile(re.sub(r"\\\{\\#[A-Z]+\\\}", ".+", re.escape(prototype["key"])) + "$")
        for rule in template["discovery_rules"] for prototype in rule["item_prototypes"]
    ]
    return keys, prototypes


@dataclass
class Trapper:
    """What the fake Zabbix server received, and how it behaves."""

    port: int
    host: str = "srv-web1"                      # the only host it knows
    is_discovered: bool = True                  # False: LLD not processed yet, prototype items are refused
    answer_garbage: bool = False
    is_silent: bool = False                     # takes the request, never answers
    response: str = "success"                   # what the answer's "response" says
    requests: list[dict] = field(default_factory=list)

    @property
    def values(self) -> dict[str, str]:
        return {item["key"]: item["value"] for request in self.requests for item in request["data"]}


def _receive_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("short read")
        data += chunk
    return data


@pytest.fixture
def trapper() -> Iterator[Trapper]:
    keys, prototypes = template_keys()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)       # accept() wakes up to see the test is over
    state = Trapper(port=listener.getsockname()[1])
    stop = threading.Event()

    def is_known(item: dict) -> bool:
        if item["host"] != state.host:
            return False
        return item["key"] in keys or (state.is_discovered and any(p.match(item["key"]) for p in prototypes))

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(5)
            with connection:
                header = _receive_exactly(connection, 13)
                assert header[:5] == b"ZBXD\x01", header     # protocol 1, no compression
                (length,) = struct.unpack("<Q", header[5:])
                request = json.loads(_receive_exactly(connection, length))
                assert request["request"] == "sender data"
                state.requests.append(request)
                if state.is_silent:
                    stop.wait(10)
                    continue
                if state.answer_garbage:
                    connection.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                    continue
                failed = sum(1 for item in request["data"] if not is_known(item))
                total = len(request["data"])
                info = f"processed: {total - failed}; failed: {failed}; total: {total}; seconds spent: 0.000071"
                body = json.dumps({"response": state.response, "info": info}).encode()
                connection.sendall(b"ZBXD\x01" + struct.pack("<Q", len(body)) + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def sender(trapper: Trapper, **args: object) -> ZabbixSender:
    return ZabbixSender.from_section({"SERVER": "127.0.0.1", "PORT": trapper.port, **args}, {}, name="ZABBIX",
                                     outcomes=frozenset(Status), section=None)


def test_successful_run_sends_every_value_to_known_items(trapper):
    sender(trapper).send(message(run_result(Status.OK)))
    values = trapper.values
    end = int((START + timedelta(seconds=125)).timestamp())
    assert values["ncbackup.last_run_timestamp"] == str(end)
    assert values["ncbackup.last_success_timestamp"] == str(end)
    assert values["ncbackup.last_run_status"] == "ok"
    assert values["ncbackup.last_run_duration_seconds"] == "125.000"
    assert values["ncbackup.last_run_input_bytes"] == str(4096 + 2048)
    assert values["ncbackup.last_run_output_bytes"] == str(1024 + 512)
    assert json.loads(values["ncbackup.sections.discovery"]) == [
        {"{#SECTION}": "FILESET+STORAGE"}, {"{#SECTION}": "MYSQL+STORAGE"}]
    assert values["ncbackup.section.status[MYSQL+STORAGE]"] == "ok"
    assert values["ncbackup.section.output_bytes[FILESET+STORAGE]"] == "1024"
    assert values["ncbackup.last_run_parts"] == "4"
    assert values["ncbackup.section.parts[MYSQL+STORAGE]"] == "1"
    assert values["ncbackup.storage.output_bytes[s3]"] == str(1024 + 512)
    assert values["ncbackup.storage.last_success_timestamp[local]"] == str(end)
    assert {item["host"] for request in trapper.requests for item in request["data"]} == {"srv-web1"}


def test_failed_run_sends_no_last_success(trapper):
    sender(trapper).send(message(run_result(Status.FAILED)))
    values = trapper.values
    assert values["ncbackup.last_run_status"] == "failed"
    assert values["ncbackup.section.status[MYSQL+STORAGE]"] == "failed"
    assert "ncbackup.last_success_timestamp" not in values        # so nodata() on it sees the silence
    assert values["ncbackup.storage.last_run_success[s3]"] == "0"
    assert "ncbackup.storage.last_success_timestamp[s3]" not in values
    assert "ncbackup.storage.last_success_timestamp[local]" in values


def test_values_the_server_refuses_are_a_failure(trapper):
    trapper.host = "another-name"
    with pytest.raises(BackupError, match=r"took 0 of \d+ values for host srv-web1; import examples/"):
        sender(trapper).send(message(run_result(Status.OK)))


def test_an_answer_other_than_success_is_a_failure(trapper):
    trapper.response = "failed"
    with pytest.raises(BackupError, match="refused the values \\(response 'failed', processed: "):
        sender(trapper).send(message(run_result(Status.OK)))


def test_host_argument_names_the_zabbix_host(trapper):
    trapper.host = "web1.example.org"
    sender(trapper, HOST="web1.example.org").send(message(run_result(Status.OK)))
    assert trapper.values["ncbackup.last_run_status"] == "ok"


def test_undiscovered_section_items_are_only_logged(trapper, caplog):
    trapper.is_discovered = False
    with caplog.at_level(logging.WARNING):
        sender(trapper).send(message(run_result(Status.OK)))
    assert "per-section values" in caplog.text
    assert len(trapper.requests) == 2


def test_test_message_sends_only_the_test_item(trapper):
    sender(trapper).send(message(run_result(Status.OK), is_test=True))
    (request,) = trapper.requests
    assert [item["key"] for item in request["data"]] == ["ncbackup.notify_test"]


def test_server_down_is_one_sentence():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]       # closed when the block ends: nothing listens there
    notifier = ZabbixSender.from_section({"SERVER": "127.0.0.1", "PORT": str(port)}, {}, name="ZABBIX",
                                         outcomes=frozenset(Status), section=None)
    with pytest.raises(BackupError, match=f"could not send to Zabbix server 127.0.0.1 port {port}"):
        notifier.send(message(run_result(Status.OK)))


def test_a_server_that_is_not_zabbix_is_one_sentence(trapper):
    trapper.answer_garbage = True
    with pytest.raises(BackupError, match="did not answer with the Zabbix protocol"):
        sender(trapper).send(message(run_result(Status.OK)))


def test_a_server_that_never_answers_does_not_hang_the_run(trapper):
    trapper.is_silent = True
    notifier = sender(trapper)
    notifier.timeout_seconds = 0.5
    with pytest.raises(BackupError, match="could not send to Zabbix server"):
        notifier.send(message(run_result(Status.OK)))


@pytest.mark.parametrize(("args", "problem", "key"), [
    ({}, "SERVER is missing", "ARGS_DICT.SERVER"),
    ({"SERVER": "z", "PORT": "ten"}, "PORT must be a whole number", "ARGS_DICT.PORT"),
    ({"SERVER": "z", "PORT": 70000}, "between 1 and 65535", "ARGS_DICT.PORT"),
])
def test_bad_arguments_are_refused(args, problem, key):
    with pytest.raises(ConfigError, match=problem) as caught:
        ZabbixSender.from_section(args, {}, name="ZABBIX", outcomes=frozenset(Status), section=None)
    assert caught.value.key == f"ZABBIX.{key}"


def test_default_port_is_the_trapper_port():
    notifier = ZabbixSender.from_section({"SERVER": "z"}, {}, name="ZABBIX", outcomes=frozenset(Status), section=None)
    assert notifier.port == 10051


def test_template_triggers_on_26_hours_without_success():
    (template,) = yaml.safe_load(TEMPLATE.read_text())["zabbix_export"]["templates"]
    expressions = [trigger["expression"] for item in template["items"] for trigger in item.get("triggers", [])]
    assert f"nodata(/{template['template']}/ncbackup.last_success_timestamp,26h)=1" in expressions
    uuids = re.findall(r"uuid: (\S+)", TEMPLATE.read_text())
    assert len(uuids) == len(set(uuids)) and all(re.fullmatch(r"[0-9a-f]{32}", uuid) for uuid in uuids)
