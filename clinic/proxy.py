"""A small reverse proxy in front of several Rasa instances (``make run-prod``).

Requests go round-robin to the instances, except socket.io's: a browser's socket.io session
lives in one instance (its engine.io ``sid``), and the polling transport makes several HTTP
requests per session, so they must all reach that instance. The proxy reads the ``sid`` from
the handshake answer and sends every later request (and the WebSocket upgrade) carrying it to the
same instance. A request that cannot connect to an instance goes to the next one.

It is meant for one machine and for trying the set-up out; in production a load balancer does
this job (nginx ``ip_hash``/``sticky``, a Kubernetes ingress with session affinity), with TLS.

    python -m clinic.proxy --port 5005 --backend http://127.0.0.1:5006 --backend http://127.0.0.1:5007
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import re
import time
from collections.abc import Sequence

import aiohttp
from aiohttp import web

logger = logging.getLogger("clinic.proxy")

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "content-length",
})
SID = re.compile(rb'"sid"\s*:\s*"([^"]{1,128})"')
STICKY_IDLE_SECONDS = 3600.0  # a session idle this long is forgotten (engine.io drops it far sooner)
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=120)


class RoundRobinProxy:
    """Round-robin over ``backends`` (base URLs), sticky per socket.io session."""

    def __init__(self, backends: Sequence[str]) -> None:
        if not backends:
            raise ValueError("at least one backend is needed")
        self.backends = [b.rstrip("/") for b in backends]
        self._turn = itertools.cycle(range(len(self.backends)))
        self._sessions: dict[str, tuple[int, float]] = {}  # sid -> (backend index, last seen)
        self._client: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        # aiohttp 3.9 annotates its signals in a form aiosignal 1.4 no longer reads: correct at run time.
        app.on_startup.append(self._open)  # type: ignore[arg-type]
        app.on_cleanup.append(self._close)  # type: ignore[arg-type]
        return app

    async def _open(self, _app: web.Application) -> None:
        self._client = aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False)

    async def _close(self, _app: web.Application) -> None:
        if self._client is not None:
            await self._client.close()

    def _order(self, request: web.Request) -> tuple[list[int], str | None]:
        """The backends to try, in order, and the socket.io session id (if any)."""
        sid = request.query.get("sid") if request.path.startswith("/socket.io") else None
        if sid and sid in self._sessions:
            index, _ = self._sessions[sid]
            self._sessions[sid] = (index, time.monotonic())
            return [index], sid  # the session exists only there: no fail-over
        first = next(self._turn)
        return [(first + n) % len(self.backends) for n in range(len(self.backends))], sid

    def _remember(self, sid: str, index: int) -> None:
        now = time.monotonic()
        if len(self._sessions) > 1000:
            self._sessions = {s: v for s, v in self._sessions.items() if now - v[1] < STICKY_IDLE_SECONDS}
        self._sessions[sid] = (index, now)

    def _headers(self, request: web.Request) -> dict[str, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        forwarded_for = request.headers.get("X-Forwarded-For")
        peer = request.remote or ""
        headers["X-Forwarded-For"] = f"{forwarded_for}, {peer}" if forwarded_for else peer
        headers.setdefault("X-Forwarded-Proto", request.scheme)
        headers.setdefault("X-Forwarded-Host", request.host)
        return headers

    async def handle(self, request: web.Request) -> web.StreamResponse:
        order, sid = self._order(request)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, order)
        body = await request.read()
        assert self._client is not None
        for index in order:
            url = self.backends[index] + request.rel_url.path_qs
            try:
                async with self._client.request(request.method, url, headers=self._headers(request), data=body or None,
                                                allow_redirects=False) as upstream:
                    content = await upstream.read()
                    if request.path.startswith("/socket.io") and not sid and upstream.status == 200:
                        found = SID.search(content[:2048])
                        if found:
                            self._remember(found.group(1).decode(), index)
                    headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                    return web.Response(status=upstream.status, headers=headers, body=content)
            except aiohttp.ClientConnectorError:
                logger.warning("instance %s is unreachable; trying the next one", self.backends[index])
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                logger.warning("instance %s failed (%s)", self.backends[index], type(exc).__name__)
                return web.Response(status=502, text="bad gateway")
        return web.Response(status=502, text="no assistant instance is reachable")

    async def _websocket(self, request: web.Request, order: list[int]) -> web.StreamResponse:
        assert self._client is not None
        for index in order:
            url = self.backends[index].replace("http", "ws", 1) + request.rel_url.path_qs
            headers = {k: v for k, v in self._headers(request).items()
                       if not k.lower().startswith("sec-websocket")}
            try:
                upstream = await self._client.ws_connect(url, headers=headers, autoping=True)
            except aiohttp.ClientConnectorError:
                continue
            except aiohttp.WSServerHandshakeError as exc:
                return web.Response(status=exc.status or 502, text="websocket refused")
            client = web.WebSocketResponse(autoping=True)
            await client.prepare(request)
            await asyncio.gather(_pump(client, upstream), _pump(upstream, client), return_exceptions=True)
            await upstream.close()
            await client.close()
            return client
        return web.Response(status=502, text="no assistant instance is reachable")


async def _pump(source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                target: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
    """Copies messages from one side to the other until either closes."""
    async for message in source:
        if message.type == aiohttp.WSMsgType.TEXT:
            await target.send_str(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await target.send_bytes(message.data)
        else:
            break
    await target.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--backend", action="append", required=True, help="an instance's base URL (repeat)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    proxy = RoundRobinProxy(args.backend)
    logger.info("proxying %s:%s to %s", args.interface, args.port, ", ".join(proxy.backends))
    web.run_app(proxy.app(), host=args.interface, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
