"""The real launcher (``python -m clinic.launcher``, what ``make run`` starts) keeps the assistant up
when one server dies.

Twenty REST conversations (five in crisis, five asking a personal medical question, ten about
prices and insurance) are in progress when the action server is killed (SIGKILL), and killed
again right after its first restart. The launcher restarts it each time, after 1 s and then 2 s;
Rasa, the staff console and the web server keep their processes and keep answering; every
patient message gets an answer (the crisis resources among them); staff see "The action server
restarted at HH:MM" in the console; the escalations made while it was down are recorded (the
reconciler, every 30 s). SIGTERM then stops every server and the launcher exits 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from addons.handoff_policy import HANDOFF_SLOT
from clinic.settings import PROJECT_DIR
from clinic.supervision import StatusFile
from tests.clinic.staff import stored_escalations
from tests.integration.conftest import free_port

PASSWORD = "correct horse battery staple"
CALL_US = "Please call us at"  # utter_escalation_failed: what a patient is told when an action cannot run
STARTUP_SECONDS = 300.0
TIMEOUT = 60.0
SERVERS = {  # how each server's process is recognised among the launcher's children
    "actions": "run actions",
    "rasa": "rasa run --model",
    "console": "clinic.staff.console",
    "web": "clinic.channels.widget_server",
}
SCRIPTS = {
    "crisis": ["hi, what is ketamine?", "honestly i just want to kill myself", "are you there?"],
    "medical": ["how much is an infusion?", "I'm on lithium for bipolar, is ketamine safe for me?", "ok thanks"],
    "faq": ["how much is an infusion?", "do you take insurance?", "where are you located?"],
}
KINDS = ["crisis"] * 5 + ["medical"] * 5 + ["faq"] * 10


@dataclass
class Conversation:
    sender: str
    kind: str
    answers: list[list[str] | None] = field(default_factory=list)  # None: the request failed


@dataclass
class Run:
    """What happened to the launched assistant (the scenario runs once for every test here)."""

    ports: dict[str, int]
    database_url: str
    status_file: Path
    log: Path
    before: dict[str, int]  # each server's pid before the kills
    after: dict[str, int]  # and once traffic is over
    killed: list[int]  # the action server pids killed
    restarted_after: list[float]  # seconds from each kill to the new process
    conversations: list[Conversation]
    answering: dict[str, list[int]]  # status codes of each other server, polled during the kills
    launcher: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _children(launcher_pid: int) -> dict[str, int]:
    """The launcher's servers by name, from the process table."""
    listing = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(launcher_pid)], capture_output=True,
                             text=True, check=False).stdout
    found: dict[str, int] = {}
    for line in listing.splitlines():
        pid, _, args = line.strip().partition(" ")
        for name, marker in SERVERS.items():
            if marker in args:
                found[name] = int(pid)
    return found


def _wait_for(condition: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


def _answers(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _say(port: int, sender: str, message: str) -> list[str] | None:
    try:
        response = httpx.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                              json={"sender": sender, "message": message}, timeout=TIMEOUT)
    except httpx.HTTPError:
        return None
    return [m.get("text") or "" for m in response.json()] if response.status_code == 200 else None


def _environment(var: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"REDIS_URL", "RASA_API_TOKEN", "RASA_INTERFACE", "RASA_INSTANCES", "SUPERVISOR_STATUS_FILE"}}
    env.update(
        PYTHONPATH=str(PROJECT_DIR), CLINIC_VAR_DIR=str(var), STAFF_NOTIFIERS="", CONSOLE_INSECURE_COOKIES="1",
        CLINIC_DATABASE_URL=f"sqlite:///{var}/clinic.db", TRACKER_STORE_URL=f"sqlite:///{var}/tracker.db",
        RASA_PORT=str(ports["rasa"]), ACTION_PORT=str(ports["actions"]), STAFF_PORT=str(ports["console"]),
        WEB_PORT=str(ports["web"]),
    )
    return env


def _kill_and_wait_for_restart(launcher_pid: int) -> tuple[int, float]:
    """SIGKILLs the action server; its pid and the seconds until the launcher started another."""
    pid = _children(launcher_pid)["actions"]
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    assert _wait_for(lambda: _children(launcher_pid).get("actions", pid) != pid, timeout=30, every=0.05), \
        "the action server was not restarted"
    return pid, time.monotonic() - killed_at


def _poll_others(ports: dict[str, int], stop: threading.Event, answering: dict[str, list[int]]) -> None:
    urls = {"rasa": f"http://127.0.0.1:{ports['rasa']}/status", "console": f"http://127.0.0.1:{ports['console']}/login",
            "web": f"http://127.0.0.1:{ports['web']}/healthz"}
    while not stop.wait(0.5):
        for name, url in urls.items():
            answering[name].append(_answers(url))


@pytest.fixture(scope="module")
def run(model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    from clinic.db import migrate
    from clinic.staff.accounts import create_user

    var = tmp_path_factory.mktemp("supervised")
    ports = {name: free_port() for name in ("rasa", "actions", "console", "web")}
    env = _environment(var, ports)
    migrate(env["CLINIC_DATABASE_URL"])
    create_user("dana", PASSWORD, display_name="Dana Ruiz", database_url=env["CLINIC_DATABASE_URL"])
    log = var / "launcher.log"
    with open(log, "wb") as output:
        launcher = subprocess.Popen([sys.executable, "-m", "clinic.launcher", "--model", model], cwd=PROJECT_DIR,
                                    env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        up = _wait_for(lambda: "assistant is running" in log.read_text(errors="replace") or launcher.poll() is not None,
                       STARTUP_SECONDS, every=0.5)
        assert up and launcher.poll() is None, log.read_text(errors="replace")[-3000:]
        before = _children(launcher.pid)
        assert set(before) == set(SERVERS)

        conversations = [Conversation(f"rest-{kind}-{uuid.uuid4().hex[:10]}", kind) for kind in KINDS]
        first_done, go_on = threading.Barrier(len(conversations) + 1), threading.Event()

        def talk(conversation: Conversation) -> None:
            first, *rest = SCRIPTS[conversation.kind]
            conversation.answers.append(_say(ports["rasa"], conversation.sender, first))
            first_done.wait(timeout=TIMEOUT * 3)
            go_on.wait(timeout=TIMEOUT)
            for message in rest:
                conversation.answers.append(_say(ports["rasa"], conversation.sender, message))

        talkers = [threading.Thread(target=talk, args=(c,)) for c in conversations]
        for talker in talkers:
            talker.start()
        first_done.wait(timeout=TIMEOUT * 3)

        answering: dict[str, list[int]] = {"rasa": [], "console": [], "web": []}
        stop_polling = threading.Event()
        poller = threading.Thread(target=_poll_others, args=(ports, stop_polling, answering))
        poller.start()
        # The conversations carry on while the action server is dead and while it starts again.
        killed, restarted_after = [], []
        pid, seconds = _kill_and_wait_for_restart(launcher.pid)
        go_on.set()
        killed.append(pid)
        restarted_after.append(seconds)
        pid, seconds = _kill_and_wait_for_restart(launcher.pid)  # again at once: the delay doubles
        killed.append(pid)
        restarted_after.append(seconds)
        for talker in talkers:
            talker.join(timeout=TIMEOUT * 4)
        assert _wait_for(lambda: _answers(f"http://127.0.0.1:{ports['actions']}/health") == 200, TIMEOUT)
        stop_polling.set()
        poller.join()

        yield Run(ports, env["CLINIC_DATABASE_URL"], var / "run" / "supervisor.json", log, before,
                  _children(launcher.pid), killed, restarted_after, conversations, answering, launcher)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)  # only if a test left it running
            launcher.wait(timeout=30)


# ------------------------------------------------------------------ the dead server comes back


def test_the_killed_action_server_is_restarted_with_back_off(run: Run) -> None:
    assert run.launcher.poll() is None  # the launcher did not give up
    assert run.after["actions"] not in run.killed
    log = run.log_text()
    assert re.search(rf"the action server \(pid {run.killed[0]}\) exited with code -9; restarting it in 1 s", log)
    assert re.search(rf"the action server \(pid {run.killed[1]}\) exited with code -9; restarting it in 2 s", log)
    assert run.restarted_after[0] >= 1.0 and run.restarted_after[1] >= 2.0


def test_the_other_servers_keep_their_processes_and_keep_answering(run: Run) -> None:
    for name in ("rasa", "console", "web"):
        assert run.after[name] == run.before[name], f"the {name} process changed"
        assert run.answering[name] and set(run.answering[name]) == {200}, f"{name}: {run.answering[name]}"


def test_every_patient_message_got_an_answer(run: Run) -> None:
    for conversation in run.conversations:
        assert len(conversation.answers) == 3 and None not in conversation.answers, conversation
    for conversation in (c for c in run.conversations if c.kind == "crisis"):
        crisis_answer = " ".join(conversation.answers[1] or [])
        assert "988" in crisis_answer and "911" in crisis_answer


def test_patients_wrote_while_the_action_server_was_down(run: Run) -> None:
    """The kills hit the conversations: some medical questions got the "please call us" answer."""
    medical = [" ".join(c.answers[1] or []) for c in run.conversations if c.kind == "medical"]
    assert any(CALL_US in answer for answer in medical), medical


def test_staff_see_that_the_action_server_restarted(run: Run) -> None:
    console = f"http://127.0.0.1:{run.ports['console']}"
    with httpx.Client(base_url=console, timeout=TIMEOUT) as client:
        form = client.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf
        signed_in = client.post("/login", data={"csrf_token": csrf.group(1), "username": "dana",
                                                "password": PASSWORD, "next": "/"})
        assert signed_in.status_code in (200, 303)
        inbox = client.get("/").text
    assert re.search(r"The action server restarted at \d\d:\d\d \(2 times in the last 30 minutes\)\.", inbox)
    assert [r.process for r in StatusFile(run.status_file).restarts()] == ["actions", "actions"]


def test_no_patient_words_in_the_launchers_log(run: Run) -> None:
    log = run.log_text().lower()
    for words in ("kill myself", "lithium", "insurance"):
        assert words not in log


# ------------------------------------------------------------------ escalations made meanwhile


def _escalated(run: Run) -> dict[str, str]:
    return {e.conversation_id: e.reason for e in stored_escalations(status=None, database_url=run.database_url)}


def test_every_escalation_is_recorded(run: Run) -> None:
    expected = {c.sender: ("crisis" if c.kind == "crisis" else "medical_question")
                for c in run.conversations if c.kind != "faq"}
    assert _wait_for(lambda: set(_escalated(run)) >= set(expected), timeout=90, every=2), _escalated(run)
    recorded = _escalated(run)
    assert {sender: recorded[sender] for sender in expected} == expected
    assert not set(recorded) - set(expected)  # nothing for the FAQ conversations


def _not_in_hand_off(run: Run) -> list[str]:
    return [sender for sender in _escalated(run)
            if httpx.get(f"http://127.0.0.1:{run.ports['rasa']}/conversations/{sender}/tracker",
                         timeout=TIMEOUT).json()["slots"][HANDOFF_SLOT] is not True]


# Needs the reconciler to hold the conversations it records for staff (clinic/staff/reconcile.py):
# without that, mark it xfail(strict=True).
def test_every_escalated_conversation_is_in_hand_off(run: Run) -> None:
    assert _wait_for(lambda: len(_escalated(run)) >= 10, timeout=90, every=2)
    assert _wait_for(lambda: not _not_in_hand_off(run), timeout=90, every=2), _not_in_hand_off(run)


# ------------------------------------------------------------------ stopping


def test_sigterm_stops_every_server_and_the_launcher_exits_cleanly(run: Run) -> None:
    servers = _children(run.launcher.pid)
    run.launcher.send_signal(signal.SIGTERM)
    assert run.launcher.wait(timeout=90) == 0
    assert _wait_for(lambda: not any(_alive(pid) for pid in servers.values()), timeout=10), servers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
