"""A patient on the web chat: a socket.io client of Rasa's socketio channel."""

from __future__ import annotations

import queue
import time
import uuid

import socketio


class SocketPatient:
    """Connects like the web widget (session persistence) and collects the bot's messages."""

    def __init__(self, rasa_port: int, session_id: str | None = None) -> None:
        self.session_id = session_id or f"web-{uuid.uuid4().hex[:12]}"
        self.received: queue.Queue[dict] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        self.client.on("bot_uttered", self.received.put)
        confirmed: queue.Queue[str] = queue.Queue()
        self.client.on("session_confirm", confirmed.put)
        self.client.connect(f"http://127.0.0.1:{rasa_port}", transports=["polling"], wait_timeout=10)
        self.client.emit("session_request", {"session_id": self.session_id})
        confirmed.get(timeout=10)

    def say(self, text: str) -> None:
        self.client.emit("user_uttered", {"message": text, "session_id": self.session_id})

    def replies(self, wait: float = 10.0, quiet_for: float = 1.5) -> list[str]:
        """The texts received until nothing more arrives for ``quiet_for`` s (at most ``wait`` s)."""
        texts: list[str] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                message = self.received.get(timeout=quiet_for if texts else min(wait, deadline - time.monotonic()))
            except queue.Empty:
                break
            texts.append(message.get("text") or "")
        return texts

    def close(self) -> None:
        self.client.disconnect()
