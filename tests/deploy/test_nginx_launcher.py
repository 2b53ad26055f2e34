"""The nginx configuration the launcher writes (``make run-prod``), run by the real nginx in front
of stand-in servers: which instance a request reaches, what happens when one is down or dies
while answering, socket.io sessions and WebSockets, request limits, and the access log."""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from clinic import nginx
from clinic.nginx import Site

SECRET = "s3cret-api-token"
PHONE = "+15551234567"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rasa_site(port: int, upstream: Sequence[int], max_body_bytes: int = 1024 * 1024) -> Site:
    return Site("rasa", port, "127.0.0.1", tuple(upstream), max_body_bytes, 15, 120)


@contextmanager
def running_nginx(binary: str, run_dir: Path, sites: Sequence[Site]) -> Iterator[Path]:
    """nginx on the launcher's configuration for ``sites``; yields the configuration's path."""
    config = nginx.write_config(run_dir, sites)
    nginx.check_config(binary, config)
    process = subprocess.Popen(nginx.command(binary, config), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                for site in sites:
                    socket.create_connection(("127.0.0.1", site.port), timeout=1).close()
                break
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    detail = process.stderr.read() if process.stderr else b""
                    raise RuntimeError(f"nginx did not start: {detail!r}") from exc
                time.sleep(0.1)
        yield config
    finally:
        process.terminate()
        process.wait(timeout=15)


class Instance:
    """A stand-in Rasa instance: answers with its name; its socket.io handshakes create sessions
    ``<name>-<n>`` that only it knows (another instance answers 400, as engine.io does)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[str] = []
        self._sessions = itertools.count()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        self.requests.append(request.path_qs)
        if request.path.startswith("/socket.io"):
            sid = request.query.get("sid")
            if sid is None:
                return web.Response(text=f'0{{"sid":"{self.name}-{next(self._sessions)}","upgrades":["websocket"]}}')
            if not sid.startswith(f"{self.name}-"):
                return web.Response(status=400, text="Invalid session")
            if request.headers.get("Upgrade", "").lower() == "websocket":
                socket_ = web.WebSocketResponse()
                await socket_.prepare(request)
                await socket_.send_str(self.name)
                await socket_.close()
                return socket_
        headers = f"host={request.headers.get('Host')} for={request.headers.get('X-Forwarded-For')}"
        return web.Response(text=f"{self.name} {request.method} {body} {headers}")

    async def serve(self, port: int) -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner


async def dying_instance(port: int, received: list[bytes]) -> asyncio.AbstractServer:
    """An instance that dies while answering: it reads the request, then drops the connection."""
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        writer.transport.abort()

    return await asyncio.start_server(drop, "127.0.0.1", port)


async def fetch(client: aiohttp.ClientSession, port: int, path: str, method: str = "GET",
                data: str | bytes | None = None) -> tuple[int, str]:
    async with client.request(method, f"http://127.0.0.1:{port}{path}", data=data) as response:
        return response.status, await response.text()


def test_messages_go_round_robin_and_skip_an_instance_that_is_down(nginx_binary: str, tmp_path: Path) -> None:
    a, b = Instance("a"), Instance("b")
    ports = [free_port() for _ in range(4)]  # nginx, a, nothing listening, b

    async def scenario() -> list[tuple[int, str]]:
        runners = [await a.serve(ports[1]), await b.serve(ports[3])]
        try:
            async with aiohttp.ClientSession() as client:
                return [await fetch(client, ports[0], "/webhooks/rest/webhook", "POST", f"hi {n}") for n in range(6)]
        finally:
            for runner in runners:
                await runner.cleanup()

    with running_nginx(nginx_binary, tmp_path, [rasa_site(ports[0], ports[1:])]):
        answers = asyncio.run(scenario())
    assert [status for status, _ in answers] == [200] * 6
    assert [text.split()[:3] for _, text in answers] == [[text.split()[0], "POST", "hi"] for _, text in answers]
    assert {text.split()[0] for _, text in answers} == {"a", "b"}


def test_a_message_whose_instance_dies_while_answering_goes_to_the_other(nginx_binary: str, tmp_path: Path) -> None:
    b = Instance("b")
    nginx_port, dying_port, b_port = free_port(), free_port(), free_port()
    dropped: list[bytes] = []

    async def scenario() -> list[tuple[int, str]]:
        server = await dying_instance(dying_port, dropped)
        runner = await b.serve(b_port)
        try:
            async with aiohttp.ClientSession() as client:
                return [await fetch(client, nginx_port, "/webhooks/rest/webhook", "POST", f"message {n}")
                        for n in range(4)]
        finally:
            server.close()
            await runner.cleanup()

    with running_nginx(nginx_binary, tmp_path, [rasa_site(nginx_port, [dying_port, b_port])]):
        answers = asyncio.run(scenario())
    assert dropped, "no message reached the instance that dies"
    assert [(status, text.split()[0]) for status, text in answers] == [(200, "b")] * 4
    assert [text.split()[2] for _, text in answers] == ["message"] * 4
    assert b.requests.count("/webhooks/rest/webhook") == 4  # the dropped one too, once


def test_a_socketio_session_stays_on_its_instance_polling_and_upgraded(nginx_binary: str, tmp_path: Path) -> None:
    a, b = Instance("a"), Instance("b")
    nginx_port, a_port, b_port = free_port(), free_port(), free_port()

    async def scenario() -> tuple[list[int], list[str], set[str]]:
        runners = [await a.serve(a_port), await b.serve(b_port)]
        statuses, upgraded, rest = [], [], set()
        try:
            async with aiohttp.ClientSession() as client:
                for _ in range(3):
                    _, handshake = await fetch(client, nginx_port, "/socket.io/?EIO=4&transport=polling")
                    sid = handshake.split('"sid":"')[1].split('"')[0]
                    for _ in range(4):
                        poll = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
                        statuses.append((await fetch(client, nginx_port, poll, "POST", '42["user_uttered"]'))[0])
                        rest.add((await fetch(client, nginx_port, "/webhooks/rest/webhook", "POST", "hi"))[1][0])
                    async with client.ws_connect(f"http://127.0.0.1:{nginx_port}/socket.io/?EIO=4&transport=websocket"
                                                 f"&sid={sid}") as upgraded_socket:
                        upgraded.append(f"{sid.split('-')[0]}:{await upgraded_socket.receive_str()}")
        finally:
            for runner in runners:
                await runner.cleanup()
        return statuses, upgraded, rest

    with running_nginx(nginx_binary, tmp_path, [rasa_site(nginx_port, [a_port, b_port])]):
        statuses, upgraded, rest = asyncio.run(scenario())
    assert statuses == [200] * 12  # never the other instance's "Invalid session"
    assert all(owner == instance for owner, instance in (pair.split(":") for pair in upgraded))
    assert rest == {"a", "b"}  # meanwhile, messages without a session still go to both


def test_the_access_log_has_neither_query_strings_nor_conversation_ids(nginx_binary: str, tmp_path: Path) -> None:
    a = Instance("a")
    nginx_port, a_port = free_port(), free_port()

    async def scenario() -> int:
        runner = await a.serve(a_port)
        try:
            async with aiohttp.ClientSession() as client:
                status, _ = await fetch(client, nginx_port, f"/conversations/{PHONE}/tracker?token={SECRET}")
                await fetch(client, nginx_port, f"/webhooks/rest/webhook?token={SECRET}", "POST", "hi")
                return status
        finally:
            await runner.cleanup()

    with running_nginx(nginx_binary, tmp_path, [rasa_site(nginx_port, [a_port])]):
        assert asyncio.run(scenario()) == 200
    log = (tmp_path / "access.log").read_text()
    assert '"GET /conversations/-/tracker" 200' in log
    assert '"POST /webhooks/rest/webhook" 200' in log
    assert f"upstream=127.0.0.1:{a_port}" in log
    assert SECRET not in log and PHONE not in log and "5551234567" not in log
    assert a.requests[0] == f"/conversations/{PHONE}/tracker?token={SECRET}"  # Rasa still gets both


def test_nginx_refuses_a_body_over_the_limit_before_rasa_sees_it(nginx_binary: str, tmp_path: Path) -> None:
    a = Instance("a")
    nginx_port, a_port = free_port(), free_port()

    async def scenario() -> tuple[int, int]:
        runner = await a.serve(a_port)
        try:
            async with aiohttp.ClientSession() as client:
                small = await fetch(client, nginx_port, "/webhooks/rest/webhook", "POST", "x" * 900)
                large = await fetch(client, nginx_port, "/webhooks/rest/webhook", "POST", "x" * 2000)
                return small[0], large[0]
        finally:
            await runner.cleanup()

    with running_nginx(nginx_binary, tmp_path, [rasa_site(nginx_port, [a_port], max_body_bytes=1000)]):
        assert asyncio.run(scenario()) == (200, 413)
    assert a.requests == ["/webhooks/rest/webhook"]


def test_the_console_and_the_web_server_are_behind_the_same_nginx(nginx_binary: str, tmp_path: Path) -> None:
    rasa, console, website = Instance("rasa"), Instance("console"), Instance("web")
    ports = {name: (free_port(), free_port()) for name in ("rasa", "console", "web")}  # (nginx, server)
    sites = [rasa_site(*ports["rasa"][:1], [ports["rasa"][1]]),
             Site("console", ports["console"][0], "127.0.0.1", (ports["console"][1],), 65536, 15, 60),
             Site("web", ports["web"][0], "127.0.0.1", (ports["web"][1],), 65536, 15, 30)]

    async def scenario() -> dict[str, str]:
        runners = [await server.serve(ports[server.name][1]) for server in (rasa, console, website)]
        try:
            async with aiohttp.ClientSession() as client:
                return {name: (await fetch(client, public, "/login"))[1] for name, (public, _) in ports.items()}
        finally:
            for runner in runners:
                await runner.cleanup()

    with running_nginx(nginx_binary, tmp_path, sites):
        answers = asyncio.run(scenario())
    for name, (public, _) in ports.items():
        # the server's answer, with the port the browser used (links and redirects) and the client's address
        assert answers[name] == f"{name} GET  host=127.0.0.1:{public} for=127.0.0.1"


def test_every_file_nginx_writes_is_under_the_run_directory(tmp_path: Path) -> None:
    """So nginx runs as whoever runs the launcher: nothing in /run, /var/log or /var/lib/nginx."""
    text = nginx.render(tmp_path, [rasa_site(5005, [5006, 5007])])
    directives = ("pid", "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path",
                  "scgi_temp_path", "access_log", "error_log")
    written = {words[0]: words[1].rstrip(";") for words in (line.split() for line in text.splitlines())
               if words and words[0] in directives}
    assert set(written) == set(directives)
    assert all(path == "stderr" or Path(path).parent == tmp_path for path in written.values()), written
