"""Sign-in throttling per client address, so one visitor can neither guess fast nor lock staff out.

After OWASP's Authentication and Credential Stuffing cheat sheets, three limits work together
(failures are wrong passwords, unknown user names, locked or disabled accounts alike):

* **Per address**: :data:`ADDRESS_FAILURES` failures from one address within :data:`WINDOW`
  (sliding) make that address wait, whatever user name it tries, until its oldest failure in
  the window is :data:`WINDOW` old. The console answers 429 with ``Retry-After``.
* **Per account and address**: :data:`PAIR_FAILURES` failures for one user name from one
  address make that address wait for that user name only. The account's owner, elsewhere,
  is not affected.
* **Account lock-out** (in the database, :func:`clinic.staff.accounts.verify_login`): each
  address counts toward an account's lock-out once between two successful sign-ins, so the
  account is locked for everyone only when :data:`~clinic.staff.accounts.MAX_FAILED_LOGINS`
  different addresses got its password wrong: a distributed attack, never a single visitor.

A refused attempt is answered at once, without checking the password (no argon2 work for an
attacker to cause), and counts nowhere. Addresses are counted by :func:`throttle_key` (IPv6
by /64). The counts live in the console process's memory, bounded by :data:`MAX_KEYS`: a
restart forgets them, and each console replica counts on its own.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clinic.staff.accounts import normalize_username
from clinic.staff.console.addresses import throttle_key

logger = logging.getLogger(__name__)

WINDOW = timedelta(minutes=15)
ADDRESS_FAILURES = 20
PAIR_FAILURES = 5
MAX_KEYS = 20_000
USERNAME_KEY_LENGTH = 64  # longer names cannot exist; keeping all of them would let one request grow memory


@dataclass(frozen=True)
class Refusal:
    """Why an address must wait before trying again.

    Attributes:
        scope: ``address`` (every user name) or ``account`` (this user name from this address).
        retry_after: seconds to wait (at least 1).
    """

    scope: str
    retry_after: int

    @property
    def minutes(self) -> int:
        """The wait in whole minutes, rounded up, for people."""
        return max(1, math.ceil(self.retry_after / 60))


class SignInThrottle:
    """Failed sign-ins per address and per (account, address), in memory (see the module doc).

    The console asks :meth:`refusal` before checking a password, :meth:`counts_toward_lockout`
    to pass to :func:`clinic.staff.accounts.verify_login`, then reports the outcome with
    :meth:`failed` or :meth:`succeeded`.
    """

    def __init__(
        self,
        *,
        window: timedelta = WINDOW,
        address_failures: int = ADDRESS_FAILURES,
        pair_failures: int = PAIR_FAILURES,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.window = window
        self.address_failures = address_failures
        self.pair_failures = pair_failures
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._by_address: dict[str, deque[datetime]] = {}
        self._by_pair: dict[tuple[str, str], deque[datetime]] = {}
        self._counted: dict[str, set[str]] = {}  # user name -> addresses counted toward its lock-out

    def refusal(self, address: str, username: str, now: datetime) -> Refusal | None:
        """Whether this address must wait before trying this user name (None: it may try now)."""
        key, name = throttle_key(address), _name(username)
        with self._lock:
            waits = [
                Refusal(scope, self._wait(failures, limit, now))
                for scope, failures, limit in (
                    ("address", self._recent(self._by_address, key, now), self.address_failures),
                    ("account", self._recent(self._by_pair, (name, key), now), self.pair_failures),
                )
                if failures is not None and len(failures) >= limit
            ]
        return max(waits, key=lambda refusal: refusal.retry_after, default=None)

    def counts_toward_lockout(self, address: str, username: str) -> bool:
        """A wrong password from this address counts toward the account's lock-out (its first only)."""
        with self._lock:
            return throttle_key(address) not in self._counted.get(_name(username), set())

    def failed(self, address: str, username: str, now: datetime, *, counted: bool = False) -> Refusal | None:
        """Records a failed attempt.

        Args:
            address: the client's address.
            username: the user name tried.
            now: the current time.
            counted: the failure was counted toward the account's lock-out.

        Returns:
            The wait this failure starts, if it is the one that reached a limit (for the audit
            trail; the next attempt is refused by :meth:`refusal`).
        """
        key, name = throttle_key(address), _name(username)
        with self._lock:
            if counted:
                self._counted.setdefault(name, set()).add(key)
            by_address = self._record(self._by_address, key, now)
            by_pair = self._record(self._by_pair, (name, key), now)
            self._bound(now)
        started = None
        if len(by_address) == self.address_failures:
            started = Refusal("address", self._wait(by_address, self.address_failures, now))
            logger.warning("sign-ins from %s refused for %s s after %s failures", key, started.retry_after,
                           len(by_address))
        elif len(by_pair) == self.pair_failures:
            started = Refusal("account", self._wait(by_pair, self.pair_failures, now))
        return started

    def succeeded(self, address: str, username: str) -> None:
        """Records a successful sign-in: the account's failures from this address, and the
        addresses counted toward its lock-out, are forgotten (the address's own are not)."""
        name = _name(username)
        with self._lock:
            self._by_pair.pop((name, throttle_key(address)), None)
            self._counted.pop(name, None)

    def locked_out(self, username: str) -> None:
        """The account was just locked: counting starts afresh once the lock-out ends."""
        with self._lock:
            self._counted.pop(_name(username), None)

    # ---------------------------------------------------------------- internals (under the lock)

    def _recent(self, table: dict[Any, deque[datetime]], key: Any, now: datetime) -> deque[datetime] | None:
        failures = table.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del table[key]
            return None
        return failures

    def _record(self, table: dict[Any, deque[datetime]], key: Any, now: datetime) -> deque[datetime]:
        failures = self._recent(table, key, now)
        if failures is None:
            failures = table[key] = deque()
        failures.append(now)
        return failures

    def _wait(self, failures: deque[datetime], limit: int, now: datetime) -> int:
        """Seconds until fewer than ``limit`` failures are left in the window."""
        deciding = failures[len(failures) - limit]
        return max(1, math.ceil((deciding + self.window - now).total_seconds()))

    def _bound(self, now: datetime) -> None:
        """Drops expired keys, then the stalest ones, when a table outgrows :attr:`max_keys`."""
        tables: tuple[dict[Any, deque[datetime]], ...] = (self._by_address, self._by_pair)
        for table in tables:
            if len(table) <= self.max_keys:
                continue
            for key in list(table):
                self._recent(table, key, now)
            if len(table) > self.max_keys:
                stalest = sorted(table, key=lambda k: table[k][-1])[: len(table) - self.max_keys]
                for key in stalest:
                    del table[key]
        if len(self._counted) > self.max_keys:
            self._counted.clear()


def _name(username: str) -> str:
    return normalize_username(username)[:USERNAME_KEY_LENGTH]

