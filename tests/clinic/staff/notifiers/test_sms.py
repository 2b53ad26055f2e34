"""clinic.staff.notifiers.sms: Twilio's ``Client.messages.create`` against a local Messages API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clinic.staff.notifiers import ConfigError, NotifierError, StaffAlert
from clinic.staff.notifiers.sms import RebasedTwilioHttpClient, TwilioSettings, TwilioSmsNotifier
from tests.clinic.staff.notifiers.servers import TWILIO_SID, TWILIO_TOKEN, TwilioStub, free_port

ONCALL = "+15005550006"
FROM = "+15005550001"


@pytest.fixture
def twilio() -> Iterator[TwilioStub]:
    stub = TwilioStub()
    stub.start()
    yield stub
    stub.stop()


def _environ(api_base: str | None, **change: str) -> dict[str, str]:
    environ = {
        "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM_NUMBER": FROM, "ONCALL_PHONE": ONCALL, **change,
    }
    if api_base is not None:
        environ["TWILIO_API_BASE"] = api_base
    return environ


def test_texts_the_alert_to_the_oncall_phone(twilio: TwilioStub, alert: StaffAlert) -> None:
    TwilioSmsNotifier.from_env(_environ(twilio.url)).send(alert)

    assert twilio.messages() == [{"To": ONCALL, "From": FROM, "Body": alert.text}]
    assert len(alert.text) <= 160 and alert.text.isascii()  # one SMS segment


def test_an_injected_http_client_is_used(twilio: TwilioStub, alert: StaffAlert) -> None:
    http_client = RebasedTwilioHttpClient(twilio.url + "/")
    settings = TwilioSettings(TWILIO_SID, TWILIO_TOKEN, FROM, ONCALL)  # api_base left at Twilio's

    try:
        TwilioSmsNotifier(settings, http_client=http_client).send(alert)
    finally:
        http_client.close()

    assert [m["Body"] for m in twilio.messages()] == [alert.text]


def test_a_twilio_error_raises_without_phone_numbers(twilio: TwilioStub, alert: StaffAlert) -> None:
    twilio.fail_with = (400, 21211, f"The 'To' number {ONCALL} is not a valid phone number.")

    with pytest.raises(NotifierError, match="Twilio answered HTTP 400, Twilio error 21211") as failure:
        TwilioSmsNotifier.from_env(_environ(twilio.url)).send(alert)

    assert ONCALL not in str(failure.value) and TWILIO_SID not in str(failure.value)


def test_a_wrong_token_is_refused(twilio: TwilioStub, alert: StaffAlert) -> None:
    with pytest.raises(NotifierError, match="HTTP 401, Twilio error 20003"):
        TwilioSmsNotifier.from_env(_environ(twilio.url, TWILIO_AUTH_TOKEN="wrong")).send(alert)

    assert twilio.messages() == []


def test_an_unreachable_api_raises(alert: StaffAlert) -> None:
    with pytest.raises(NotifierError, match="Twilio unreachable"):
        TwilioSmsNotifier.from_env(_environ(f"http://127.0.0.1:{free_port()}")).send(alert)


def test_the_api_base_defaults_to_twilio() -> None:
    settings = TwilioSettings.from_env(_environ(None))

    assert settings.api_base == "https://api.twilio.com"
    assert TWILIO_TOKEN not in repr(settings) and ONCALL not in repr(settings)


def test_the_http_client_rewrites_only_twilios_base() -> None:
    http_client = RebasedTwilioHttpClient("http://127.0.0.1:1/prefix/")
    seen: list[str] = []
    http_client.session.send = lambda prepared, **_: seen.append(prepared.url)  # type: ignore[method-assign]
    try:
        with pytest.raises(AttributeError):  # our fake send returns no response: the URL is what counts
            http_client.request("POST", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json")
    finally:
        http_client.close()

    assert seen == ["http://127.0.0.1:1/prefix/2010-04-01/Accounts/AC1/Messages.json"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TWILIO_AUTH_TOKEN": ""}, "STAFF_NOTIFIERS includes 'sms' but TWILIO_AUTH_TOKEN is not set"),
        ({"ONCALL_PHONE": "", "TWILIO_FROM_NUMBER": ""}, "TWILIO_FROM_NUMBER, ONCALL_PHONE are not set"),
        ({"TWILIO_API_BASE": "api.twilio.com"}, "TWILIO_API_BASE must be an https:// URL"),
    ],
)
def test_missing_or_invalid_settings_are_configuration_errors(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TwilioSmsNotifier.from_env({**_environ(None), **change})
