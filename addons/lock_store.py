"""Rasa's conversation lock store, chosen by the environment (named in endpoints.yml).

Rasa processes the messages of one conversation one at a time, in order, by taking a ticket
from its lock store. With one Rasa instance an in-memory store does; several instances must
share one, so with ``REDIS_URL`` set this is Rasa's ``RedisLockStore`` on that Redis (keys
``<REDIS_KEY_PREFIX>:lock:<conversation id>``, default prefix ``clinic``).

Rasa's Redis store reads a lock, changes it and writes it back in separate commands. Within one
instance that cannot interleave (the calls are synchronous on its event loop), but two instances
can: both may take "ticket 0" of a new lock and process the same conversation at once, or one
may delete the lock while the other is queueing on it (a ``LockError``, the message is lost).
:class:`AtomicRedisLockStore` makes each read-change-write one optimistic transaction
(``WATCH``/``MULTI``, retried on conflict) and lets a lock key expire when all its tickets have,
so nothing outlives a crashed instance.

Rasa's tickets last 60 seconds whatever happens to the instance that took them: when an instance
dies mid-message, the other instances wait up to a minute before they may serve that
conversation, while the patient's retried message (nginx sends it to a live instance) waits
behind it. Here a ticket is a short lease (:data:`LEASE_SECONDS`) its holder renews while it
waits and works: a live instance keeps its turn however long a message takes, a dead one loses it
within seconds. (An instance whose event loop is stuck for longer than the lease loses its turn
too, as with Rasa's own tickets after a minute.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, LockError, LockStore, RedisLockStore

from clinic.settings import redis_key_prefix, redis_url

logger = logging.getLogger(__name__)
T = TypeVar("T")
# A ticket lasts this long (seconds) unless its holder renews it, which it does every third of it.
LEASE_SECONDS = 10.0
# A lock key outlives its last ticket by this much (seconds) before Redis drops it.
EXPIRY_MARGIN = 60


class RedisURLError(ValueError):
    """``REDIS_URL`` is not a ``redis://`` or ``rediss://`` URL this store can use."""


def redis_connection_kwargs(url: str) -> dict[str, Any]:
    """The arguments of Rasa's ``RedisLockStore`` for ``url``: host, port, db, username, password,
    use_ssl (``rediss://``). Unix sockets are not supported by Rasa's store."""
    from redis.connection import SSLConnection, parse_url

    if not url.startswith(("redis://", "rediss://")):
        raise RedisURLError("REDIS_URL must start with redis:// or rediss://")
    try:
        parsed = parse_url(url)
    except ValueError as exc:
        raise RedisURLError(f"REDIS_URL is not a valid Redis URL ({exc})") from None
    return {
        "host": parsed.get("host") or "localhost",
        "port": int(parsed.get("port") or 6379),
        "db": int(parsed.get("db") or 0),
        "username": parsed.get("username"),
        "password": parsed.get("password"),
        "use_ssl": parsed.get("connection_class") is SSLConnection,
    }


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's Redis lock store whose ticket changes are atomic across instances."""

    def _change(
        self, conversation_id: str, change: Callable[[TicketLock | None], tuple[T, TicketLock | None, bool]]
    ) -> T:
        """Applies ``change(lock) -> (result, lock to save or None, delete when empty)`` atomically."""
        import redis

        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    result, changed, delete_when_empty = change(lock)
                    pipe.multi()
                    if changed is None:
                        pass
                    elif delete_when_empty and not changed.is_someone_waiting():
                        pipe.delete(key)
                    else:
                        last_expiry = max((t.expires for t in changed.tickets), default=time.time())
                        pipe.set(key, changed.dumps(), ex=max(1, int(last_expiry - time.time()) + EXPIRY_MARGIN))
                    pipe.execute()
                    return result
                except redis.WatchError:  # another instance changed the lock meanwhile: again
                    continue

    @asynccontextmanager
    async def lock(
        self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME, wait_time_in_seconds: float = 1
    ) -> AsyncIterator[TicketLock]:
        """Rasa's ``lock``, with a ticket leased for :data:`LEASE_SECONDS` and renewed until
        released (``lock_lifetime`` is not used: a live holder never loses its turn)."""
        ticket = self.issue_ticket(conversation_id, LEASE_SECONDS)
        renewing = asyncio.ensure_future(self._renew(conversation_id, ticket))
        try:
            yield await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
        finally:
            renewing.cancel()
            self.cleanup(conversation_id, ticket)

    async def _renew(self, conversation_id: str, ticket: int) -> None:
        def extend(lock: TicketLock | None) -> tuple[None, TicketLock | None, bool]:
            for held in lock.tickets if lock is not None else []:
                if held.number == ticket:
                    held.expires = time.time() + LEASE_SECONDS
            return None, lock, False

        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                self._change(conversation_id, extend)
            except Exception as exc:  # noqa: BLE001 - the next renewal may succeed; the lease is not yet over
                logger.warning("could not renew a conversation lock in Redis (%s)", type(exc).__name__)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def take(lock: TicketLock | None) -> tuple[int, TicketLock, bool]:
            lock = lock or self.create_lock(conversation_id)
            return lock.issue_ticket(lock_lifetime), lock, False

        try:
            return self._change(conversation_id, take)
        except Exception as exc:  # noqa: BLE001 - Rasa's contract: a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc

    def update_lock(self, conversation_id: str) -> None:
        def drop_expired(lock: TicketLock | None) -> tuple[None, TicketLock | None, bool]:
            if lock is not None:
                lock.remove_expired_tickets()
            return None, lock, False

        self._change(conversation_id, drop_expired)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def finish(lock: TicketLock | None) -> tuple[None, TicketLock | None, bool]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return None, lock, False

        self._change(conversation_id, finish)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Removes the ticket, and the lock when no one else holds a ticket, in one step."""

        def finish(lock: TicketLock | None) -> tuple[None, TicketLock | None, bool]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return None, lock, True

        self._change(conversation_id, finish)


class ClinicLockStore(LockStore):
    """The lock store endpoints.yml names: Redis when ``REDIS_URL`` is set, else in memory.

    Rasa builds it as ``ClinicLockStore(endpoint_config=...)``; it returns the real store
    (:class:`AtomicRedisLockStore` or Rasa's ``InMemoryLockStore``), never an instance of itself.
    """

    def __new__(cls, endpoint_config: Any = None) -> LockStore:  # type: ignore[misc]
        url = redis_url()
        if not url:
            return InMemoryLockStore()
        return AtomicRedisLockStore(**redis_connection_kwargs(url), key_prefix=redis_key_prefix())
