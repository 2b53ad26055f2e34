"""Staff notifications for escalations, through an outbox in the clinic database.

When an escalation opens (event ``opened``) or becomes urgent (event ``urgent``),
:func:`enqueue` adds one ``notifications`` row per configured notifier *in the same
transaction*: an escalation is never recorded without its notifications, and a notifier that
is down loses nothing. :func:`dispatch_due` (looped by :func:`run_dispatcher`, or
``python -m clinic.staff.notifications``) sends the rows that are due, urgent ones first, and retries
failures with exponential backoff until :data:`MAX_ATTEMPTS`, after which the row is
``failed`` and listed by :func:`failing` for the staff console.

Alerts carry no patient information (see :class:`clinic.staff.notifiers.StaffAlert`), and stored
errors are redacted (:func:`describe_error`). Configuration comes from the environment only:

- ``STAFF_NOTIFIERS``: comma list of ``slack``, ``email``, ``sms`` (empty: none);
- slack: ``SLACK_WEBHOOK_URL``;
- email: ``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_TLS`` (starttls|ssl|none), ``SMTP_USERNAME``,
  ``SMTP_PASSWORD``, ``SMTP_CA_FILE``, ``SMTP_FROM``, ``STAFF_EMAIL_TO`` (comma list);
- sms: ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``, ``TWILIO_FROM_NUMBER``, ``ONCALL_PHONE``,
  ``TWILIO_API_BASE``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from clinic.clock import as_utc, utcnow
from clinic.db import Escalation, Notification, session_scope
from clinic.settings import console_url, environment
from clinic.staff.notifiers import ConfigError, Notifier, StaffAlert

__all__ = [
    "ConfigError",
    "NotificationStatus",
    "backoff",
    "build_alert",
    "configured_names",
    "describe_error",
    "dispatch_due",
    "enqueue",
    "failing",
    "list_for_escalation",
    "load_notifiers",
    "run_dispatcher",
]

logger = logging.getLogger(__name__)

NOTIFIER_NAMES = ("slack", "email", "sms")
EVENTS = ("opened", "urgent")
MAX_ATTEMPTS = 12
"""Failed sends after which a notification is given up (``failed``): about 1.5 hours of retries."""
BACKOFF_FIRST = timedelta(seconds=15)
BACKOFF_MAX = timedelta(minutes=15)
CLAIM_LEASE = timedelta(seconds=60)
"""How long a dispatcher owns a claimed row; a row whose dispatcher died is retried after it."""
BATCH_LIMIT = 100
"""Notifications sent per :func:`dispatch_due` call at most (the next call continues)."""
ERROR_LENGTH = 300


# ------------------------------------------------------------------ configuration


def configured_names(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The notifiers selected by ``STAFF_NOTIFIERS`` (unset or empty: none).

    Raises:
        ConfigError: it names an unknown notifier.
    """
    names, unknown = _parse_names(environ)
    if unknown:
        raise ConfigError(
            f"STAFF_NOTIFIERS: unknown notifier(s) {', '.join(map(repr, unknown))} "
            f"(choose from {', '.join(NOTIFIER_NAMES)})"
        )
    return names


def load_notifiers(environ: Mapping[str, str] | None = None) -> list[Notifier]:
    """Builds the notifiers selected by ``STAFF_NOTIFIERS`` from their settings.

    Args:
        environ: the settings to read (default: the process environment).

    Raises:
        ConfigError: an unknown notifier, or a selected notifier's setting is missing or
            invalid (the message names the variable).
    """
    from clinic.staff.notifiers.slack import SlackNotifier
    from clinic.staff.notifiers.sms import TwilioSmsNotifier
    from clinic.staff.notifiers.smtp import SmtpNotifier

    environ = environment() if environ is None else environ
    factories: dict[str, Callable[[Mapping[str, str]], Notifier]] = {
        "slack": SlackNotifier.from_env, "email": SmtpNotifier.from_env, "sms": TwilioSmsNotifier.from_env,
    }
    return [factories[name](environ) for name in configured_names(environ)]


def _parse_names(environ: Mapping[str, str] | None) -> tuple[tuple[str, ...], list[str]]:
    """The known and the unknown names in ``STAFF_NOTIFIERS``, in order, once each."""
    raw = (environment() if environ is None else environ).get("STAFF_NOTIFIERS") or ""
    names = list(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    return tuple(n for n in names if n in NOTIFIER_NAMES), [n for n in names if n not in NOTIFIER_NAMES]


# ------------------------------------------------------------------ outbox


def enqueue(session: Session, escalation: Escalation, event: str) -> int:
    """Adds a pending notification per configured notifier, in the caller's transaction.

    Idempotent: a notification already recorded for the escalation, notifier and event is left
    alone. Never fails because of the notifier configuration (an unknown name in
    ``STAFF_NOTIFIERS`` is logged and skipped): recording the escalation matters more.

    Args:
        session: the session (and transaction) that opened or upgraded the escalation.
        escalation: the escalation, flushed (it has an id).
        event: ``opened`` or ``urgent``.

    Returns:
        How many notifications were added.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    names, unknown = _parse_names(None)
    if unknown:
        logger.error("STAFF_NOTIFIERS names unknown notifier(s) %s: not notified", ", ".join(unknown))
    urgent = event == "urgent" or escalation.urgency == "urgent"
    added = sum(_insert_once(session, escalation.id, name, event, urgent) for name in names)
    if added:
        logger.info("escalation %s: %s notification(s) queued (%s)", escalation.id, event, ", ".join(names))
    return added


def _insert_once(session: Session, escalation_id: int, notifier: str, event: str, urgent: bool) -> int:
    """Inserts one outbox row unless it exists; returns 1 when inserted, else 0."""
    now = utcnow()
    values = dict(
        escalation_id=escalation_id, notifier=notifier, event=event, urgent=urgent,
        status="pending", attempts=0, next_attempt_at=now, created_at=now,
    )
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(Notification).values(**values).on_conflict_do_nothing(
            index_elements=["escalation_id", "notifier", "event"]
        )
        return session.execute(statement).rowcount
    exists = session.execute(  # pragma: no cover - other databases
        select(Notification.id).filter_by(escalation_id=escalation_id, notifier=notifier, event=event)
    ).first()
    if exists:  # pragma: no cover
        return 0
    session.add(Notification(**values))  # pragma: no cover
    return 1  # pragma: no cover


# ------------------------------------------------------------------ alerts and errors


def build_alert(
    escalation_id: int, event: str, urgent: bool, reason: str, channel: str, language: str | None = None
) -> StaffAlert:
    """The alert for an escalation, linking to its page in the staff console."""
    return StaffAlert(
        escalation_id=escalation_id,
        event=event,
        urgent=urgent,
        reason=reason,
        channel=channel,
        console_link=f"{console_url()}/escalations/{escalation_id}",
        language=language,
    )


def backoff(attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` failed sends: 15 s, 30 s, 1 min... 15 min."""
    if attempts < 1:
        return timedelta(0)
    return min(BACKOFF_FIRST * 2 ** min(attempts - 1, 16), BACKOFF_MAX)


_REDACTIONS = (
    (re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE), "<url>"),
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "<email>"),
    (re.compile(r"\+?\d[\d ().-]{6,}\d"), "<number>"),
)


def describe_error(exc: BaseException) -> str:
    """A short, storable reason for a failed send: the exception class and its message with
    URLs (which may hold tokens), email addresses and phone numbers removed, truncated."""
    text = " ".join(str(exc).split())
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return described if len(described) <= ERROR_LENGTH else described[: ERROR_LENGTH - 3] + "..."


# ------------------------------------------------------------------ dispatcher


@dataclass(frozen=True)
class _Job:
    """A claimed notification and what its alert needs."""

    id: int
    escalation_id: int
    notifier: str
    event: str
    urgent: bool
    attempts: int
    reason: str
    channel: str
    language: str | None


def dispatch_due(
    database_url: str | None = None,
    now: datetime | None = None,
    notifiers: Iterable[Notifier] | None = None,
) -> int:
    """Sends every pending notification that is due, urgent ones first.

    A sent notification becomes ``sent``; a failed one is retried after :func:`backoff`, and
    after :data:`MAX_ATTEMPTS` failures becomes ``failed``. A notification whose notifier is
    not configured counts as a failed send. Each row is claimed before sending (``FOR UPDATE
    SKIP LOCKED`` on PostgreSQL, and a conditional update everywhere), so concurrent
    dispatchers never send one twice. Each notifier bounds its own network waits
    (:data:`clinic.staff.notifiers.SEND_TIMEOUT`).

    Args:
        database_url: overrides ``CLINIC_DATABASE_URL``.
        now: the current time (tests); default the clock. Naive values are UTC.
        notifiers: the notifiers to use (default: :func:`load_notifiers`).

    Returns:
        How many notifications were sent.
    """
    by_name = {n.name: n for n in (load_notifiers() if notifiers is None else notifiers)}
    clock = _clock(now)
    sent = 0
    for _ in range(BATCH_LIMIT):
        job = _claim_next(database_url, clock())
        if job is None:
            break
        sent += _deliver(job, by_name.get(job.notifier), database_url, clock)
    return sent


def run_dispatcher(
    stop: threading.Event,
    interval: float = 2.0,
    *,
    database_url: str | None = None,
    notifiers: Iterable[Notifier] | None = None,
) -> None:
    """Sends due notifications every ``interval`` seconds until ``stop`` is set.

    An error in one round (database down...) is logged and the loop goes on.

    Raises:
        ConfigError: at start, when the notifier configuration is invalid.
    """
    active = list(load_notifiers() if notifiers is None else notifiers)
    if active:
        logger.info("notification dispatcher started (%s)", ", ".join(n.name for n in active))
    else:
        logger.warning("no staff notifier configured (STAFF_NOTIFIERS is empty): "
                       "staff only see escalations in the staff console")
    while not stop.is_set():
        try:
            dispatch_due(database_url, notifiers=active)
        except Exception:  # noqa: BLE001 - the dispatcher must outlive any one failure
            logger.exception("notification dispatch failed; retrying in %.1f s", interval)
        stop.wait(interval)
    logger.info("notification dispatcher stopped")


def _clock(now: datetime | None) -> Callable[[], datetime]:
    if now is None:
        return utcnow
    fixed = as_utc(now)
    return lambda: fixed


def _claim_next(database_url: str | None, now: datetime) -> _Job | None:
    """Takes the most pressing due row by moving its next attempt past a lease; None when none is due."""
    for _ in range(5):  # another dispatcher may win a row: try the next one
        with session_scope(database_url) as session:
            query = (
                select(Notification, Escalation.reason, Escalation.channel, Escalation.language)
                .join(Escalation, Escalation.id == Notification.escalation_id)
                .where(Notification.status == "pending", Notification.next_attempt_at <= now)
                .order_by(Notification.urgent.desc(), Notification.next_attempt_at, Notification.id)
                .limit(1)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(of=Notification, skip_locked=True)
            row = session.execute(query).first()
            if row is None:
                return None
            notification, reason, channel, language = row
            claimed = session.execute(
                update(Notification)
                .where(
                    Notification.id == notification.id,
                    Notification.status == "pending",
                    Notification.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + CLAIM_LEASE)
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed == 1:
                return _Job(
                    notification.id, notification.escalation_id, notification.notifier, notification.event,
                    notification.urgent, notification.attempts, reason, channel, language,
                )
    return None


def _deliver(job: _Job, notifier: Notifier | None, database_url: str | None, clock: Callable[[], datetime]) -> int:
    """Sends a claimed notification and records the outcome; returns 1 when sent."""
    alert = build_alert(job.escalation_id, job.event, job.urgent, job.reason, job.channel, job.language)
    try:
        if notifier is None:
            raise ConfigError(f"notifier {job.notifier!r} is not configured (STAFF_NOTIFIERS)")
        notifier.send(alert)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
        _record_failure(job, describe_error(exc), database_url, clock())
        return 0
    with session_scope(database_url) as session:
        session.execute(
            update(Notification)
            .where(Notification.id == job.id)
            .values(status="sent", sent_at=clock())
            .execution_options(synchronize_session=False)
        )
    logger.info("notification %s sent: escalation %s, %s via %s", job.id, job.escalation_id, job.event, job.notifier)
    return 1


def _record_failure(job: _Job, error: str, database_url: str | None, now: datetime) -> None:
    attempts = job.attempts + 1
    given_up = attempts >= MAX_ATTEMPTS
    retry_at = now + backoff(attempts)
    with session_scope(database_url) as session:
        session.execute(
            update(Notification)
            .where(Notification.id == job.id)
            .values(
                attempts=attempts,
                last_error=error,
                status="failed" if given_up else "pending",
                next_attempt_at=now if given_up else retry_at,
            )
            .execution_options(synchronize_session=False)
        )
    if given_up:
        logger.error("notification %s for escalation %s via %s failed %d times, given up: %s",
                     job.id, job.escalation_id, job.notifier, attempts, error)
    else:
        logger.warning("notification %s for escalation %s via %s failed (attempt %d of %d, retry at %s): %s",
                       job.id, job.escalation_id, job.notifier, attempts, MAX_ATTEMPTS,
                       retry_at.strftime("%H:%M:%S"), error)


# ------------------------------------------------------------------ statuses for the console


@dataclass(frozen=True)
class NotificationStatus:
    """A notification's delivery state, for the staff console (times in UTC)."""

    escalation_id: int
    notifier: str
    event: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None


def list_for_escalation(escalation_id: int, database_url: str | None = None) -> list[NotificationStatus]:
    """The notifications of one escalation, oldest first."""
    query = (
        select(Notification)
        .where(Notification.escalation_id == escalation_id)
        .order_by(Notification.created_at, Notification.id)
    )
    return _statuses(query, database_url)


def failing(database_url: str | None = None) -> list[NotificationStatus]:
    """Notifications that failed at least once and are not sent (still retrying, or given up),
    newest first."""
    query = (
        select(Notification)
        .where(Notification.status != "sent", Notification.attempts > 0)
        .order_by(Notification.id.desc())
    )
    return _statuses(query, database_url)


def _statuses(query: Select, database_url: str | None) -> list[NotificationStatus]:
    with session_scope(database_url) as session:
        return [
            NotificationStatus(
                escalation_id=n.escalation_id,
                notifier=n.notifier,
                event=n.event,
                status=n.status,
                attempts=n.attempts,
                last_error=n.last_error,
                next_attempt_at=as_utc(n.next_attempt_at) if n.status == "pending" else None,
                sent_at=as_utc(n.sent_at),
            )
            for n in session.execute(query).scalars()
        ]


# ------------------------------------------------------------------ command line


def main() -> None:  # pragma: no cover - a thin wrapper around run_dispatcher
    """``python -m clinic.staff.notifications``: runs the dispatcher until SIGINT or SIGTERM."""
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_dispatcher(stop)


if __name__ == "__main__":  # pragma: no cover
    main()
