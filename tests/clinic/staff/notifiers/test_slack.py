"""clinic.staff.notifiers.slack: a JSON POST to a real local webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clinic.staff.notifiers import ConfigError, NotifierError, StaffAlert
from clinic.staff.notifiers.slack import SlackNotifier
from tests.clinic.staff.notifiers.servers import HttpReceiver, free_port

SECRET_PATH = "/services/T000/B000/s3cr3tT0ken"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver().start()
    yield server
    server.stop()


def test_posts_the_alert_as_json_text(receiver: HttpReceiver, alert: StaffAlert) -> None:
    SlackNotifier(receiver.url + SECRET_PATH).send(alert)

    [request] = receiver.requests
    assert request.path == SECRET_PATH
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "text": "URGENT: escalation #12 (crisis, SMS) needs a staff member now - "
                "open the staff console: https://console.clinic.test/escalations/12"
    }


def test_an_error_answer_raises_without_the_secret_url(receiver: HttpReceiver, alert: StaffAlert) -> None:
    receiver.answer(500, "internal error")

    with pytest.raises(NotifierError, match="webhook answered HTTP 500") as failure:
        SlackNotifier(receiver.url + SECRET_PATH).send(alert)

    assert "s3cr3t" not in str(failure.value) and "127.0.0.1" not in str(failure.value)


def test_an_unreachable_webhook_raises(alert: StaffAlert) -> None:
    url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"

    with pytest.raises(NotifierError, match="webhook unreachable .*ConnectionRefusedError") as failure:
        SlackNotifier(url).send(alert)

    assert "s3cr3t" not in str(failure.value)


def test_a_slow_webhook_times_out(alert: StaffAlert) -> None:
    slow = HttpReceiver(delay=1.5).start()
    try:
        with pytest.raises(NotifierError, match="timed out"):
            SlackNotifier(slow.url + SECRET_PATH, timeout=0.3).send(alert)
    finally:
        slow.stop()


def test_the_webhook_url_comes_from_the_environment(receiver: HttpReceiver, alert: StaffAlert) -> None:
    SlackNotifier.from_env({"SLACK_WEBHOOK_URL": receiver.url + SECRET_PATH}).send(alert)

    assert [r.path for r in receiver.requests] == [SECRET_PATH]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "STAFF_NOTIFIERS includes 'slack' but SLACK_WEBHOOK_URL is not set"),
        ({"SLACK_WEBHOOK_URL": "  "}, "SLACK_WEBHOOK_URL is not set"),
        ({"SLACK_WEBHOOK_URL": "file:///etc/passwd"}, "SLACK_WEBHOOK_URL must be an https:// URL"),
        ({"SLACK_WEBHOOK_URL": "hooks.slack.com/services/x"}, "SLACK_WEBHOOK_URL must be an https:// URL"),
    ],
)
def test_a_missing_or_invalid_url_is_a_configuration_error(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SlackNotifier.from_env(environ)
