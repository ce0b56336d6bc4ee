"""The sms method against a local fake UCloud API that checks the request signature as UCloud documents it."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ncbackup.engine.logs import add_secret, clear_secrets
from ncbackup.engine.result import Status
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.sms import PROVIDER_MAX_CHARS, UCloudSms, signature
from tests.unit.notify.metrics_support import message, run_result

PUBLIC_KEY = "ucloud-public-key-for-the-test-0123"
PRIVATE_KEY = "private-key-never-leaves-ncbackup-4567"
CREDENTIALS = {"PUBLIC_KEY": PUBLIC_KEY, "PRIVATE_KEY": PRIVATE_KEY, "PROJECT_ID": "org-abc123"}


def documented_signature(fields: dict[str, str], private_key: str) -> str:
    """Written from docs.ucloud.cn/api/summary/signature: sort by name, concatenate name and value, add the key, SHA1."""
    text = ""
    for name in sorted(fields):
        if name != "Signature":
            text += name + fields[name]
    return hashlib.sha1((text + private_key).encode("utf-8")).hexdigest()  # noqa: S324 - the provider's scheme


def test_signature_matches_the_documented_example():
    # The worked example of UCloud's signature page, with its published result.
    params = {"Action": "DescribeUHostInstance", "Region": "cn-bj2", "Limit": "10",
              "PublicKey": "ucloudsomeone@example.com1296235120854146120"}
    expected = "cba5cf5ec4d4233d206b1b54951e3787350a642f"
    assert documented_signature(params, "46f09bb9fab4f12dfc160dae12273d5332b5debe") == expected
    assert signature(params, "46f09bb9fab4f12dfc160dae12273d5332b5debe") == expected


@dataclass
class FakeUCloud:
    url: str
    requests: list[dict[str, str]] = field(default_factory=list)
    ret_code: int = 0
    ret_message: str = ""


@pytest.fixture
def ucloud() -> Iterator[FakeUCloud]:
    state = FakeUCloud(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            assert self.headers["Content-Type"] == "application/x-www-form-urlencoded"
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            fields = dict(urllib.parse.parse_qsl(body, keep_blank_values=True, strict_parsing=True))
            state.requests.append(fields)
            if fields.get("PublicKey") != PUBLIC_KEY or \
                    fields.get("Signature") != documented_signature(fields, PRIVATE_KEY):
                answer = {"RetCode": 171, "Message": "Signature VerifyAC Error", "Action": "SendUSMSMessageResponse"}
            elif state.ret_code:
                answer = {"RetCode": state.ret_code, "Message": state.ret_message, "Action": "SendUSMSMessageResponse"}
            else:
                answer = {"RetCode": 0, "Action": "SendUSMSMessageResponse", "SessionNo": "s-1", "Message": ""}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def sms(ucloud: FakeUCloud, credentials: dict[str, str] = CREDENTIALS, **args: object) -> UCloudSms:
    settings = {"PHONES": "13800000001|13800000002", "TEMPLATE_ID": "UTA1234", "SIG_CONTENT": "ncbackup",
                "BASE_URL": ucloud.url, **args}
    return UCloudSms.from_section(settings, credentials, name="SMS", outcomes=frozenset({Status.FAILED}),
                                  section=None)


def test_failure_is_sent_signed_to_every_phone(ucloud):
    sms(ucloud, REGION="cn-bj2").send(message(run_result(Status.FAILED)))
    (fields,) = ucloud.requests
    assert fields["Action"] == "SendUSMSMessage"
    assert fields["PhoneNumbers.0"] == "13800000001" and fields["PhoneNumbers.1"] == "13800000002"
    assert fields["TemplateId"] == "UTA1234" and fields["SigContent"] == "ncbackup"
    assert fields["ProjectId"] == "org-abc123" and fields["Region"] == "cn-bj2"
    assert fields["TemplateParams.0"].startswith("ncbackup srv-web1: failed")
    assert "MYSQL+STORAGE: mysqldump exited with status 2" in fields["TemplateParams.0"]
    assert PRIVATE_KEY not in json.dumps(fields)       # signed with it, never sent


def test_refusal_is_one_sentence_with_ucloud_message(ucloud):
    ucloud.ret_code, ucloud.ret_message = 215, "Template not found or not approved"
    with pytest.raises(BackupError, match=r"RetCode 215: Template not found or not approved\); check"):
        sms(ucloud).send(message(run_result(Status.FAILED)))


def test_wrong_private_key_fails_the_signature_check(ucloud):
    wrong = {**CREDENTIALS, "PRIVATE_KEY": "another-private-key-890"}
    with pytest.raises(BackupError, match="RetCode 171: Signature VerifyAC Error") as caught:
        sms(ucloud, wrong).send(message(run_result(Status.FAILED)))
    assert "another-private-key-890" not in str(caught.value)


def test_text_is_cut_to_the_limit(ucloud):
    run = run_result(Status.FAILED)
    run.steps[1].error = "x" * 2000
    sms(ucloud, MAX_CHARS=PROVIDER_MAX_CHARS).send(message(run))
    text = ucloud.requests[0]["TemplateParams.0"]
    assert len(text) == PROVIDER_MAX_CHARS and text.endswith("...")


def test_secrets_in_errors_are_masked_in_the_text(ucloud):
    try:
        add_secret("db-password-98765", where="the test")
        run = run_result(Status.FAILED)
        run.steps[1].error = "mysqldump: access denied with password db-password-98765"
        sms(ucloud).send(message(run))
    finally:
        clear_secrets()
    assert "db-password-98765" not in ucloud.requests[0]["TemplateParams.0"]


def test_api_down_is_one_sentence():
    notifier = UCloudSms.from_section(
        {"PHONES": "1", "TEMPLATE_ID": "T", "BASE_URL": "http://127.0.0.1:9/"}, CREDENTIALS, name="SMS",
        outcomes=frozenset({Status.FAILED}), section=None)
    notifier.timeout_seconds = 2
    with pytest.raises(BackupError, match="could not reach the UCloud API at http://127.0.0.1:9/"):
        notifier.send(message(run_result(Status.FAILED)))


@pytest.mark.parametrize(("args", "credentials", "problem", "key"), [
    ({"TEMPLATE_ID": "T"}, CREDENTIALS, "PHONES is missing", "ARGS_DICT.PHONES"),
    ({"PHONES": "1||2", "TEMPLATE_ID": "T"}, CREDENTIALS, "PHONES has an empty number", "ARGS_DICT.PHONES"),
    ({"PHONES": "1"}, CREDENTIALS, "TEMPLATE_ID is missing", "ARGS_DICT.TEMPLATE_ID"),
    ({"PHONES": "1", "TEMPLATE_ID": "T", "MAX_CHARS": 601}, CREDENTIALS, "between 1 and 600",
     "ARGS_DICT.MAX_CHARS"),
    ({"PHONES": "1", "TEMPLATE_ID": "T"}, {"PUBLIC_KEY": "p", "PROJECT_ID": "x"},
     "PRIVATE_KEY is missing from CREDENTIALS_FILE", "CREDENTIALS_FILE.PRIVATE_KEY"),
])
def test_bad_settings_are_refused(args, credentials, problem, key):
    with pytest.raises(ConfigError, match=problem) as caught:
        UCloudSms.from_section(args, credentials, name="SMS", outcomes=frozenset({Status.FAILED}), section=None)
    assert caught.value.key == f"SMS.{key}"


def test_keys_do_not_show_in_the_notifier_repr():
    notifier = UCloudSms.from_section({"PHONES": "1", "TEMPLATE_ID": "T"}, CREDENTIALS, name="SMS",
                                      outcomes=frozenset({Status.FAILED}), section=None)
    assert PRIVATE_KEY not in repr(notifier) and PUBLIC_KEY not in repr(notifier)
