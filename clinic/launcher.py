"""Starts the whole assistant: database migrations, action server, Rasa server, staff console,
website chat server.

``make run`` calls this. Ports come from ``RASA_PORT`` (5005), ``ACTION_PORT`` (5055),
``STAFF_PORT`` (8080) and ``WEB_PORT`` (8000: the chat widget and a demo page);
``RASA_API_TOKEN``, when set, protects Rasa's HTTP API. Ctrl-C or SIGTERM stops everything.
While running, the reconciler records every 30 s any escalation a failed action call missed,
the notification dispatcher sends staff alerts from the outbox, and booking requests the
clinic's webhook missed are sent again.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from clinic.profile import ProfileError, load_profile
from clinic.settings import PROJECT_DIR

logger = logging.getLogger("clinic.launcher")
RECONCILE_EVERY = 30.0


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def action_server_command(port: int) -> list[str]:
    return [_bin("rasa"), "run", "actions", "--port", str(port), "--actions", "actions"]


def rasa_server_command(model: str, port: int, interface: str, token: str | None) -> list[str]:
    command = [
        _bin("rasa"), "run", "--model", model, "--port", str(port), "--interface", interface,
        "--enable-api", "--cors", "*", "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
    ]
    if token:
        command += ["--auth-token", token]
    return command


def console_command() -> list[str]:
    return [sys.executable, "-m", "clinic.console"]


def web_command() -> list[str]:
    """The website chat's server: widget files, demo page, history (:mod:`clinic.web`)."""
    return [sys.executable, "-m", "clinic.web"]


def wait_until_up(url: str, timeout: float, processes: Sequence[subprocess.Popen]) -> bool:
    """Polls ``url`` until it answers 200, a process dies, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:  # refused, or an HTTP error such as 409 "no model loaded yet"
            time.sleep(0.3)
    return False


def status_url(port: int, token: str | None) -> str:
    """Rasa's /status: 200 only once a model is loaded (a server without one answers 409)."""
    query = f"?{urllib.parse.urlencode({'token': token})}" if token else ""
    return f"http://127.0.0.1:{port}/status{query}"


class Stack:
    """The action server, the Rasa server (and the staff console and the website chat server when
    they have a port) as child processes of one process group."""

    def __init__(self, model: str, rasa_port: int, action_port: int, interface: str = "127.0.0.1",
                 env: dict[str, str] | None = None, quiet: bool = False, staff_port: int | None = None,
                 web_port: int | None = None, log_dir: Path | None = None) -> None:
        self.model, self.rasa_port, self.action_port, self.interface = model, rasa_port, action_port, interface
        self.staff_port = staff_port
        self.web_port = web_port
        self.env = {**os.environ, **(env or {}), "ACTION_PORT": str(action_port), "PYTHONPATH": str(PROJECT_DIR)}
        if staff_port is not None:
            self.env.update(STAFF_PORT=str(staff_port), RASA_URL=f"http://127.0.0.1:{rasa_port}")
        if web_port is not None:
            self.env.update(WEB_PORT=str(web_port), RASA_PORT=str(rasa_port))
        self.quiet = quiet
        self.log_dir = log_dir  # when set, each server's output goes to <log_dir>/<server>.log
        self.processes: list[subprocess.Popen] = []

    def _spawn(self, command: list[str], name: str = "server") -> subprocess.Popen:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_dir / f"{name}.log", "ab") as output:
                process = subprocess.Popen(command, cwd=PROJECT_DIR, env=self.env, stdout=output,
                                           stderr=subprocess.STDOUT)
        else:
            output = subprocess.DEVNULL if self.quiet else None
            process = subprocess.Popen(command, cwd=PROJECT_DIR, env=self.env, stdout=output, stderr=output)
        self.processes.append(process)
        return process

    def start_actions(self) -> None:
        self._spawn(action_server_command(self.action_port), "actions")

    def start_rasa(self) -> None:
        self._spawn(rasa_server_command(self.model, self.rasa_port, self.interface, self.env.get("RASA_API_TOKEN")), "rasa")

    def start_console(self) -> None:
        self._spawn(console_command(), "console")

    def start_web(self) -> None:
        self._spawn(web_command(), "web")

    def start(self, timeout: float = 180) -> None:
        """Starts the servers (the staff console and the web server when they have a port) and waits
        until all answer."""
        self.start_actions()
        self.start_rasa()
        if self.staff_port is not None:
            self.start_console()
        if self.web_port is not None:
            self.start_web()
        ok = wait_until_up(f"http://127.0.0.1:{self.action_port}/health", timeout, self.processes) and wait_until_up(
            status_url(self.rasa_port, self.env.get("RASA_API_TOKEN")), timeout, self.processes
        )
        if ok and self.staff_port is not None:
            ok = wait_until_up(f"http://127.0.0.1:{self.staff_port}/login", timeout, self.processes)
        if ok and self.web_port is not None:
            ok = wait_until_up(f"http://127.0.0.1:{self.web_port}/healthz", timeout, self.processes)
        if not ok:
            self.stop()
            raise RuntimeError("the assistant did not start (or its model did not load); see the messages above")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


def _reconcile_forever(stop: threading.Event) -> None:
    from clinic.reconcile import reconcile

    while not stop.wait(RECONCILE_EVERY):
        try:
            reconcile()
        except Exception:  # keep the loop alive; the next round retries
            logger.exception("reconciliation failed; retrying in %ss", RECONCILE_EVERY)


def _redeliver_booking_webhooks_forever(stop: threading.Event) -> None:
    """With the webhook scheduling backend: sends again the booking requests the clinic's URL missed."""
    from clinic.profile import load_profile
    from clinic.scheduling import SchedulerError, get_scheduler
    from clinic.scheduling.webhook import WebhookScheduler, deliver_pending

    while not stop.wait(RECONCILE_EVERY):
        try:
            scheduler = get_scheduler(load_profile())
            if isinstance(scheduler, WebhookScheduler):
                deliver_pending(scheduler)
        except SchedulerError:  # said at start-up; nothing to retry with
            return
        except Exception:  # keep the loop alive; the next round retries
            logger.exception("booking webhook re-delivery failed; retrying in %ss", RECONCILE_EVERY)


def _dispatch_forever(stop: threading.Event) -> None:
    from clinic.notifications import run_dispatcher

    try:
        run_dispatcher(stop)
    except Exception:  # configuration was checked at start; anything else must not stop the stack
        logger.exception("the notification dispatcher stopped")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        profile = load_profile()
    except ProfileError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 2
    from clinic.db import migrate
    from clinic.notifications import ConfigError, load_notifiers
    from clinic.settings import staff_port
    from clinic.web import web_port

    try:
        load_notifiers()
    except ConfigError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 2
    migrate()
    rasa_port = int(os.environ.get("RASA_PORT", "5005"))
    action_port = int(os.environ.get("ACTION_PORT", "5055"))
    interface = os.environ.get("RASA_INTERFACE", "127.0.0.1")
    stack = Stack(args.model, rasa_port, action_port, interface, staff_port=staff_port(), web_port=web_port())

    stopping = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        stack.start()
    except RuntimeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    threading.Thread(target=_reconcile_forever, args=(stopping,), daemon=True).start()
    threading.Thread(target=_dispatch_forever, args=(stopping,), daemon=True).start()
    threading.Thread(target=_redeliver_booking_webhooks_forever, args=(stopping,), daemon=True).start()
    token_note = "?token=$RASA_API_TOKEN" if os.environ.get("RASA_API_TOKEN") else ""
    print(
        f"\n{profile.name} assistant is running.\n"
        f"  Talk to it (REST):  curl -s localhost:{rasa_port}/webhooks/rest/webhook "
        f"-d '{{\"sender\": \"me\", \"message\": \"what is ketamine?\"}}'\n"
        f"  Website chat demo:  http://localhost:{web_port()}/  (the widget: /widget/clinic-chat.js)\n"
        f"  Socket.IO channel:  http://localhost:{rasa_port}/socket.io\n"
        f"  SMS (Twilio):       POST http://localhost:{rasa_port}/webhooks/twilio/webhook\n"
        f"  HTTP API:           http://localhost:{rasa_port}/status{token_note}\n"
        f"  Staff console:      http://localhost:{staff_port()}/  (create an account first:\n"
        f"                      .venv/bin/python -m clinic.cli staff add YOUR_NAME --admin)\n"
        f"  Open escalations:   make escalations\n"
        f"Press Ctrl-C to stop.\n",
        flush=True,
    )
    while not stopping.is_set():
        if any(p.poll() is not None for p in stack.processes):
            print("A server stopped unexpectedly; shutting down.", file=sys.stderr)
            stack.stop()
            return 1
        stopping.wait(1.0)
    print("Stopping...", flush=True)
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
