"""clinic.launcher's start-up checks, the scale-out settings, Rasa's CORS and the supervision of its
servers (no Rasa server is started: stand-in processes sleep)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from clinic import launcher
from clinic.launcher import (
    Stack,
    StartupError,
    _supervise,
    check_api_exposure,
    check_database,
    check_redis,
    check_scale_out,
    is_loopback,
    rasa_server_command,
)
from clinic.settings import PROJECT_DIR, redact_url
from clinic.supervision import StatusFile

SECRET = "s3cret-Passw0rd"


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ Rasa's HTTP API beyond localhost


@pytest.mark.parametrize("interface", ["127.0.0.1", "localhost", "::1", "127.0.0.2", "[::1]", "LOCALHOST"])
def test_loopback_interfaces(interface: str) -> None:
    assert is_loopback(interface)
    check_api_exposure(interface, None)  # no token needed


@pytest.mark.parametrize("interface", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.20", "assistant.example.org", ""])
def test_beyond_localhost_needs_the_token(interface: str) -> None:
    assert not is_loopback(interface)
    with pytest.raises(StartupError) as refused:
        check_api_exposure(interface, None)
    assert "RASA_API_TOKEN" in str(refused.value) and "RASA_INTERFACE" in str(refused.value)
    check_api_exposure(interface, "a-long-random-token-from-secrets")  # with it: fine


def _launcher(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clinic.launcher", "--model", "no-model-needed.tar.gz", *args],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def launcher_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"REDIS_URL", "RASA_API_TOKEN", "RASA_INTERFACE", "RASA_INSTANCES", "STAFF_NOTIFIERS"}}
    env.update(PYTHONPATH=str(PROJECT_DIR), CLINIC_VAR_DIR=str(tmp_path),
               CLINIC_DATABASE_URL=f"sqlite:///{tmp_path / 'clinic.db'}",
               TRACKER_STORE_URL=f"sqlite:///{tmp_path / 'tracker.db'}")
    return env


def test_the_launcher_refuses_an_open_http_api(launcher_env: dict[str, str], tmp_path: Path) -> None:
    result = _launcher({**launcher_env, "RASA_INTERFACE": "0.0.0.0"})
    assert result.returncode == 2
    assert "Cannot start" in result.stderr and "RASA_API_TOKEN" in result.stderr and "0.0.0.0" in result.stderr
    assert not (tmp_path / "clinic.db").exists()  # refused before anything was done


# ------------------------------------------------------------------ Redis


def test_unreachable_redis_is_named_without_its_password() -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{closed_port()}/0"
    with pytest.raises(StartupError) as refused:
        check_redis(url, timeout=1)
    message = str(refused.value)
    assert "REDIS_URL" in message and "unreachable" in message and redact_url(url) in message
    assert SECRET not in message and "***" in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "unix:///run/redis.sock", "redis://127.0.0.1:notaport/0"])
def test_a_redis_url_that_cannot_work_is_refused(url: str) -> None:
    with pytest.raises(StartupError, match="REDIS_URL"):
        check_redis(url, timeout=1)


def test_the_launcher_stops_when_redis_is_unreachable(launcher_env: dict[str, str], tmp_path: Path) -> None:
    url = f"redis://user:{SECRET}@127.0.0.1:{closed_port()}/3"
    result = _launcher({**launcher_env, "REDIS_URL": url})
    assert result.returncode == 2, result.stderr
    assert "REDIS_URL" in result.stderr and "redis://user:***@127.0.0.1" in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert not (tmp_path / "clinic.db").exists()


def test_a_stack_with_unreachable_redis_starts_nothing(tmp_path: Path) -> None:
    stack = Stack("model.tar.gz", closed_port(), closed_port(),
                  env={"REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}, quiet=True)
    with pytest.raises(StartupError, match="REDIS_URL"):
        stack.start(timeout=5)
    assert stack.processes == []


def test_redis_key_prefix_must_be_alphanumeric() -> None:
    stack = Stack("model.tar.gz", 1, 2, env={"REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_KEY_PREFIX": "my-clinic"})
    with pytest.raises(StartupError, match="REDIS_KEY_PREFIX"):
        stack.check()


# ------------------------------------------------------------------ several instances


POSTGRES = "postgresql://clinic:pw@db.internal:5432/clinic"


def test_several_instances_need_redis_and_a_database_server() -> None:
    check_scale_out(1, {})  # one instance: SQLite and in-memory locks are fine
    with pytest.raises(StartupError, match="REDIS_URL"):
        check_scale_out(2, {"TRACKER_STORE_URL": POSTGRES, "CLINIC_DATABASE_URL": POSTGRES})
    with pytest.raises(StartupError, match="TRACKER_STORE_URL"):
        check_scale_out(2, {"REDIS_URL": "redis://r:6379/0", "CLINIC_DATABASE_URL": POSTGRES})
    with pytest.raises(StartupError, match="CLINIC_DATABASE_URL"):
        check_scale_out(2, {"REDIS_URL": "redis://r:6379/0", "TRACKER_STORE_URL": POSTGRES,
                            "CLINIC_DATABASE_URL": "sqlite:///var/clinic.db"})
    check_scale_out(
        2, {"REDIS_URL": "redis://r:6379/0", "TRACKER_STORE_URL": POSTGRES, "CLINIC_DATABASE_URL": POSTGRES}
    )


def test_the_launcher_refuses_two_instances_on_sqlite(launcher_env: dict[str, str]) -> None:
    result = _launcher(launcher_env, "--rasa-instances", "2")
    assert result.returncode == 2 and "REDIS_URL" in result.stderr


def test_an_unreachable_database_is_named_without_its_password() -> None:
    url = f"postgresql://clinic:{SECRET}@127.0.0.1:{closed_port()}/clinic"
    with pytest.raises(StartupError) as refused:
        check_database("CLINIC_DATABASE_URL", url, timeout=2)
    assert "CLINIC_DATABASE_URL=postgresql://clinic:***@127.0.0.1" in str(refused.value)
    assert SECRET not in str(refused.value)
    check_database("CLINIC_DATABASE_URL", "sqlite:///nowhere/clinic.db")  # files are not checked


def test_several_instances_share_one_stack() -> None:
    stack = Stack("model.tar.gz", 5005, 5055, extra_rasa_ports=[5006])
    assert stack.rasa_ports == [5005, 5006]
    assert Stack("model.tar.gz", 5005, 5055).rasa_ports == [5005]


def test_behind_nginx_users_open_the_usual_ports_and_the_servers_take_the_next(monkeypatch: pytest.MonkeyPatch,
                                                                               tmp_path: Path) -> None:
    for name, value in {"RASA_PORT": "5005", "STAFF_PORT": "8080", "WEB_PORT": "8000", "ACTION_PORT": "5055",
                        "CLINIC_VAR_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    stack = launcher._stack_from_settings("model.tar.gz", 2, behind_nginx=True)
    assert stack.rasa_ports == [5006, 5007] and (stack.staff_port, stack.web_port) == (8081, 8001)
    assert (stack.public_rasa_port, stack.public_staff_port, stack.public_web_port) == (5005, 8080, 8000)
    # the console calls Rasa, and the widget's page names it, through nginx; links use the public ports
    assert stack.env["RASA_URL"] == "http://127.0.0.1:5005" and stack.env["RASA_PORT"] == "5005"
    assert (stack.env["STAFF_PORT"], stack.env["WEB_PORT"]) == ("8080", "8000")
    assert launcher.console_command(8081)[-4:] == ["--port", "8081", "--interface", "127.0.0.1"]
    sites = {site.name: (site.port, site.upstream) for site in stack.nginx_sites()}
    assert sites == {"rasa": (5005, (5006, 5007)), "console": (8080, (8081,)), "web": (8000, (8001,))}
    assert stack.nginx_dir == tmp_path / "nginx"


def test_behind_nginx_two_servers_on_one_port_are_refused() -> None:
    stack = Stack("model.tar.gz", 5006, 5055, staff_port=8081, web_port=5005,
                  front=launcher.Front(5005, 8080, 8000))
    with pytest.raises(StartupError, match="port.* 5005"):
        stack._check_front(launcher.Front(5005, 8080, 8000))


def test_without_nginx_installed_the_launcher_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher.nginx, "find_binary", lambda path=None: None)
    stack = Stack("model.tar.gz", 5006, 5055, front=launcher.Front(5005))
    with pytest.raises(StartupError, match="make nginx"):
        stack.check()


# ------------------------------------------------------------------ settings used by Rasa's processes


def test_redact_url() -> None:
    assert redact_url(f"redis://:{SECRET}@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url(f"postgresql://u:{SECRET}@h/db?options=-csearch_path%3Ds") == "postgresql://u:***@h/db?options=-csearch_path%3Ds"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_lock_store_follows_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.lock_store import InMemoryLockStore

    from addons.lock_store import AtomicRedisLockStore, ClinicLockStore

    monkeypatch.delenv("REDIS_URL", raising=False)
    assert isinstance(ClinicLockStore(endpoint_config=None), InMemoryLockStore)
    monkeypatch.setenv("REDIS_URL", "redis://:pw@127.0.0.1:6399/2")  # not connected to until used
    monkeypatch.setenv("REDIS_KEY_PREFIX", "clinicA")
    store = ClinicLockStore(endpoint_config=None)
    assert isinstance(store, AtomicRedisLockStore) and store.key_prefix == "clinicA:lock:"
    assert store.red.connection_pool.connection_kwargs["db"] == 2


def test_endpoints_name_the_environment_driven_lock_store() -> None:
    import yaml

    endpoints = yaml.safe_load((PROJECT_DIR / "endpoints.yml").read_text(encoding="utf-8"))
    assert endpoints["lock_store"] == {"type": "addons.lock_store.ClinicLockStore"}


def test_socketio_uses_redis_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from addons.socketio_channel import JsonRedisManager, client_manager

    monkeypatch.delenv("REDIS_URL", raising=False)
    assert client_manager() is None
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6399/0")
    monkeypatch.setenv("REDIS_KEY_PREFIX", "clinicB")
    manager = client_manager()
    assert isinstance(manager, JsonRedisManager) and manager.channel == "clinicB:socketio"


def test_socketio_messages_between_instances_are_json_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the instances pass through Redis is JSON; a pickle arriving there is skipped, never loaded."""
    import asyncio
    import json
    import pickle

    from socketio import AsyncRedisManager

    from addons.socketio_channel import JsonRedisManager

    arriving = [pickle.dumps({"method": "emit", "event": "evil"}), b"not json",
                json.dumps({"method": "emit", "event": "bot_uttered", "data": {"text": "hi"}}).encode()]

    async def from_redis(self: AsyncRedisManager):
        for raw in arriving:
            yield raw

    published: list[tuple[str, object]] = []

    class FakeRedis:
        async def publish(self, channel: str, payload: object) -> int:
            published.append((channel, payload))
            return 1

    monkeypatch.setattr(AsyncRedisManager, "_listen", from_redis)
    manager = JsonRedisManager("redis://127.0.0.1:6399/0", channel="clinicC:socketio")
    manager.redis = FakeRedis()

    async def scenario() -> list[object]:
        await manager._publish({"method": "emit", "event": "bot_uttered", "data": {"text": "hello"}, "room": "r"})
        return [message async for message in manager._listen()]

    received = asyncio.run(scenario())
    assert received == [{"method": "emit", "event": "bot_uttered", "data": {"text": "hi"}}]
    [(channel, payload)] = published
    assert channel == "clinicC:socketio" and isinstance(payload, str)
    assert json.loads(payload)["data"] == {"text": "hello"}


# ------------------------------------------------------------------ browsers: Rasa's CORS


class _Sleeping:
    """Stands in for a server process that stays up."""

    pid = 1
    returncode = None

    def poll(self) -> None:
        return None


def test_browsers_may_call_rasa_only_from_the_widget_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = Stack("model.tar.gz", 5005, 5055, web_port=8123,
                  env={"WEB_ALLOWED_ORIGINS": "https://www.example-clinic.org/, https://clinic.example",
                       "WEB_INTERFACE": "127.0.0.1"})
    spawned: list[list[str]] = []

    def popen(command: list[str], name: str) -> _Sleeping:
        spawned.append(command)
        return _Sleeping()

    monkeypatch.setattr(stack, "check", lambda: None)  # no Redis or token checks here
    monkeypatch.setattr(stack, "_popen", popen)

    stack.start_rasa()

    [command] = spawned
    cors = command[command.index("--cors") + 1:command.index("--cors") + 5]
    assert cors == ["http://localhost:8123", "http://127.0.0.1:8123", "https://www.example-clinic.org",
                    "https://clinic.example"]
    assert "*" not in command


def test_without_origins_no_browser_may_call_rasa() -> None:
    command = rasa_server_command("m.tar.gz", 5005, "127.0.0.1", None, cors_origins=())
    assert "--cors" not in command and "*" not in command


# ------------------------------------------------------------------ supervision


def _sleeper() -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(120)"]


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_dead_server_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    stack = Stack("model.tar.gz", 1, 2, env={"CLINIC_VAR_DIR": str(tmp_path)}, quiet=True)
    for name in ("actions", "rasa", "console", "web"):
        stack._spawn(_sleeper(), name)
    actions, *others = stack.children
    pids = [child.process.pid for child in others]
    stopping = threading.Event()
    status: list[int] = []
    supervising = threading.Thread(target=lambda: status.append(_supervise(stack, stopping)))
    supervising.start()
    try:
        old = actions.process
        old.send_signal(signal.SIGKILL)

        assert _wait_for(lambda: actions.process is not old and actions.process.poll() is None)
        assert [child.process.pid for child in others] == pids
        assert all(child.process.poll() is None for child in others)
        # the restart is recorded just after the new process starts
        status_file = StatusFile(tmp_path / "run" / "supervisor.json")
        assert _wait_for(lambda: [r.process for r in status_file.restarts()] == ["actions"])
    finally:
        processes = stack.processes
        stopping.set()  # what SIGTERM and Ctrl-C do
        supervising.join(timeout=30)
    assert status == [0]
    assert all(process.poll() is not None for process in processes)  # everything stopped


def test_a_server_dying_while_starting_stops_the_start_with_its_name(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    monkeypatch.setattr(launcher, "action_server_command", lambda port: _sleeper())
    monkeypatch.setattr(launcher, "rasa_server_command",
                        lambda *args: [sys.executable, "-c", "raise SystemExit(3)"])  # e.g. a model that cannot load
    stack = Stack("model.tar.gz", closed_port(), closed_port(), env={"CLINIC_VAR_DIR": str(tmp_path)}, quiet=True)
    started = time.monotonic()

    with pytest.raises(RuntimeError, match="the Rasa server exited with code 3"):
        stack.start(timeout=60)

    assert time.monotonic() - started < 30  # no waiting for the timeout, no restart loop
    assert stack.processes == []
    assert not (tmp_path / "run" / "supervisor.json").exists()


def test_the_console_reads_the_status_file_the_launcher_writes(tmp_path: Path) -> None:
    stack = Stack("model.tar.gz", 1, 2, env={"CLINIC_VAR_DIR": str(tmp_path)}, staff_port=3)
    assert stack.status_file == tmp_path / "run" / "supervisor.json"
    assert stack.env["SUPERVISOR_STATUS_FILE"] == str(stack.status_file)
