"""Restarting a server that died, and telling staff it happened.

The launcher (:mod:`clinic.launcher`) runs each server as a child process and hands them to a
:class:`Supervisor`. When one exits, it is started again after a delay (:class:`Backoff`: 1 s,
doubling up to 60 s while the server keeps dying soon after starting, back to 1 s once it has
stayed up two minutes); the others keep running. Each restart is logged (the server and its exit
code, nothing a patient wrote) and recorded in a small JSON file (:class:`StatusFile`,
``SUPERVISOR_STATUS_FILE``), from which the staff console shows "The action server restarted at
14:05" for half an hour (:func:`restart_notices`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Generic, Protocol, TypeVar

logger = logging.getLogger("clinic.supervision")

NOTICE_FOR = timedelta(minutes=30)
KEEP_RESTARTS = 50
_LABELS = {
    "actions": "action server",
    "rasa": "Rasa server",
    "nginx": "nginx",
    "console": "staff console",
    "web": "web server",
}


def label(name: str) -> str:
    """What staff call a server: ``actions`` -> "action server", ``rasa-2`` -> "Rasa server 2"."""
    base, _, number = name.partition("-")
    text = _LABELS.get(base, base)
    return f"{text} {number}" if number else text


@dataclass
class Backoff:
    """The delay before each restart of one server.

    Attributes:
        initial: the first delay (seconds).
        maximum: the longest delay.
        stable_after: a server that ran this long before exiting starts over at ``initial``.
    """

    initial: float = 1.0
    maximum: float = 60.0
    stable_after: float = 120.0
    failures: int = 0

    def next_delay(self, uptime: float) -> float:
        """The delay before restarting a server that exited after ``uptime`` seconds."""
        if uptime >= self.stable_after:
            self.failures = 0
        self.failures += 1
        return min(self.initial * 2 ** (self.failures - 1), self.maximum)


@dataclass(frozen=True)
class Restart:
    """One restart: which server (``actions``, ``rasa``, ``rasa-2``...), when (UTC), how it had exited."""

    process: str
    at: datetime
    exit_code: int | None


class StatusFile:
    """The restarts of this launcher's run, as JSON: ``{"restarts": [{"process", "at", "exit_code"}]}``.

    Written whole to a temporary file and renamed, so a reader never sees half of it; at most
    :data:`KEEP_RESTARTS` entries.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def reset(self) -> None:
        """A new run: no restarts yet."""
        self._write([])

    def record(self, restart: Restart) -> None:
        """Appends ``restart`` (a failure to write is logged: it must never stop a restart)."""
        try:
            self._write([*self.restarts(), restart][-KEEP_RESTARTS:])
        except OSError as exc:
            logger.error("cannot record the restart in %s: %s", self.path, type(exc).__name__)

    def restarts(self) -> list[Restart]:
        """The recorded restarts, oldest first; none when the file is missing or unreadable."""
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8")).get("restarts", [])
            return [
                Restart(str(e["process"]), datetime.fromisoformat(e["at"]), e.get("exit_code")) for e in entries
            ]
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            return []

    def _write(self, restarts: Sequence[Restart]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"restarts": [
            {"process": r.process, "at": r.at.astimezone(timezone.utc).isoformat(), "exit_code": r.exit_code}
            for r in restarts
        ]}
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(temporary, self.path)


def restart_notices(path: Path, tz: tzinfo, now: datetime | None = None) -> list[str]:
    """What the staff console shows: one line per server restarted in the last :data:`NOTICE_FOR`.

    Args:
        path: the launcher's status file (``SUPERVISOR_STATUS_FILE``).
        tz: the clinic's time zone, for the time shown.
        now: the current time (tests).

    Returns:
        e.g. ``["The action server restarted at 14:05."]``, the latest restart of each server.
    """
    since = (now or datetime.now(timezone.utc)) - NOTICE_FOR
    recent: dict[str, list[datetime]] = {}
    for restart in StatusFile(path).restarts():
        if restart.at >= since:
            recent.setdefault(restart.process, []).append(restart.at)
    notices = []
    for process, times in recent.items():
        count = f" ({len(times)} times in the last {int(NOTICE_FOR.total_seconds() // 60)} minutes)" \
            if len(times) > 1 else ""
        notices.append(f"The {label(process)} restarted at {max(times).astimezone(tz):%H:%M}{count}.")
    return notices


class Process(Protocol):
    """What the supervisor needs of a child process (``subprocess.Popen`` has it)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...


class Supervised(Protocol):
    """A supervised server: its name (``actions``, ``rasa``...) and its current process."""

    name: str

    @property
    def process(self) -> Process: ...


S = TypeVar("S", bound=Supervised)


@dataclass
class _Watch:
    started: float
    backoff: Backoff
    restart_at: float | None = None  # set while the server is down
    exit_code: int | None = None


@dataclass
class Supervisor(Generic[S]):
    """Restarts the children that exit, each with its own :class:`Backoff`.

    Call :meth:`check` every half second or so; it never blocks.

    Attributes:
        children: the servers (their ``process`` changes when ``respawn`` restarts them).
        respawn: starts a child's server again (replacing its ``process``).
        status: where restarts are recorded for the staff console.
        clock: monotonic seconds (tests pass a fake one).
        backoff: makes each child's back-off.
    """

    children: Sequence[S]
    respawn: Callable[[S], None]
    status: StatusFile
    clock: Callable[[], float] = time.monotonic
    backoff: Callable[[], Backoff] = Backoff
    _watches: dict[int, _Watch] = field(default_factory=dict, init=False)  # by id() of the child

    def check(self) -> None:
        """Notes the children that exited and restarts those whose delay has passed."""
        now = self.clock()
        for child in self.children:
            watch = self._watches.setdefault(id(child), _Watch(now, self.backoff()))
            if watch.restart_at is None:
                exit_code = child.process.poll()
                if exit_code is not None:
                    self._schedule(child, watch, exit_code, now)
            if watch.restart_at is not None and now >= watch.restart_at:
                self._restart(child, watch)

    def _schedule(self, child: S, watch: _Watch, exit_code: int, now: float) -> None:
        delay = watch.backoff.next_delay(now - watch.started)
        watch.restart_at, watch.exit_code = now + delay, exit_code
        logger.error("the %s (pid %d) exited with code %d; restarting it in %g s",
                     label(child.name), child.process.pid, exit_code, delay)

    def _restart(self, child: S, watch: _Watch) -> None:
        watch.restart_at, watch.started = None, self.clock()
        try:
            self.respawn(child)
        except OSError as exc:  # e.g. the executable vanished: the next check sees it down again
            logger.error("could not restart the %s: %s", label(child.name), type(exc).__name__)
            return
        self.status.record(Restart(child.name, datetime.now(timezone.utc), watch.exit_code))
        logger.warning("restarted the %s (pid %d)", label(child.name), child.process.pid)
