"""clinic.staff.notifiers.smtp: email to a real local SMTP server (aiosmtpd), plain, STARTTLS and
implicit TLS, with and without login; certificates are verified against SMTP_CA_FILE."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinic.staff.notifiers import ConfigError, NotifierError, StaffAlert
from clinic.staff.notifiers.smtp import SmtpNotifier, SmtpSettings
from tests.clinic.staff.notifiers.servers import (
    HOST,
    SmtpServer,
    free_port,
    self_signed_certificate,
    server_tls_context,
)

STAFF = ("oncall@clinic.test", "nurses@clinic.test")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key)."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def _environ(port: int, tls: str, **extra: str) -> dict[str, str]:
    return {
        "SMTP_HOST": HOST, "SMTP_PORT": str(port), "SMTP_TLS": tls,
        "SMTP_FROM": "Clinic assistant <assistant@clinic.test>", "STAFF_EMAIL_TO": ", ".join(STAFF), **extra,
    }


def test_plain_smtp_delivers_the_alert(alert: StaffAlert) -> None:
    with SmtpServer() as server:
        SmtpNotifier.from_env(_environ(server.port, "none")).send(alert)

    [delivered] = server.delivered
    assert delivered.mail_from == "assistant@clinic.test"
    assert delivered.rcpt_tos == list(STAFF)
    email = delivered.message
    assert email["Subject"] == "URGENT: escalation #12 (crisis, SMS)"
    assert email["From"] == "Clinic assistant <assistant@clinic.test>"
    assert email["To"] == "oncall@clinic.test, nurses@clinic.test"
    body = email.get_content()
    assert alert.text in body
    assert "https://console.clinic.test/escalations/12" in body
    assert not delivered.tls


def test_starttls_verified_against_the_ca_file_with_login(
    alert: StaffAlert, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    with SmtpServer(starttls=server_tls_context(cert, key), credentials=("assistant", "pa55word")) as server:
        SmtpNotifier.from_env(
            _environ(server.port, "starttls", SMTP_CA_FILE=str(cert), SMTP_USERNAME="assistant",
                     SMTP_PASSWORD="pa55word")
        ).send(alert)

    [delivered] = server.delivered
    assert delivered.tls and delivered.login == "assistant"
    assert delivered.message["Subject"] == alert.subject


def test_a_wrong_password_is_refused(alert: StaffAlert, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with SmtpServer(starttls=server_tls_context(cert, key), credentials=("assistant", "pa55word")) as server:
        notifier = SmtpNotifier.from_env(
            _environ(server.port, "starttls", SMTP_CA_FILE=str(cert), SMTP_USERNAME="assistant",
                     SMTP_PASSWORD="wrong")
        )
        with pytest.raises(NotifierError, match=r"SMTP login refused \(535\)") as failure:
            notifier.send(alert)

    assert server.delivered == []
    assert "wrong" not in str(failure.value)


def test_an_untrusted_certificate_is_refused(alert: StaffAlert, certificate: tuple[Path, Path]) -> None:
    """Without SMTP_CA_FILE the self-signed certificate is checked against the system CAs: no email."""
    cert, key = certificate
    with (
        SmtpServer(starttls=server_tls_context(cert, key)) as server,
        pytest.raises(NotifierError, match="certificate not trusted"),
    ):
        SmtpNotifier.from_env(_environ(server.port, "starttls")).send(alert)

    assert server.delivered == []


def test_starttls_refuses_a_server_without_it(alert: StaffAlert) -> None:
    with SmtpServer() as server, pytest.raises(NotifierError, match="does not offer STARTTLS"):
        SmtpNotifier.from_env(_environ(server.port, "starttls")).send(alert)

    assert server.delivered == []


def test_implicit_tls(alert: StaffAlert, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with SmtpServer(implicit_tls=server_tls_context(cert, key)) as server:
        SmtpNotifier.from_env(_environ(server.port, "ssl", SMTP_CA_FILE=str(cert))).send(alert)

    [delivered] = server.delivered
    assert delivered.message["Subject"] == alert.subject


def test_an_unreachable_server_raises(alert: StaffAlert) -> None:
    with pytest.raises(NotifierError, match="SMTP server unreachable .*ConnectionRefusedError"):
        SmtpNotifier.from_env(_environ(free_port(), "none")).send(alert)


def test_the_settings_never_show_the_password() -> None:
    settings = SmtpSettings.from_env(
        _environ(587, "starttls", SMTP_USERNAME="assistant", SMTP_PASSWORD="pa55word")
    )

    assert "pa55word" not in repr(settings)


@pytest.mark.parametrize(("tls", "port"), [("starttls", 587), ("ssl", 465), ("none", 25), ("", 587)])
def test_the_port_defaults_to_the_tls_mode(tls: str, port: int) -> None:
    environ = _environ(0, tls)
    del environ["SMTP_PORT"]

    assert SmtpSettings.from_env(environ).port == port


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SMTP_HOST": ""}, "STAFF_NOTIFIERS includes 'email' but SMTP_HOST is not set"),
        ({"SMTP_FROM": "", "STAFF_EMAIL_TO": ""}, "SMTP_FROM, STAFF_EMAIL_TO are not set"),
        ({"STAFF_EMAIL_TO": " , "}, "STAFF_EMAIL_TO must list at least one address"),
        ({"SMTP_TLS": "tls"}, "SMTP_TLS must be one of starttls, ssl, none"),
        ({"SMTP_PORT": "smtp"}, "SMTP_PORT must be a port number"),
        ({"SMTP_USERNAME": "assistant"}, "SMTP_PASSWORD is not set"),
        ({"SMTP_TLS": "none", "SMTP_USERNAME": "a", "SMTP_PASSWORD": "b"}, "password would travel in clear"),
    ],
)
def test_missing_or_invalid_settings_are_configuration_errors(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SmtpNotifier.from_env({**_environ(587, "starttls"), **change})
