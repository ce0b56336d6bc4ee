"""METHOD email against a real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS, implicit TLS, AUTH, certificates."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import need

need("aiosmtpd", "the email notifier's tests need aiosmtpd (pip install aiosmtpd)")

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from ncbackup.engine.logs import add_secret, mask_secrets  # noqa: E402
from ncbackup.engine.result import RunResult, Status, StepResult  # noqa: E402
from ncbackup.errors import BackupError, ConfigError  # noqa: E402
from ncbackup.notify.email import EmailNotifier  # noqa: E402
from ncbackup.notify.message import build_message  # noqa: E402
from ncbackup.notify.registry import Delivery, deliver  # noqa: E402

USER, PASSWORD = "backup", "smtp-pw-48213"


def write_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for name (DNS) and 127.0.0.1 (IP); returns (cert, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names: list[x509.GeneralName] = [x509.DNSName(name)]
    if name == "localhost":
        alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Mailbox:
    port: int
    received: list[tuple[str, list[str], email.message.EmailMessage]] = field(default_factory=list)
    logins: list[tuple[str, str, str]] = field(default_factory=list)   # (mechanism, user, password)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - the name aiosmtpd calls
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((mechanism, login, password))
        is_valid = (login, password) == (USER, PASSWORD)
        # handled=False: aiosmtpd then answers 535 itself (its default, handled=True, answers nothing).
        return AuthResult(success=is_valid, handled=False, auth_data=auth_data if is_valid else None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def smtp_server(security: str, certificate: tuple[Path, Path] | None = None, **options) -> Iterator[Mailbox]:
    mailbox = Mailbox(port=free_port())
    context = None
    if certificate is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
    tls = {"tls_context": context, "require_starttls": True} if security == "starttls" else {}
    if security == "ssl":
        # aiosmtpd counts only STARTTLS as TLS for AUTH; the whole connection is TLS here.
        tls = {"ssl_context": context, "auth_require_tls": False}
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port, authenticator=mailbox.authenticate,
                            server_hostname="localhost", **tls, **options)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    return write_certificate(tmp_path, "localhost")


def notifier(port: int, *, security: str, user: str | None = None, password: str | None = None,
             **args: str) -> EmailNotifier:
    settings = {"SMTP_HOST": "localhost", "SMTP_PORT": str(port), "SECURITY": security, "FROM": "backup@web1.example",
                "TO": "ops@example.com oncall@example.com", "TIMEOUT": "10", **args}
    credentials = {"SMTP_USER": user, "SMTP_PASSWORD": password} if user and password else {}
    return EmailNotifier.from_section(settings, credentials, name="MAIL", outcomes=frozenset(Status), section=None)


def failed_message():
    run = RunResult(config_path="/etc/c.json", hostname="web1")
    run.steps.append(StepResult(name="MYSQL+STORAGE", kind="backup-set", status=Status.FAILED,
                                error="mysqldump exited with 2 <html>"))
    return build_message(run, "ERROR mysqldump exited with 2\n")


def test_plain_smtp_delivers_text_and_html_to_every_recipient():
    with smtp_server("none") as mailbox:
        message = failed_message()
        notifier(mailbox.port, security="none").send(message)
    ((sender, recipients, mail),) = mailbox.received
    assert sender == "backup@web1.example" and recipients == ["ops@example.com", "oncall@example.com"]
    assert mail["Subject"] == "ncbackup web1: failed (1 of 1 sections)" and mail["To"] == "ops@example.com, oncall@example.com"
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "MYSQL+STORAGE failed: mysqldump exited with 2 <html>" in plain and "ERROR mysqldump exited with 2" in plain
    assert "mysqldump exited with 2 &lt;html&gt;" in html


def test_starttls_with_a_private_ca_and_auth(certificate):
    with smtp_server("starttls", certificate) as mailbox:
        notifier(mailbox.port, security="starttls", user=USER, password=PASSWORD, CA_FILE=str(certificate[0])).send(
            failed_message())
    assert len(mailbox.received) == 1 and [login[1:] for login in mailbox.logins] == [(USER, PASSWORD)]


def test_implicit_tls_with_auth_login(certificate):
    with smtp_server("ssl", certificate, auth_exclude_mechanism=["PLAIN"]) as mailbox:
        notifier(mailbox.port, security="ssl", user=USER, password=PASSWORD, CA_FILE=str(certificate[0])).send(
            failed_message())
    assert len(mailbox.received) == 1 and mailbox.logins == [("LOGIN", USER, PASSWORD)]


def test_auth_plain(certificate):
    with smtp_server("ssl", certificate, auth_exclude_mechanism=["LOGIN"]) as mailbox:
        notifier(mailbox.port, security="ssl", user=USER, password=PASSWORD, CA_FILE=str(certificate[0])).send(
            failed_message())
    assert mailbox.logins == [("PLAIN", USER, PASSWORD)]


def test_a_wrong_password_is_one_sentence_without_the_password(certificate):
    add_secret("wrong-pw-99172")
    with smtp_server("starttls", certificate) as mailbox, pytest.raises(BackupError) as error:
        notifier(mailbox.port, security="starttls", user=USER, password="wrong-pw-99172",
                 CA_FILE=str(certificate[0])).send(failed_message())
    assert "refused the login of SMTP_USER (535)" in str(error.value) and "wrong-pw-99172" not in str(error.value)
    assert mailbox.received == []


def test_a_certificate_no_trusted_ca_signed_is_refused(certificate):
    # Without CA_FILE the system CAs decide, and none of them signed the test's certificate: never sent unverified.
    with smtp_server("starttls", certificate) as mailbox, pytest.raises(BackupError, match="cannot be verified"):
        notifier(mailbox.port, security="starttls", user=USER, password=PASSWORD).send(failed_message())
    assert mailbox.received == [] and mailbox.logins == []


def test_a_certificate_for_another_name_is_refused_even_from_the_right_ca(tmp_path):
    other = write_certificate(tmp_path, "mail.other.example")
    with smtp_server("ssl", other) as mailbox, pytest.raises(BackupError, match="cannot be verified.*SMTP_HOST"):
        notifier(mailbox.port, security="ssl", CA_FILE=str(other[0])).send(failed_message())
    assert mailbox.received == []


def test_a_server_down_is_retried_then_a_sentence():
    delivery = Delivery(notifier(free_port(), security="none"), "email", attempts=2, first_wait_seconds=0.01)
    failure = deliver(delivery, failed_message())
    assert failure is not None and "after 2 attempt(s)" in failure and "could not be reached" in failure


def test_auth_over_plain_smtp_is_refused_at_config_time():
    with pytest.raises(ConfigError, match="clear text; use starttls or ssl"):
        notifier(25, security="none", user=USER, password=PASSWORD)


def test_half_of_the_credentials_is_refused():
    with pytest.raises(ConfigError, match="only one of SMTP_USER and SMTP_PASSWORD"):
        EmailNotifier.from_section({"SMTP_HOST": "h", "FROM": "a@b", "TO": "c@d"}, {"SMTP_USER": "u"}, name="MAIL",
                                   outcomes=frozenset(Status), section=None)


def test_default_ports_follow_security():
    assert [notifier_port(security) for security in ("starttls", "ssl", "none")] == [587, 465, 25]


def notifier_port(security: str) -> int:
    return EmailNotifier.from_section({"SMTP_HOST": "h", "FROM": "a@b", "TO": "c@d", "SECURITY": security.upper()}, {},
                                      name="MAIL", outcomes=frozenset(Status), section=None).port


def test_the_password_never_reaches_the_message_or_a_failure(certificate):
    add_secret(PASSWORD)
    with smtp_server("starttls", certificate) as mailbox:
        notifier(mailbox.port, security="starttls", user=USER, password=PASSWORD, CA_FILE=str(certificate[0])).send(
            failed_message())
    ((_sender, _recipients, mail),) = mailbox.received
    assert PASSWORD not in mail.as_string() and mask_secrets(PASSWORD) == "***"
