"""Which config values are secrets: key names, URL credentials, nested ARGS_DICT; registered at load."""

from __future__ import annotations

import json

import pytest

from ncbackup.config import loads_config
from ncbackup.config.secret_values import is_secret_name, url_secrets
from ncbackup.engine.logs import mask_secrets


@pytest.mark.parametrize("name", [
    "PASSWORD", "DB_PASSWD", "MONGO_PWD", "PASSPHRASE", "SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "ACCESSKEYSECRET",
    "API_TOKEN", "token", "PRIVATE_KEY", "KEY", "api_key", "SMTP_PASS", "sig", "CREDENTIALS",
])
def test_names_of_secrets(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "KEY_FILE", "MONGO_PWD_FILE", "PASSWORD_FILE", "CREDENTIAL_PATH", "CREDENTIALS_FILE", "AWS_ACCESS_KEY_ID",
    "SSE_KMS_KEY_ID", "PUBLIC_KEY", "MONGO_AUTH_DB", "BYPASS_CACHE", "HOSTNAME", "SECRETS_VIA", "SECRET_PARAMETERS",
])
def test_names_that_hold_no_secret(name):
    assert not is_secret_name(name)


@pytest.mark.parametrize(("text", "expected"), [
    ("mongodb://backup:pw-91x@db1,db2/admin?replicaSet=rs0", ["pw-91x"]),
    ("https://user:p%40ss@report.example/in", ["p%40ss", "p@ss"]),
    ("https://report.example/in?host=web1&token=tk-5521&api_key=ak-77", ["tk-5521", "ak-77"]),
    ("see http://report.example/in?host=web1 for details", []),
    ("no url at all: password=x", []),
])
def test_credentials_inside_urls(text, expected):
    assert url_secrets(text) == expected


def test_loading_a_config_registers_its_secrets_by_name_by_url_and_inside_args_dict(tmp_path):
    text = json.dumps({
        "GENERAL": {"HOSTNAME": "web1", "WORK_FOLDER": str(tmp_path),
                    "MESSAGE_CONFIG_COMMAND": "https://reports.example/in?token=tok-report-1"},
        "MONGODB": {"ACTION": "load", "FROM": "mongo", "CLASS": "MongoBackup",
                    "PARAMETERS": {"MONGO_PWD": "mongo-pw-2", "MONGO_PWD_FILE": "/etc/not-a-secret"}},
        "STORAGE": {"ACTION": "execute", "NAME": "storage", "PARAMETERS": {
            "DESTINATION": "custom_command", "ARGS_DICT": "{'API_TOKEN': 'args-tok-3', 'DEST': '/srv/x'}",
            "UPLOAD_COMMAND_TEMPLATE": "up %(API_TOKEN)s %(stdin)s"}},
        "SCRIPT": {"ACTION": "execute", "NAME": "s", "SECRETS_VIA": "env",
                   "PARAMETERS": {"DSN": "postgresql://app:dsn-pw-4@db/app", "FLAG": True, "TOKEN_SET": "False"}},
    })
    loads_config(text, path=tmp_path / "conf.json")
    masked = mask_secrets("tok-report-1 mongo-pw-2 args-tok-3 dsn-pw-4 /etc/not-a-secret /srv/x env False True")
    assert masked == "*** *** *** *** /etc/not-a-secret /srv/x env False True"
