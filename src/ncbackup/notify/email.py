"""METHOD email: the run's message over SMTP (STARTTLS, implicit TLS or plain), plain text plus an HTML part.

Certificates are always verified: against the system CAs, or against CA_FILE for a private CA; the
server's name must match SMTP_HOST. SMTP_USER and SMTP_PASSWORD come from the credentials file.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ncbackup.config.types import LegacyFloat, LegacyInt, LegacyPath, WordList, parse_options
from ncbackup.engine.result import Status
from ncbackup.errors import BackupError, ConfigError
from ncbackup.notify.base import Message

if TYPE_CHECKING:
    from ncbackup.config.settings import SectionSettings

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class EmailOptions(BaseModel):
    """ARGS_DICT keys of METHOD email."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    smtp_host: str = Field(alias="SMTP_HOST", min_length=1, description="the SMTP server's name (checked against its certificate)")
    smtp_port: LegacyInt | None = Field(None, alias="SMTP_PORT", ge=1, le=65535,
                                        json_schema_extra={"shown_default": "587 (starttls), 465 (ssl), 25 (none)"},
                                        description="the SMTP server's port")
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", alias="SECURITY", description="`starttls`, `ssl` (implicit TLS) or `none` (plain text: only on a "
                                                  "trusted network; authentication is then refused)")
    sender: str = Field(alias="FROM", min_length=3, description="the From address")
    recipients: WordList = Field(alias="TO", min_length=1, description="the recipients, space-separated")
    ca_file: LegacyPath | None = Field(None, alias="CA_FILE", json_schema_extra={"shown_default": "the system CAs"},
                                       description="PEM file of the CA that signed the server's certificate (a private CA)")
    timeout_seconds: LegacyFloat = Field(30.0, alias="TIMEOUT", gt=0, description="seconds per SMTP attempt")

    @model_validator(mode="before")
    @classmethod
    def _lower_security(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("SECURITY"), str):
            return {**data, "SECURITY": data["SECURITY"].strip().lower()}
        return data


@dataclass
class EmailNotifier:
    name: str
    outcomes: frozenset[Status]
    options: EmailOptions
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_section(cls, args: Mapping[str, Any], credentials: Mapping[str, str], *, name: str,
                     outcomes: frozenset[Status], section: SectionSettings | None) -> EmailNotifier:
        if section is not None:
            options = parse_options(EmailOptions, section, parameters=args, within="ARGS_DICT")
        else:
            options = EmailOptions.model_validate(dict(args))
        user = credentials.get("SMTP_USER") or None
        password = credentials.get("SMTP_PASSWORD") or None
        if (user is None) != (password is None):
            raise ConfigError(f"section {name}: the credentials file has only one of SMTP_USER and SMTP_PASSWORD; "
                              "give both for authentication, or neither", key=f"{name}.CREDENTIALS_FILE")
        if user is not None and options.security == "none":
            raise ConfigError(f"section {name}: SMTP authentication over SECURITY none would send the password in "
                              "clear text; use starttls or ssl", key=f"{name}.ARGS_DICT.SECURITY")
        return cls(name=name, outcomes=outcomes, options=options, user=user, password=password)

    @property
    def port(self) -> int:
        return self.options.smtp_port or DEFAULT_PORTS[self.options.security]

    def tls_context(self) -> ssl.SSLContext:
        """Verifying context: CA_FILE when given, else the system CAs; never unverified."""
        ca_file = self.options.ca_file
        if ca_file is not None and not Path(ca_file).is_file():
            raise BackupError(f"CA_FILE {ca_file} of section {self.name} does not exist; give the PEM file of the "
                              "CA that signed the SMTP server's certificate")
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def email_of(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.options.sender
        mail["To"] = ", ".join(self.options.recipients)
        mail["Date"] = formatdate(localtime=True)
        mail["Message-ID"] = make_msgid(domain=message.result.hostname or None)
        mail.set_content(message.text)
        mail.add_alternative(f"<html><body>\n{message.html}</body></html>\n", subtype="html")
        return mail

    def send(self, message: Message) -> None:
        """One SMTP delivery; BackupError naming the server and what went wrong."""
        options = self.options
        where = f"the SMTP server {options.smtp_host}:{self.port}"
        try:
            smtp: smtplib.SMTP
            if options.security == "ssl":
                smtp = smtplib.SMTP_SSL(options.smtp_host, self.port, timeout=options.timeout_seconds,
                                        context=self.tls_context())
            else:
                smtp = smtplib.SMTP(options.smtp_host, self.port, timeout=options.timeout_seconds)
            with smtp:
                if options.security == "starttls":
                    smtp.starttls(context=self.tls_context())
                if self.user is not None and self.password is not None:
                    smtp.login(self.user, self.password)
                smtp.send_message(self.email_of(message), from_addr=options.sender, to_addrs=options.recipients)
        except ssl.SSLCertVerificationError as error:
            raise BackupError(f"{where} presented a certificate that cannot be verified ({error.verify_message}); "
                              "give the CA that signed it in CA_FILE, or fix SMTP_HOST to the name in the "
                              "certificate") from None
        except smtplib.SMTPAuthenticationError as error:
            raise BackupError(f"{where} refused the login of SMTP_USER ({error.smtp_code}); check SMTP_USER and "
                              "SMTP_PASSWORD in the credentials file") from None
        except smtplib.SMTPNotSupportedError:
            raise BackupError(f"{where} does not offer STARTTLS (or AUTH); use SECURITY ssl or the right port") from None
        except smtplib.SMTPRecipientsRefused as error:
            raise BackupError(f"{where} refused the recipients {', '.join(error.recipients)}; check TO") from None
        except smtplib.SMTPResponseException as error:
            text = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
            raise BackupError(f"{where} answered {error.smtp_code}: {text[:200]}") from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as error:
            raise BackupError(f"{where} could not be reached or used ({type(error).__name__}: {error}); check "
                              "SMTP_HOST, SMTP_PORT and SECURITY") from None
