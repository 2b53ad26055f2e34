"""Starts the whole assistant: database migrations, action server, Rasa server, staff console,
website chat server.

``make run`` calls this. Ports come from ``RASA_PORT`` (5005), ``ACTION_PORT`` (5055),
``STAFF_PORT`` (8080) and ``WEB_PORT`` (8000: the chat widget and a demo page);
``RASA_API_TOKEN``, when set, protects Rasa's HTTP API. Browsers may call Rasa only from the
widget's origins (``WEB_ALLOWED_ORIGINS`` and the web server's own, :func:`clinic.settings.widget_origins`).
A server that dies once everything is up is restarted with back-off while the others keep running
(:mod:`clinic.supervision`; the staff console shows when); one that dies while starting stops the
start with an error. Ctrl-C or SIGTERM stops everything.

``--rasa-instances N`` (``make run-prod``: 2) starts N Rasa servers on ``RASA_PORT``,
``RASA_PORT+1``... sharing PostgreSQL (``TRACKER_STORE_URL``, ``CLINIC_DATABASE_URL``) and
Redis (``REDIS_URL``: conversation locks and socket.io messages). With ``--nginx`` (``make
run-prod``) nginx takes ``RASA_PORT``, ``STAFF_PORT`` and ``WEB_PORT`` (:mod:`clinic.nginx`:
round-robin over the instances, socket.io sessions kept on one, request limits, an access log
without query strings) and each server listens on 127.0.0.1 on the port after its own: the
instances on ``RASA_PORT+1``..., the console on ``STAFF_PORT+1``, the web server on
``WEB_PORT+1``. Before anything starts it refuses, with a message saying what to change: Redis
set but unreachable, Rasa listening beyond localhost (``RASA_INTERFACE``) without
``RASA_API_TOKEN``, several instances without Redis or on SQLite, a database it cannot reach,
nginx missing, and two servers on one port.
While running, the reconciler records every 30 s any escalation a failed action call missed,
the notification dispatcher sends staff alerts from the outbox, and booking requests the
clinic's webhook missed are sent again.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clinic import nginx, settings
from clinic.profile import ProfileError, load_profile
from clinic.settings import LOOPBACK_INTERFACES, PROJECT_DIR, redact_url
from clinic.supervision import StatusFile, Supervisor, label

logger = logging.getLogger("clinic.launcher")
RECONCILE_EVERY = 30.0
SUPERVISE_EVERY = 0.5


class StartupError(RuntimeError):
    """The configuration cannot work; the message names the setting to change."""


def is_loopback(interface: str) -> bool:
    """Whether ``interface`` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if interface.strip().lower() in LOOPBACK_INTERFACES:
        return True
    try:
        return ipaddress.ip_address(interface.strip().strip("[]")).is_loopback
    except ValueError:  # a host name or 0.0.0.0-like wildcard spelled otherwise: not provably local
        return False


def check_api_exposure(interface: str, token: str | None) -> None:
    """Rasa's HTTP API reads and changes every conversation: beyond localhost it needs a token."""
    if not token and not is_loopback(interface):
        raise StartupError(
            f"Rasa would listen on {interface or 'every interface'} (RASA_INTERFACE) without RASA_API_TOKEN: "
            "its HTTP API (every conversation's messages, and sending messages as the clinic) would be open to "
            "anyone who can reach the port. Set RASA_API_TOKEN to a long random secret (e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or RASA_INTERFACE=127.0.0.1."
        )


def check_redis(url: str, timeout: float = 3.0) -> None:
    """Connects to ``REDIS_URL`` and pings it; a :class:`StartupError` naming it (password hidden) if not."""
    import redis

    from addons.lock_store import RedisURLError, redis_connection_kwargs

    shown = redact_url(url)
    try:
        redis_connection_kwargs(url)
    except RedisURLError as exc:
        raise StartupError(f"{exc} (REDIS_URL={shown})") from None
    client = None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {str(exc).strip().rstrip('.')}"
        password = urllib.parse.urlsplit(url).password
        if password:
            reason = reason.replace(password, "***")
        raise StartupError(
            f"Redis is unreachable at REDIS_URL={shown} ({reason}). Start Redis or correct REDIS_URL; "
            "unset it to run a single Rasa instance without Redis."
        ) from None
    finally:
        if client is not None:
            client.close()


def check_database(variable: str, url: str, timeout: int = 5) -> None:
    """Connects to a server database (PostgreSQL) once; a :class:`StartupError` naming ``variable``."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - e.g. an unknown scheme
        raise StartupError(f"{variable} is not a database URL ({redact_url(url)})") from None
    if parsed.drivername.startswith("sqlite"):
        return
    connect_args = {"connect_timeout": timeout} if parsed.drivername.startswith("postgresql") else {}
    engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure: say so, with the driver's first line
        detail = str(getattr(exc, "orig", None) or exc).strip()
        first_line = detail.splitlines()[0].rstrip(".") if detail else type(exc).__name__
        if parsed.password:
            first_line = first_line.replace(parsed.password, "***")
        hint = ""
        if "does not exist" in first_line and parsed.database:
            hint = (f" Create it first, e.g. `createdb -h {parsed.host or 'localhost'} "
                    f"-U {parsed.username or 'postgres'} {parsed.database}`.")
        raise StartupError(f"Cannot connect to {variable}={redact_url(url)}: {first_line}.{hint}") from None
    finally:
        engine.dispose()


def check_scale_out(instances: int, env: dict[str, str]) -> None:
    """Several Rasa instances must share their conversations (PostgreSQL) and locks (Redis)."""
    if instances <= 1:
        return
    if not (env.get("REDIS_URL") or "").strip():
        raise StartupError(
            f"{instances} Rasa instances need REDIS_URL (shared conversation locks, and socket.io messages "
            "that reach a browser connected to any instance), e.g. REDIS_URL=redis://127.0.0.1:6379/0."
        )
    for variable in ("TRACKER_STORE_URL", "CLINIC_DATABASE_URL"):
        url = (env.get(variable) or "").strip()
        if not url or url.startswith("sqlite"):
            raise StartupError(
                f"{instances} Rasa instances need {variable} on a database server (PostgreSQL, e.g. "
                f"postgresql://user:password@127.0.0.1:5432/clinic), not SQLite ({redact_url(url) or 'unset'})."
            )


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def action_server_command(port: int) -> list[str]:
    return [_bin("rasa"), "run", "actions", "--port", str(port), "--actions", "actions"]


def rasa_server_command(model: str, port: int, interface: str, token: str | None,
                        cors_origins: Sequence[str] = ()) -> list[str]:
    """``rasa run`` with the HTTP API; browsers may call it only from ``cors_origins`` (none: no browser)."""
    command = [
        _bin("rasa"), "run", "--model", model, "--port", str(port), "--interface", interface,
        "--enable-api", "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
    ]
    if cors_origins:
        command += ["--cors", *cors_origins]
    if token:
        command += ["--auth-token", token]
    return command


def _listen_args(port: int | None) -> list[str]:
    """Behind nginx a server listens on 127.0.0.1 on its own port; otherwise where its settings say."""
    return [] if port is None else ["--port", str(port), "--interface", "127.0.0.1"]


def console_command(port: int | None = None) -> list[str]:
    """The staff console, on ``port`` of 127.0.0.1 (None: ``STAFF_PORT`` on ``CONSOLE_INTERFACE``)."""
    return [sys.executable, "-m", "clinic.staff.console", *_listen_args(port)]


def web_command(port: int | None = None) -> list[str]:
    """The website chat's server: widget files, demo page, history (:mod:`clinic.channels.widget_server`);
    on ``port`` of 127.0.0.1 (None: ``WEB_PORT`` on ``WEB_INTERFACE``)."""
    return [sys.executable, "-m", "clinic.channels.widget_server", *_listen_args(port)]


def _env_int(env: dict[str, str], name: str, default: int) -> int:
    """A whole-number setting from the children's environment (the servers themselves refuse a bad one)."""
    try:
        return int((env.get(name) or "").strip() or default)
    except ValueError:
        return default


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


@dataclass(frozen=True)
class Front:
    """The ports nginx listens on in front of the stack: Rasa's and, when the stack serves them, the
    staff console's and the web server's (users open these; the servers listen on 127.0.0.1)."""

    rasa_port: int
    staff_port: int | None = None
    web_port: int | None = None


@dataclass
class Child:
    """One server of the stack: its name (``actions``, ``rasa``, ``rasa-2``, ``nginx``, ``console``,
    ``web``; also its log file's), how it is started, and its current process."""

    name: str
    command: list[str]
    process: subprocess.Popen


class Stack:
    """The action server, the Rasa server(s) (and the staff console and the website chat server when
    they have a port) as child processes of one process group.

    ``extra_rasa_ports``: more Rasa instances (scale-out) besides the one on ``rasa_port``; they
    need ``REDIS_URL`` and PostgreSQL stores in ``env`` (see :func:`check_scale_out`). The staff
    console and the web server are pointed at the one on ``rasa_port``: any instance serves the
    HTTP API, since conversations and their locks are shared.

    ``front``: nginx (:mod:`clinic.nginx`) on ``front``'s ports in front of the instances (on
    ``interface``), the console and the web server (on ``CONSOLE_INTERFACE``, ``WEB_INTERFACE``),
    which then all listen on 127.0.0.1 on their own ports (``rasa_port``..., ``staff_port``,
    ``web_port``); everything, the console's calls to Rasa included, goes through nginx.
    """

    def __init__(self, model: str, rasa_port: int, action_port: int, interface: str = "127.0.0.1",
                 env: dict[str, str] | None = None, quiet: bool = False, staff_port: int | None = None,
                 web_port: int | None = None, log_dir: Path | None = None,
                 extra_rasa_ports: Sequence[int] = (), front: Front | None = None) -> None:
        self.model, self.rasa_port, self.action_port, self.interface = model, rasa_port, action_port, interface
        self.extra_rasa_ports = list(extra_rasa_ports)
        self.front = front
        self.staff_port = staff_port
        self.web_port = web_port
        self.env = {**settings.environment(), **(env or {}),
                    "ACTION_PORT": str(action_port), "PYTHONPATH": str(PROJECT_DIR),
                    # the action server scrubs contact details from its logs (actions/__init__.py)
                    "CLINIC_LOG_HYGIENE": "1"}
        # The servers learn the ports users open: the console's links, the widget's origins and Rasa's address.
        if staff_port is not None:
            self.env.update(STAFF_PORT=str(self.public_staff_port), RASA_URL=f"http://127.0.0.1:{self.public_rasa_port}")
        if web_port is not None:
            self.env.update(WEB_PORT=str(self.public_web_port), RASA_PORT=str(self.public_rasa_port))
        # the launcher records restarts there and the console reads them
        self.status_file = settings.supervisor_status_file(self.env)
        self.env["SUPERVISOR_STATUS_FILE"] = str(self.status_file)
        self.quiet = quiet
        self.log_dir = log_dir  # when set, each server's output goes to <log_dir>/<server>.log
        self.children: list[Child] = []

    @property
    def public_rasa_port(self) -> int:
        """Where users reach Rasa: nginx's port, or the first instance's without nginx."""
        return self.front.rasa_port if self.front is not None else self.rasa_port

    @property
    def public_staff_port(self) -> int | None:
        """Where staff open the console (nginx's port for it, or the console's own)."""
        return (self.front.staff_port if self.front is not None else None) or self.staff_port

    @property
    def public_web_port(self) -> int | None:
        """Where browsers open the demo page (nginx's port for it, or the web server's own)."""
        return (self.front.web_port if self.front is not None else None) or self.web_port

    @property
    def processes(self) -> list[subprocess.Popen]:
        """Every server's current process, in start order."""
        return [child.process for child in self.children]

    def _popen(self, command: list[str], name: str) -> subprocess.Popen:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_dir / f"{name}.log", "ab") as output:
                return subprocess.Popen(command, cwd=PROJECT_DIR, env=self.env, stdout=output,
                                        stderr=subprocess.STDOUT)
        quiet = subprocess.DEVNULL if self.quiet else None
        return subprocess.Popen(command, cwd=PROJECT_DIR, env=self.env, stdout=quiet, stderr=quiet)

    def _spawn(self, command: list[str], name: str = "server") -> subprocess.Popen:
        child = Child(name, command, self._popen(command, name))
        self.children.append(child)
        return child.process

    def respawn(self, child: Child) -> None:
        """Starts ``child``'s server again, with the same command and log file."""
        child.process = self._popen(child.command, child.name)

    def start_actions(self) -> None:
        self._spawn(action_server_command(self.action_port), "actions")

    @property
    def rasa_ports(self) -> list[int]:
        """Every Rasa instance's port, ``rasa_port`` first."""
        return [self.rasa_port, *self.extra_rasa_ports]

    def check(self) -> None:
        """The start-up checks on this stack's settings; :class:`StartupError` says what to change."""
        check_api_exposure(self.interface, self.env.get("RASA_API_TOKEN"))
        check_scale_out(len(self.rasa_ports), self.env)
        if self.front is not None:
            self._check_front(self.front)
        if (self.env.get("REDIS_URL") or "").strip():
            prefix = (self.env.get("REDIS_KEY_PREFIX") or "").strip()
            if prefix and not prefix.isalnum():
                raise StartupError(f"REDIS_KEY_PREFIX must be letters and digits only, not {prefix!r}")
            check_redis(self.env["REDIS_URL"].strip())

    def _check_front(self, front: Front) -> None:
        """nginx is installed and no two servers share a port."""
        try:
            nginx.require_binary()
        except nginx.NginxError as exc:
            raise StartupError(str(exc)) from None
        ports = [self.action_port, *self.rasa_ports, *(p for p in (self.staff_port, self.web_port) if p is not None)]
        ports += [p for p in (front.rasa_port, front.staff_port, front.web_port) if p is not None]
        taken = sorted({p for p in ports if ports.count(p) > 1})
        if taken:
            raise StartupError(
                f"two servers would listen on port(s) {', '.join(map(str, taken))}: behind nginx each server takes "
                "the port after its own (Rasa RASA_PORT+1..., the console STAFF_PORT+1, the web server WEB_PORT+1); "
                "choose RASA_PORT, STAFF_PORT, WEB_PORT and ACTION_PORT further apart."
            )

    def start_rasa(self) -> None:
        """Starts every Rasa instance (log files ``rasa.log``, ``rasa-2.log``...)."""
        self.check()
        token = self.env.get("RASA_API_TOKEN")
        interface = "127.0.0.1" if self.front is not None else self.interface  # behind nginx
        origins = settings.widget_origins(self.env)
        for number, port in enumerate(self.rasa_ports, start=1):
            self._spawn(rasa_server_command(self.model, port, interface, token, origins),
                        "rasa" if number == 1 else f"rasa-{number}")

    @property
    def nginx_dir(self) -> Path:
        """nginx's configuration, pid file, temporary files and access log (``access.log``)."""
        return settings.var_dir(self.env) / "nginx"

    def nginx_sites(self) -> list[nginx.Site]:
        """nginx's listeners, with the request limits of the servers behind them."""
        from clinic.channels.widget_server import MAX_REQUEST_BODY
        from clinic.staff.console.middleware import MAX_BODY_BYTES

        front = self.front
        if front is None:
            return []
        env = self.env
        sites = [nginx.Site("rasa", front.rasa_port, self.interface, tuple(self.rasa_ports),
                            _env_int(env, "RASA_MAX_REQUEST_BYTES", 1024 * 1024),
                            _env_int(env, "RASA_REQUEST_TIMEOUT", 15), _env_int(env, "RASA_RESPONSE_TIMEOUT", 120))]
        if front.staff_port is not None and self.staff_port is not None:
            sites.append(nginx.Site("console", front.staff_port, env.get("CONSOLE_INTERFACE") or "127.0.0.1",
                                    (self.staff_port,), MAX_BODY_BYTES, _env_int(env, "CONSOLE_REQUEST_TIMEOUT", 15),
                                    _env_int(env, "CONSOLE_RESPONSE_TIMEOUT", 60)))
        if front.web_port is not None and self.web_port is not None:
            sites.append(nginx.Site("web", front.web_port, env.get("WEB_INTERFACE") or "127.0.0.1", (self.web_port,),
                                    MAX_REQUEST_BODY, _env_int(env, "WEB_REQUEST_TIMEOUT", 15),
                                    _env_int(env, "WEB_RESPONSE_TIMEOUT", 30)))
        return sites

    def start_nginx(self) -> None:
        """nginx on ``front``'s ports (``nginx.log``), after ``nginx -t`` accepts its configuration."""
        if self.front is None:
            return
        try:
            binary = nginx.require_binary()
            config = nginx.write_config(self.nginx_dir, self.nginx_sites())
            nginx.check_config(binary, config)
        except nginx.NginxError as exc:
            raise StartupError(str(exc)) from None
        self._spawn(nginx.command(binary, config), "nginx")

    def start_console(self) -> None:
        self._spawn(console_command(self.staff_port if self.front is not None else None), "console")

    def start_web(self) -> None:
        self._spawn(web_command(self.web_port if self.front is not None else None), "web")

    def start(self, timeout: float = 180) -> None:
        """Starts the servers (the staff console and the web server when they have a port) and waits
        until all answer. Raises :class:`StartupError` (nothing started) when a check fails."""
        self.check()
        self.start_actions()
        self.start_rasa()
        if self.staff_port is not None:
            self.start_console()
        if self.web_port is not None:
            self.start_web()
        self.start_nginx()
        # Through nginx when it is there: the ports users open answer.
        rasa_ports = [*self.rasa_ports, *([self.public_rasa_port] if self.front is not None else [])]
        ok = wait_until_up(f"http://127.0.0.1:{self.action_port}/health", timeout, self.processes) and all(
            wait_until_up(status_url(port, self.env.get("RASA_API_TOKEN")), timeout, self.processes)
            for port in rasa_ports
        )
        if ok and self.staff_port is not None:
            ok = wait_until_up(f"http://127.0.0.1:{self.public_staff_port}/login", timeout, self.processes)
        if ok and self.web_port is not None:
            ok = wait_until_up(f"http://127.0.0.1:{self.public_web_port}/healthz", timeout, self.processes)
        if not ok:
            died = [f"the {label(c.name)} exited with code {c.process.returncode}"
                    for c in self.children if c.process.poll() is not None]
            self.stop()
            # No restart here: a server dying while starting (a bad model, a taken port) would die again.
            raise RuntimeError(f"the assistant did not start ({'; '.join(died) or 'a server did not answer in time'}); "
                               "see the messages above")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.children.clear()


def _reconcile_forever(stop: threading.Event) -> None:
    from clinic.staff.reconcile import reconcile

    while not stop.wait(RECONCILE_EVERY):
        try:
            reconcile()
        except Exception:  # keep the loop alive; the next round retries
            logger.exception("reconciliation failed; retrying in %ss", RECONCILE_EVERY)


def _redeliver_booking_webhooks_forever(stop: threading.Event) -> None:
    """With the webhook scheduling backend: sends again the booking requests the clinic's URL missed."""
    from clinic.booking.scheduling import SchedulerError, get_scheduler
    from clinic.booking.scheduling.webhook import WebhookScheduler, deliver_pending
    from clinic.profile import load_profile

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
    from clinic.staff.notifications import run_dispatcher

    try:
        run_dispatcher(stop)
    except Exception:  # configuration was checked at start; anything else must not stop the stack
        logger.exception("the notification dispatcher stopped")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--rasa-instances", type=int, default=settings.rasa_instances(),
                        help="Rasa servers on RASA_PORT, RASA_PORT+1... (default RASA_INSTANCES or 1; "
                             "more than one needs REDIS_URL and PostgreSQL)")
    parser.add_argument("--nginx", action="store_true",
                        help="nginx on RASA_PORT, STAFF_PORT and WEB_PORT in front of the Rasa instances, the console "
                             "and the web server, which then listen on 127.0.0.1 on the port after their own")
    args = parser.parse_args(argv)
    if args.rasa_instances < 1:
        parser.error("--rasa-instances must be 1 or more")
    return args


def _stack_from_settings(model: str, instances: int, behind_nginx: bool) -> Stack:
    """The stack on the configured ports; behind nginx, each server takes the port after its own."""
    rasa_port, action_port, interface = settings.rasa_port(), settings.action_port(), settings.rasa_interface()
    staff_port, web_port = settings.staff_port(), settings.web_port()
    shift = 1 if behind_nginx else 0
    first_port = rasa_port + shift
    extra_ports = [first_port + n for n in range(1, instances)]
    front = Front(rasa_port, staff_port, web_port) if behind_nginx else None
    return Stack(model, first_port, action_port, interface, staff_port=staff_port + shift,
                 web_port=web_port + shift, extra_rasa_ports=extra_ports, front=front)


def _configuration_error(stack: Stack) -> Exception | None:
    """What stops the stack from starting (notifiers, the stack's checks, both databases), if anything."""
    from clinic.staff.notifications import ConfigError, load_notifiers

    try:
        load_notifiers()
        stack.check()
        check_database("CLINIC_DATABASE_URL", settings.clinic_database_url())
        check_database("TRACKER_STORE_URL", settings.tracker_store_url())
    except (ConfigError, StartupError) as exc:
        return exc
    return None


def _cannot_start(reason: Exception) -> int:
    print(f"Cannot start: {reason}", file=sys.stderr)
    return 2


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (Ctrl-C)."""
    stopping = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stopping


def _start_background_work(stopping: threading.Event) -> None:
    """The reconciler, the notification dispatcher and the booking webhook re-delivery, until ``stopping``."""
    for work in (_reconcile_forever, _dispatch_forever, _redeliver_booking_webhooks_forever):
        threading.Thread(target=work, args=(stopping,), daemon=True).start()


def _running_banner(clinic_name: str, stack: Stack) -> str:
    """Where to reach each part of the running assistant."""
    behind_nginx = stack.front is not None
    public_port = stack.public_rasa_port
    token_note = "?token=$RASA_API_TOKEN" if settings.rasa_api_token() else ""
    instances_note = (
        f"  Rasa instances:     ports {', '.join(str(p) for p in stack.rasa_ports)}"
        f"{' (127.0.0.1) behind nginx on ' + str(public_port) if behind_nginx else ''}; they share PostgreSQL "
        "and Redis, so any of them serves any conversation\n"
        if len(stack.rasa_ports) > 1 or behind_nginx else ""
    )
    nginx_note = f"  nginx access log:   {stack.nginx_dir / 'access.log'}\n" if behind_nginx else ""
    return (
        f"\n{clinic_name} assistant is running.\n"
        f"  Talk to it (REST):  curl -s \"localhost:{public_port}/webhooks/rest/webhook{token_note}\" "
        f"-d '{{\"sender\": \"me\", \"message\": \"what is ketamine?\"}}'\n"
        f"  Website chat demo:  http://localhost:{stack.public_web_port}/  (the widget: /widget/clinic-chat.js)\n"
        f"  Socket.IO channel:  http://localhost:{public_port}/socket.io\n"
        f"  SMS (Twilio):       POST http://localhost:{public_port}/webhooks/twilio/webhook\n"
        f"  HTTP API:           http://localhost:{public_port}/status{token_note}\n"
        f"  Staff console:      http://localhost:{stack.public_staff_port}/  (create an account first:\n"
        f"                      .venv/bin/python -m clinic.cli staff add YOUR_NAME --admin)\n"
        f"  Open escalations:   make escalations\n"
        f"{instances_note}"
        f"{nginx_note}"
        f"Press Ctrl-C to stop.\n"
    )


def _supervise(stack: Stack, stopping: threading.Event) -> int:
    """Restarts any server that dies (:class:`clinic.supervision.Supervisor`) until ``stopping``,
    then stops them all; the exit status."""
    supervisor = Supervisor(stack.children, stack.respawn, StatusFile(stack.status_file))
    while not stopping.wait(SUPERVISE_EVERY):
        supervisor.check()
    print("Stopping...", flush=True)
    stack.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        profile = load_profile()
    except ProfileError as exc:
        return _cannot_start(exc)
    stack = _stack_from_settings(args.model, args.rasa_instances, args.nginx)
    problem = _configuration_error(stack)
    if problem is not None:
        return _cannot_start(problem)
    from clinic.db import migrate

    migrate()
    StatusFile(stack.status_file).reset()  # restarts of an earlier run are not news
    stopping = _stop_on_signals()
    try:
        stack.start()
    except StartupError as exc:  # e.g. Redis went away since the check
        return _cannot_start(exc)
    except RuntimeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    _start_background_work(stopping)
    print(_running_banner(profile.name, stack), flush=True)
    return _supervise(stack, stopping)


if __name__ == "__main__":
    sys.exit(main())
