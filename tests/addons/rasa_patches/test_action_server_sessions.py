"""addons.rasa_patches.action_server_sessions: kept connections, Rasa's results and errors, the
same JSON."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from rasa.utils.endpoints import EndpointConfig

from addons.rasa_patches.action_server_sessions import KEEPALIVE_S, SESSIONS, encode_json
from tests.addons.rasa_patches.helpers import action, served_trackers


def test_endpoint_requests_reuse_one_connection_with_rasas_results_and_errors(patched: None) -> None:
    from aiohttp import web
    from rasa.utils.endpoints import ClientResponseError

    peers: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))
        body = await request.json()
        if body.get("fail"):
            return web.json_response({"error": "no"}, status=400)
        return web.json_response({"echo": body, "auth": request.headers.get("Authorization"),
                                  "token": request.query.get("token")})

    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/webhook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook", token="t0k",
                                  basic_auth={"username": "u", "password": "p"})
        try:
            first = await endpoint.request(json={"n": 1}, method="post")
            second = await endpoint.request(json={"n": 2, "text": "¿cuánto cuesta? 😀 </script>"}, method="post")
            assert first["echo"] == {"n": 1} and second["echo"] == {"n": 2, "text": "¿cuánto cuesta? 😀 </script>"}
            assert first["auth"].startswith("Basic ") and first["token"] == "t0k"
            assert peers[0] == peers[1]  # the same keep-alive connection
            with pytest.raises(ClientResponseError) as error:
                await endpoint.request(json={"fail": True}, method="post")
            assert error.value.status == 400
            assert (await endpoint.request(json={"n": 3}, method="post"))["echo"] == {"n": 3}
            await asyncio.sleep(KEEPALIVE_S + 0.5)  # idle: the connection is dropped
            await endpoint.request(json={"n": 4}, method="post")
            assert peers[-1] != peers[0]
        finally:
            for session in endpoint.__dict__.get(SESSIONS, {}).values():
                await session.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_a_new_event_loop_gets_its_own_session(patched: None) -> None:
    endpoint = EndpointConfig("http://127.0.0.1:1/webhook")

    async def session_of_this_loop() -> Any:
        async with endpoint.session() as session:
            again = endpoint.session()
            async with again as same:
                assert same is session
            return session

    first = asyncio.run(session_of_this_loop())
    second = asyncio.run(session_of_this_loop())
    assert first is not second


@pytest.mark.parametrize("value", [
    {"text": "¿cuánto cuesta? 😀 </script> \u0000 \n \"quoted\"", "slash": "a/b"},
    {"floats": [0.1, 1e-7, 1796345765.3323784, -0.0, 1e300, 0.30000000000000004], "ints": [0, -1, 2**63 - 1]},
    {"nested": {"a": [None, True, False, {"b": []}]}, "": ""},
    {"big": 2**70}, {"nan": float("nan")}, {"inf": float("inf")},
])
def test_action_requests_are_encoded_as_the_same_json(value: Any) -> None:
    text = encode_json(value)
    theirs = json.dumps(value)
    assert json.loads(text) == json.loads(theirs) or text == theirs  # NaN is not equal to itself


def test_whole_action_requests_are_encoded_as_the_same_json() -> None:
    from rasa.shared.core.domain import Domain

    from clinic.settings import PROJECT_DIR

    domain = Domain.load(str(PROJECT_DIR / "domain.yml"))
    validator = action("validate_booking_form")
    payloads = [validator._action_call_format(tracker, domain) for tracker in served_trackers()]
    assert any("domain" in p for p in payloads) and any(len(p["tracker"]["events"]) > 30 for p in payloads)
    for payload in payloads:
        assert json.loads(encode_json(payload)) == json.loads(json.dumps(payload))


def test_a_request_to_a_hung_server_ends_after_the_action_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import time

    from addons.rasa_patches import action_server_sessions

    monkeypatch.setenv("ACTION_TIMEOUT_SECONDS", "0.5")
    action_server_sessions.PATCH.install()

    async def call(endpoint: EndpointConfig) -> None:
        try:
            await endpoint.request(json={"next_action": "action_crisis_protocol"}, method="post", timeout=300)
        finally:
            for session in endpoint.__dict__.get(SESSIONS, {}).values():
                await session.close()

    with socket.socket() as hung:  # accepts connections (the backlog), never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(4)
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(call(EndpointConfig(f"http://127.0.0.1:{hung.getsockname()[1]}/webhook")))

    assert time.monotonic() - started < 2  # Rasa asks for 300 s


@pytest.mark.parametrize("value", ["soon", "0", "-1", "301", "nan"])
def test_a_bad_action_timeout_stops_the_start(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from addons.rasa_patches import action_server_sessions

    monkeypatch.setenv("ACTION_TIMEOUT_SECONDS", value)

    with pytest.raises(ValueError, match="ACTION_TIMEOUT_SECONDS"):
        action_server_sessions.PATCH.install()
    assert not action_server_sessions.PATCH.installed
