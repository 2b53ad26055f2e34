"""clinic.settings: every environment variable's default, parsing and refusal."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from clinic import settings

ALL = (
    "RASA_PORT", "ACTION_PORT", "RASA_INTERFACE", "RASA_INSTANCES", "RASA_CONCURRENT_TURNS", "RASA_URL",
    "RASA_API_TOKEN", "STAFF_PORT", "CONSOLE_PUBLIC_URL", "CONSOLE_INTERFACE", "CONSOLE_INSECURE_COOKIES",
    "WEB_PORT", "WEB_INTERFACE", "WEB_RASA_URL", "WEB_ALLOWED_ORIGINS", "WEB_WIDGET_COLOR", "REDIS_URL",
    "REDIS_KEY_PREFIX", "TRACKER_STORE_SYNC", "CLINIC_PROFILE", "MAX_MESSAGE_CHARS", "RASA_MAX_REQUEST_BYTES",
)


@pytest.fixture(autouse=True)
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        (settings.rasa_port, 5005),
        (settings.action_port, 5055),
        (settings.rasa_interface, "127.0.0.1"),
        (settings.rasa_instances, 1),
        (settings.rasa_concurrent_turns, 1),
        (settings.rasa_url, "http://127.0.0.1:5005"),
        (settings.rasa_api_token, None),
        (settings.staff_port, 8080),
        (settings.console_url, "http://localhost:8080"),
        (settings.console_interface, "127.0.0.1"),
        (settings.console_insecure_cookies, False),
        (settings.web_port, 8000),
        (settings.web_interface, "127.0.0.1"),
        (settings.web_rasa_url, None),
        (settings.web_allowed_origins, ()),
        (settings.web_widget_color, settings.DEFAULT_WIDGET_COLOR),
        (settings.redis_url, None),
        (settings.redis_key_prefix, "clinic"),
        (settings.tracker_store_sync, "NORMAL"),
        (settings.clinic_profile_path, None),
        (settings.max_message_chars, 4000),
        (settings.rasa_max_request_bytes, 1024 * 1024),
    ],
)
def test_defaults(read: Callable[[], Any], expected: Any) -> None:
    assert read() == expected


@pytest.mark.parametrize(
    ("name", "value", "read", "expected"),
    [
        ("RASA_PORT", "6005", settings.rasa_url, "http://127.0.0.1:6005"),
        ("RASA_PORT", " ", settings.rasa_port, 5005),  # blank: the default
        ("RASA_INSTANCES", "2", settings.rasa_instances, 2),
        ("RASA_CONCURRENT_TURNS", " 3 ", settings.rasa_concurrent_turns, 3),
        ("STAFF_PORT", "9090", settings.console_url, "http://localhost:9090"),
        ("CONSOLE_PUBLIC_URL", "https://console.clinic.example/", settings.console_url,
         "https://console.clinic.example"),
        ("CONSOLE_INSECURE_COOKIES", "Yes", settings.console_insecure_cookies, True),
        ("WEB_RASA_URL", " https://assistant.clinic.example/ ", settings.web_rasa_url,
         "https://assistant.clinic.example"),
        ("WEB_ALLOWED_ORIGINS", "https://a.example, ,https://b.example/", settings.web_allowed_origins,
         ("https://a.example", "https://b.example")),
        ("REDIS_URL", "  ", settings.redis_url, None),
        ("REDIS_KEY_PREFIX", "clinicA", settings.socketio_channel, "clinicA:socketio"),
        ("TRACKER_STORE_SYNC", "full", settings.tracker_store_sync, "FULL"),
        ("CLINIC_PROFILE", "/srv/clinic.yml", settings.clinic_profile_path, "/srv/clinic.yml"),
        ("MAX_MESSAGE_CHARS", " 1600 ", settings.max_message_chars, 1600),
        ("RASA_MAX_REQUEST_BYTES", "262144", settings.rasa_max_request_bytes, 262144),
    ],
)
def test_values(monkeypatch: pytest.MonkeyPatch, name: str, value: str, read: Callable[[], Any],
                expected: Any) -> None:
    monkeypatch.setenv(name, value)

    assert read() == expected


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("RASA_CONCURRENT_TURNS", "0", settings.rasa_concurrent_turns),
        ("RASA_CONCURRENT_TURNS", "two", settings.rasa_concurrent_turns),
        ("WEB_RASA_URL", "assistant:5005", settings.web_rasa_url),
        ("WEB_WIDGET_COLOR", "red", settings.web_widget_color),
        ("REDIS_KEY_PREFIX", "clinic:a", settings.redis_key_prefix),
        ("TRACKER_STORE_SYNC", "sometimes", settings.tracker_store_sync),
        ("MAX_MESSAGE_CHARS", "99", settings.max_message_chars),
        ("MAX_MESSAGE_CHARS", "4k", settings.max_message_chars),
        ("RASA_MAX_REQUEST_BYTES", "1000", settings.rasa_max_request_bytes),
        ("RASA_MAX_REQUEST_BYTES", "-1", settings.rasa_max_request_bytes),
    ],
)
def test_malformed_values_are_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                                          read: Callable[[], Any]) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValueError, match=name):
        read()


def test_grouped_settings_read_the_process_environment() -> None:
    assert settings.environment() is os.environ


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:secret@host:6379/0", "redis://:***@host:6379/0"),
        ("postgresql://clinic:secret@db/clinic", "postgresql://clinic:***@db/clinic"),
        ("redis://host:6379/0", "redis://host:6379/0"),
    ],
)
def test_redact_url_hides_the_password(url: str, shown: str) -> None:
    assert settings.redact_url(url) == shown
