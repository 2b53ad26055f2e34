"""clinic.supervision: back-off, restarts of one server while the others run, the console's notice."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clinic.supervision import Backoff, Restart, StatusFile, Supervisor, label, restart_notices

CHICAGO = ZoneInfo("America/Chicago")


@dataclass
class FakeProcess:
    pid: int
    exit_code: int | None = None

    def poll(self) -> int | None:
        return self.exit_code


@dataclass
class FakeChild:
    name: str
    process: FakeProcess
    starts: list[int] = field(default_factory=list)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Launcher:
    """Respawns fake children with new pids, like ``Stack.respawn``."""

    def __init__(self) -> None:
        self.next_pid = 500

    def respawn(self, child: FakeChild) -> None:
        self.next_pid += 1
        child.process = FakeProcess(self.next_pid)
        child.starts.append(self.next_pid)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def children() -> list[FakeChild]:
    return [FakeChild("actions", FakeProcess(101)), FakeChild("rasa", FakeProcess(102)),
            FakeChild("console", FakeProcess(103)), FakeChild("web", FakeProcess(104))]


@pytest.fixture
def status(tmp_path: Path) -> StatusFile:
    file = StatusFile(tmp_path / "run" / "supervisor.json")
    file.reset()
    return file


@pytest.fixture
def supervisor(children: list[FakeChild], status: StatusFile, clock: Clock) -> Supervisor[FakeChild]:
    return Supervisor(children, Launcher().respawn, status, clock=clock)


# ------------------------------------------------------------------ back-off


def test_the_delay_doubles_up_to_a_minute() -> None:
    backoff = Backoff()
    assert [backoff.next_delay(uptime=0.5) for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_a_server_that_stayed_up_starts_over_at_one_second() -> None:
    backoff = Backoff()
    for _ in range(5):
        backoff.next_delay(uptime=3)
    assert backoff.next_delay(uptime=121) == 1
    assert backoff.next_delay(uptime=3) == 2


# ------------------------------------------------------------------ supervisor


def test_a_dead_server_is_restarted_after_its_delay_and_the_others_keep_running(
        supervisor: Supervisor[FakeChild], children: list[FakeChild], clock: Clock, status: StatusFile) -> None:
    actions, *others = children
    supervisor.check()
    actions.process.exit_code = -9

    supervisor.check()  # noticed: restart due in 1 s
    clock.now += 0.5
    supervisor.check()
    assert actions.starts == []
    clock.now += 0.6
    supervisor.check()

    assert actions.starts == [501] and actions.process.pid == 501
    assert [c.process.pid for c in others] == [102, 103, 104] and all(c.starts == [] for c in others)
    [restart] = status.restarts()
    assert (restart.process, restart.exit_code) == ("actions", -9)


def test_a_server_dying_again_soon_waits_twice_as_long(
        supervisor: Supervisor[FakeChild], children: list[FakeChild], clock: Clock) -> None:
    actions = children[0]
    actions.process.exit_code = 1
    supervisor.check()
    clock.now += 1
    supervisor.check()
    assert len(actions.starts) == 1

    clock.now += 5  # up 5 s, then dies again
    actions.process.exit_code = 1
    supervisor.check()
    clock.now += 1.5
    supervisor.check()
    assert len(actions.starts) == 1  # 2 s this time
    clock.now += 0.5
    supervisor.check()
    assert len(actions.starts) == 2


def test_restarts_are_logged_without_anything_else(
        supervisor: Supervisor[FakeChild], children: list[FakeChild], clock: Clock,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clinic.supervision")
    children[1].process.exit_code = 1
    supervisor.check()
    clock.now += 1
    supervisor.check()
    assert [r.getMessage() for r in caplog.records] == [
        "the Rasa server (pid 102) exited with code 1; restarting it in 1 s",
        "restarted the Rasa server (pid 501)",
    ]


def test_a_failed_respawn_is_tried_again(children: list[FakeChild], status: StatusFile, clock: Clock) -> None:
    attempts: list[str] = []

    def respawn(child: FakeChild) -> None:
        attempts.append(child.name)
        if len(attempts) == 1:
            raise FileNotFoundError("rasa")
        child.process = FakeProcess(900)

    supervisor = Supervisor(children, respawn, status, clock=clock)
    children[0].process.exit_code = 1
    for _ in range(4):
        supervisor.check()
        clock.now += 2.1
    assert attempts == ["actions", "actions"] and children[0].process.pid == 900
    assert len(status.restarts()) == 1


# ------------------------------------------------------------------ status file and the console's notice


def test_the_status_file_keeps_the_latest_restarts(status: StatusFile) -> None:
    at = datetime(2031, 3, 3, 20, 5, tzinfo=timezone.utc)
    for n in range(60):
        status.record(Restart("actions", at + timedelta(seconds=n), -9))
    restarts = status.restarts()
    assert len(restarts) == 50 and restarts[-1].at == at + timedelta(seconds=59)
    assert json.loads(status.path.read_text())["restarts"][-1] == {
        "process": "actions", "at": "2031-03-03T20:05:59+00:00", "exit_code": -9}
    status.reset()
    assert status.restarts() == []


@pytest.mark.parametrize("content", [None, "", "not json", "[]", '{"restarts": [{"at": 3}]}'])
def test_a_missing_or_broken_status_file_means_no_restarts(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "supervisor.json"
    if content is not None:
        path.write_text(content)
    assert StatusFile(path).restarts() == []
    assert restart_notices(path, CHICAGO) == []


def test_staff_are_told_which_server_restarted_and_when_in_the_clinics_time(status: StatusFile) -> None:
    now = datetime(2031, 3, 3, 20, 30, tzinfo=timezone.utc)  # 14:30 in Chicago
    status.record(Restart("console", now - timedelta(minutes=45), 1))  # too old to mention
    status.record(Restart("actions", now - timedelta(minutes=25), -9))
    status.record(Restart("rasa-2", now - timedelta(minutes=20), 1))
    status.record(Restart("actions", now - timedelta(minutes=10), -9))

    assert restart_notices(status.path, CHICAGO, now=now) == [
        "The action server restarted at 14:20 (2 times in the last 30 minutes).",
        "The Rasa server 2 restarted at 14:10.",
    ]
    assert restart_notices(status.path, CHICAGO, now=now + timedelta(minutes=31)) == []


@pytest.mark.parametrize(("name", "text"), [("actions", "action server"), ("rasa", "Rasa server"),
                                            ("rasa-3", "Rasa server 3"), ("console", "staff console"),
                                            ("web", "web server"), ("nginx", "nginx")])
def test_labels(name: str, text: str) -> None:
    assert label(name) == text
