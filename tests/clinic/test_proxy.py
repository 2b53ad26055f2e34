"""clinic.proxy: round-robin over instances, sticky for socket.io sessions, fail-over (local fake
instances; the real ones are in tests/integration/test_scale_out.py)."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from clinic.proxy import RoundRobinProxy


def fake_instance(name: str) -> web.Application:
    """Answers with its name; a socket.io handshake creates a session ``<name>-sid``."""
    async def handle(request: web.Request) -> web.Response:
        if request.path.startswith("/socket.io") and "sid" not in request.query:
            return web.Response(text=f'0{{"sid":"{name}-sid","upgrades":["websocket"]}}')
        sid = request.query.get("sid")
        if sid and not sid.startswith(name):
            return web.Response(status=400, text="Invalid session")
        return web.Response(text=f"{name} {request.method} {await request.text()}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_round_robin_sticky_sessions_and_fail_over() -> None:
    async def scenario() -> None:
        a, b = TestServer(fake_instance("a")), TestServer(fake_instance("b"))
        await a.start_server()
        await b.start_server()
        down = f"http://127.0.0.1:{closed_port()}"
        proxy = TestServer(RoundRobinProxy([str(a.make_url("")), down, str(b.make_url(""))]).app())
        await proxy.start_server()
        try:
            async with aiohttp.ClientSession() as client:
                async def get(path: str, **kwargs: object) -> tuple[int, str]:
                    async with client.request(kwargs.pop("method", "GET"), proxy.make_url(path), **kwargs) as r:
                        return r.status, await r.text()

                # Round-robin over the instances that answer (the one that is down is skipped).
                served = [(await get("/webhooks/rest/webhook", method="POST", data="hi"))[1] for _ in range(6)]
                assert {text.split()[0] for text in served} == {"a", "b"}
                assert all(text.endswith("POST hi") for text in served)

                # A socket.io session stays on the instance that created it.
                for _ in range(3):
                    status, handshake = await get("/socket.io/?EIO=4&transport=polling")
                    owner = handshake.split('"sid":"')[1][0]
                    for _ in range(4):
                        status, text = await get(f"/socket.io/?EIO=4&transport=polling&sid={owner}-sid")
                        assert (status, text.split()[0]) == (200, owner)
        finally:
            await proxy.close()
            await a.close()
            await b.close()

    asyncio.run(scenario())
