"""clinic.channels.widget_server: the widget's files, the demo page and the history a reloaded page reads."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from starlette.testclient import TestClient

from clinic import settings
from clinic.channels import widget_server as web
from clinic.channels.widget_server import WebConfig, create_app
from clinic.db import get_engine
from clinic.staff.transcript import STAFF_METADATA_KEY

SESSION = secrets.token_urlsafe(32)


@pytest.fixture
def tracker_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    yield url
    get_engine(url).dispose()


def save(url: str, sender: str, events: list) -> None:
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=url.removeprefix("sqlite:///"))
    asyncio.run(store.save(DialogueStateTracker.from_events(sender, events)))
    store.engine.dispose()


@pytest.fixture
def client(tracker_url: str) -> Iterator[TestClient]:
    config = WebConfig(rasa_port=5999, tracker_url=tracker_url, allowed_origins=("https://clinic.example",))
    with TestClient(create_app(config), base_url="http://localhost:8000") as test_client:
        yield test_client


def test_the_demo_page_embeds_the_widget_with_one_script_tag(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    html = response.text
    assert html.count("<script") == 1 and 'src="/widget/clinic-chat.js?v=' in html
    assert 'data-server-url="http://localhost:5999"' in html
    assert 'data-clinic-name="Sample Ketamine Clinic"' in html and 'data-color="#0b5e55"' in html
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self' http://localhost:5999 ws://localhost:5999" in policy
    assert "https://" not in html.split("<main")[0]  # no third-party script, font or stylesheet


def test_a_configured_rasa_url_is_used_for_browsers(tracker_url: str) -> None:
    config = WebConfig(rasa_url="https://assistant.clinic.example", tracker_url=tracker_url)
    with TestClient(create_app(config)) as client:
        response = client.get("/")

    assert 'data-server-url="https://assistant.clinic.example"' in response.text
    assert "wss://assistant.clinic.example" in response.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/widget/clinic-chat.js", "/widget/clinic-chat.css"])
def test_the_widget_files_can_be_embedded_by_other_sites(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"


def test_the_socket_io_client_comes_from_node_modules(client: TestClient) -> None:
    response = client.get("/widget/vendor/socket.io.min.js")

    if not web.SOCKET_IO_CLIENT.exists():
        assert response.status_code == 503 and "npm ci" in response.text
    else:
        assert response.status_code == 200 and "javascript" in response.headers["content-type"]
        assert response.content == web.SOCKET_IO_CLIENT.read_bytes()


def test_the_widget_loads_nothing_from_elsewhere() -> None:
    source = (web.WIDGET_DIR / "clinic-chat.js").read_text(encoding="utf-8")
    styles = (web.WIDGET_DIR / "clinic-chat.css").read_text(encoding="utf-8")

    assert "innerHTML" not in source  # patient and staff text is only ever set as text
    assert "@import" not in styles and "url(" not in styles and "@font-face" not in styles
    code = "\n".join(line for line in source.splitlines() if not line.strip().startswith("*"))
    assert "cdn" not in code.lower() and "googleapis" not in code


def test_the_history_of_a_session_lists_patient_bot_and_staff_lines(client: TestClient, tracker_url: str) -> None:
    save(tracker_url, SESSION, [
        ActionExecuted("action_listen"),
        UserUttered("i'm on lithium, ok?", {"name": "medical_question"}),
        BotUttered("I've passed it on."),
        BotUttered("Hi, this is Dana.", metadata={STAFF_METADATA_KEY: "Dana"}),
    ])
    save(tracker_url, secrets.token_urlsafe(32), [UserUttered("someone else", {"name": "greet"})])

    response = client.post("/api/history", json={"session_id": SESSION})

    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    entries = response.json()["entries"]
    assert [(e["from"], e["text"]) for e in entries] == [
        ("patient", "i'm on lithium, ok?"), ("bot", "I've passed it on."), ("staff", "Hi, this is Dana.")]
    assert "Dana" not in str([e for e in entries if e["from"] != "staff"])

    later = client.post("/api/history", json={"session_id": SESSION, "after": entries[1]["id"]}).json()["entries"]
    assert [e["from"] for e in later] == ["staff"]


def test_an_unknown_session_has_no_history(client: TestClient) -> None:
    assert client.post("/api/history", json={"session_id": SESSION}).json() == {"entries": []}


@pytest.mark.parametrize("body", [
    {"session_id": "+15005550006"},  # an SMS conversation
    {"session_id": "web-0123456789ab"},  # too short to be the widget's random token
    {"session_id": "a" * 200},
    {"session_id": None},
    {},
    {"session_id": SESSION, "after": -1},
    {"session_id": SESSION, "after": "1"},
])
def test_ids_that_are_not_the_widgets_tokens_are_refused(client: TestClient, body: dict) -> None:
    assert client.post("/api/history", json=body).status_code == 400


def test_history_needs_post_and_small_json(client: TestClient) -> None:
    assert client.get(f"/api/history?session_id={SESSION}").status_code == 405
    assert client.post("/api/history", content=b"not json").status_code == 400
    assert client.post("/api/history", content=b"x" * 5000).status_code == 413


def test_other_sites_may_read_history_only_when_allowed(client: TestClient) -> None:
    allowed = client.options("/api/history", headers={"Origin": "https://clinic.example",
                                                      "Access-Control-Request-Method": "POST",
                                                      "Access-Control-Request-Headers": "content-type"})
    refused = client.options("/api/history", headers={"Origin": "https://evil.example",
                                                      "Access-Control-Request-Method": "POST"})

    assert allowed.headers["access-control-allow-origin"] == "https://clinic.example"
    assert "access-control-allow-origin" not in refused.headers


def test_a_broken_tracker_store_is_a_503_without_details(tmp_path: Path) -> None:
    config = WebConfig(tracker_url=f"sqlite:///{tmp_path}/missing-dir/x/tracker.db")
    (tmp_path / "missing-dir").write_text("a file where a folder should be", encoding="utf-8")
    with TestClient(create_app(config)) as client:
        response = client.post("/api/history", json={"session_id": SESSION})

    assert response.status_code == 503 and response.json() == {"error": "history unavailable"}


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_PORT", "8123")
    monkeypatch.setenv("WEB_RASA_URL", "https://assistant.clinic.example/")
    monkeypatch.setenv("WEB_ALLOWED_ORIGINS", "https://a.example, https://b.example/")
    monkeypatch.setenv("WEB_WIDGET_COLOR", "#123")

    config = WebConfig.from_env()

    assert settings.web_port() == 8123
    assert config.rasa_url == "https://assistant.clinic.example"
    assert config.allowed_origins == ("https://a.example", "https://b.example") and config.color == "#123"


@pytest.mark.parametrize(("name", "value"), [("WEB_WIDGET_COLOR", "red"), ("WEB_RASA_URL", "assistant:5005")])
def test_malformed_settings_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValueError, match=name):
        WebConfig.from_env()


def test_a_strange_host_header_does_not_reach_the_page_or_its_policy(client: TestClient) -> None:
    response = client.get("/", headers={"Host": "evil.example;script-src *"})

    assert "evil" not in response.headers["content-security-policy"] and "evil" not in response.text
