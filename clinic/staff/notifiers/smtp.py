"""Email to staff over SMTP (STARTTLS, implicit TLS or, for a local relay, none).

Named ``smtp`` rather than ``email`` so it never shadows the standard library's ``email``.
TLS certificates are always verified: against the system's CAs, or against ``SMTP_CA_FILE``
(a private CA, or a relay's self-signed certificate).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from clinic.staff.notifiers import SEND_TIMEOUT, ConfigError, NotifierError, StaffAlert, require

logger = logging.getLogger(__name__)

TLS_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send staff email.

    Attributes:
        host: the SMTP server.
        port: its port.
        tls: ``starttls``, ``ssl`` (implicit TLS) or ``none``.
        sender: the From address.
        recipients: the staff addresses.
        username: login name (no login when empty).
        password: login password.
        ca_file: a CA bundle to verify the server against instead of the system's CAs.
        timeout: seconds to wait for each step of the conversation with the server.
    """

    host: str
    port: int
    tls: str
    sender: str
    recipients: tuple[str, ...]
    username: str = ""
    password: str = ""
    ca_file: str = ""
    timeout: float = SEND_TIMEOUT

    def __repr__(self) -> str:  # never print the password
        return f"SmtpSettings(host={self.host!r}, port={self.port}, tls={self.tls!r})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SmtpSettings:
        """Reads ``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_TLS``, ``SMTP_USERNAME``, ``SMTP_PASSWORD``,
        ``SMTP_CA_FILE``, ``SMTP_FROM`` and ``STAFF_EMAIL_TO``.

        Raises:
            ConfigError: a required variable is missing, or a value is invalid.
        """
        values = require(environ, "email", ("SMTP_HOST", "SMTP_FROM", "STAFF_EMAIL_TO"))
        tls = (environ.get("SMTP_TLS") or "starttls").strip().lower()
        if tls not in TLS_MODES:
            raise ConfigError(f"SMTP_TLS must be one of {', '.join(TLS_MODES)} (got {tls!r})")
        port_text = (environ.get("SMTP_PORT") or "").strip()
        try:
            port = int(port_text) if port_text else DEFAULT_PORTS[tls]
        except ValueError:
            raise ConfigError(f"SMTP_PORT must be a port number (got {port_text!r})") from None
        username = (environ.get("SMTP_USERNAME") or "").strip()
        password = environ.get("SMTP_PASSWORD") or ""
        if username and not password:
            raise ConfigError("SMTP_USERNAME is set but SMTP_PASSWORD is not set")
        if username and tls == "none":
            raise ConfigError("SMTP_USERNAME needs SMTP_TLS=starttls or ssl: the password would travel in clear")
        recipients = tuple(a.strip() for a in values["STAFF_EMAIL_TO"].split(",") if a.strip())
        if not recipients:
            raise ConfigError("STAFF_EMAIL_TO must list at least one address")
        return cls(
            host=values["SMTP_HOST"],
            port=port,
            tls=tls,
            sender=values["SMTP_FROM"],
            recipients=recipients,
            username=username,
            password=password,
            ca_file=(environ.get("SMTP_CA_FILE") or "").strip(),
        )

    def tls_context(self) -> ssl.SSLContext:
        """A verifying TLS context: ``ca_file`` when set, else the system's CAs."""
        return ssl.create_default_context(cafile=self.ca_file or None)


class SmtpNotifier:
    """Emails alerts to the staff addresses."""

    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SmtpNotifier:
        """See :meth:`SmtpSettings.from_env`."""
        return cls(SmtpSettings.from_env(environ))

    def send(self, message: StaffAlert) -> None:
        """Emails the alert to every staff address.

        Raises:
            NotifierError: the server is unreachable, TLS or login failed, or it refused the email.
        """
        email = self._email(message)
        try:
            with self._connect() as smtp:
                if self.settings.username:
                    smtp.login(self.settings.username, self.settings.password)
                smtp.send_message(email)
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifierError(f"SMTP login refused ({exc.smtp_code})") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise NotifierError(f"SMTP server refused {len(exc.recipients)} recipient(s)") from None
        except smtplib.SMTPNotSupportedError:
            raise NotifierError("SMTP server does not offer STARTTLS or login") from None
        except smtplib.SMTPResponseException as exc:
            raise NotifierError(f"SMTP server answered {exc.smtp_code}") from None
        except smtplib.SMTPException as exc:
            raise NotifierError(f"SMTP failed ({type(exc).__name__})") from None
        except ssl.SSLCertVerificationError as exc:
            raise NotifierError(f"SMTP server certificate not trusted ({exc.verify_message})") from None
        except ssl.SSLError as exc:
            raise NotifierError(f"SMTP TLS failed ({exc.reason or type(exc).__name__})") from None
        except TimeoutError:
            raise NotifierError(f"SMTP server timed out after {self.settings.timeout:g} s") from None
        except OSError as exc:
            raise NotifierError(f"SMTP server unreachable ({type(exc).__name__}: {exc.strerror})") from None
        logger.debug("email sent for escalation %s", message.escalation_id)

    def _connect(self) -> smtplib.SMTP:
        """An open, greeted (and, unless ``tls=none``, encrypted) connection."""
        s = self.settings
        if s.tls == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=s.tls_context())
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.tls == "starttls":
                smtp.starttls(context=s.tls_context())  # raises SMTPNotSupportedError if not offered
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _email(self, message: StaffAlert) -> EmailMessage:
        email = EmailMessage()
        email["Subject"] = message.subject
        email["From"] = self.settings.sender
        email["To"] = ", ".join(self.settings.recipients)
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = make_msgid(domain=self.settings.sender.rpartition("@")[2] or None)
        email.set_content(
            f"{message.text}\n\n"
            "For privacy this email contains no patient details: sign in to the staff console "
            "to read the conversation.\n"
        )
        return email
