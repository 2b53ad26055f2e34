"""The patient SMS line: carrier keywords, opt-out state, message shaping and background sending.

Everything here is independent of Rasa; ``addons/twilio_channel.py`` is the thin connector that
uses it. Rules:

* Opt-out keywords (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT) and opt-in
  keywords (START, YES, UNSTOP), case-insensitive, whole message. An opted-out number gets one
  confirmation and then nothing at all (bot, staff, HELP) until it opts in again; the state is
  kept in ``sms_contacts`` (:class:`clinic.db.SmsContact`).
* HELP / INFO answer with the clinic's name and phone, "Msg & data rates may apply" and
  "Reply STOP to opt out".
* Buttons become numbered choices; a reply "1", "2"... maps back to the button's payload.
* Messages longer than :data:`SMS_LIMIT` are split at sentence boundaries.
* The first message to a new number carries a one-line privacy note (claimed once, atomically).
* Each incoming ``MessageSid`` is taken once in the clinic database (:func:`claim_message`), so
  Twilio's re-deliveries are ignored by every instance, across restarts.
* :class:`InOrder` runs work in the background one at a time per number: the connector's turns
  and :class:`SmsDispatcher`'s sends, which retries what may succeed later and logs only a
  pseudonym of the number, never the text.

Texts live in ``clinic/channels/sms_texts.yml`` with clinic.yml placeholders.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import yaml
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from clinic.clock import utcnow
from clinic.db import ReceivedSms, SmsContact, session_scope
from clinic.profile import ProfileCache
from clinic.settings import environment

logger = logging.getLogger(__name__)

SMS_LIMIT = 320
"""Most characters in one outgoing message (the SMS variants in domain.yml respect it too)."""

TEXTS_PATH = Path(__file__).resolve().parent / "sms_texts.yml"
TEXT_NAMES = ("opted_out", "opted_in", "help", "privacy_note", "media", "media_with_text", "choices_prompt")

# Spanish keywords ("ALTO", "PARAR", "CANCELAR", "AYUDA") work on every conversation and are
# answered in Spanish; there is no Spanish opt-in word ("SI" answers ordinary questions).
SPANISH_OPT_OUT_KEYWORDS = frozenset({"ALTO", "PARAR", "PARA", "CANCELAR", "BAJA"})
SPANISH_HELP_KEYWORDS = frozenset({"AYUDA"})
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"} | SPANISH_OPT_OUT_KEYWORDS
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"} | SPANISH_HELP_KEYWORDS)
LANGUAGES = ("en", "es")

DEFAULT_RETRY_DELAYS = (2.0, 10.0, 30.0)
TWILIO_API_BASE = "https://api.twilio.com"
# Twilio's "Attempt to send to unsubscribed recipient": the carrier or Twilio has the opt-out.
TWILIO_UNSUBSCRIBED = 21610


class Keyword(str, Enum):
    """What a whole-message carrier keyword asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def keyword(text: str | None) -> Keyword | None:
    """The carrier keyword a message is, if the whole message is one.

    Case and surrounding spaces or a final "." / "!" do not matter: "Stop", " STOP! " are
    opt-outs; "stop texting me please" is an ordinary message (the assistant handles it).
    """
    word = _keyword_word(text)
    if word in OPT_OUT_KEYWORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_KEYWORDS:
        return Keyword.OPT_IN
    if word in HELP_KEYWORDS:
        return Keyword.HELP
    return None


def _keyword_word(text: str | None) -> str:
    return (text or "").strip().rstrip(".!").strip().upper()


def keyword_language(text: str | None) -> str | None:
    """``es`` when the message is a Spanish carrier keyword ("ALTO", "AYUDA"), else None."""
    word = _keyword_word(text)
    return "es" if word in SPANISH_OPT_OUT_KEYWORDS | SPANISH_HELP_KEYWORDS else None


# ------------------------------------------------------------------ texts


class SmsTexts:
    """The line's own texts (``clinic/channels/sms_texts.yml``) filled with the clinic profile's values."""

    def __init__(self, path: Path = TEXTS_PATH, profile: ProfileCache | None = None) -> None:
        """Args:
            path: the YAML file of texts.
            profile: the clinic profile (default: clinic.yml, re-read when it changes).
        """
        self._path = path
        self._profile = profile
        self._raw: dict[str, dict[str, str]] | None = None

    def _texts(self, language: str) -> dict[str, str]:
        if self._raw is None:
            raw = yaml.safe_load(self._path.read_text(encoding="utf-8")) or {}
            by_language = {"en": raw, "es": raw.get("es") or {}}
            self._raw = {}
            for code, texts in by_language.items():
                missing = [name for name in TEXT_NAMES if not isinstance(texts.get(name), str)]
                if missing:
                    raise ValueError(f"{self._path}: missing {code} text(s) {', '.join(missing)}")
                self._raw[code] = {name: " ".join(texts[name].split()) for name in TEXT_NAMES}
        return self._raw[language if language in LANGUAGES else "en"]

    def get(self, name: str, language: str = "en") -> str:
        """The text ``name`` (one of :data:`TEXT_NAMES`) in ``language`` (en | es), placeholders filled."""
        if self._profile is None:
            self._profile = ProfileCache()
        return self._texts(language)[name].format(**self._profile.values(language))


# ------------------------------------------------------------------ message shaping


def numbered_choices(text: str, buttons: Sequence[Mapping[str, Any]], prompt: str) -> str:
    """The message text followed by its buttons as numbered lines (titles only, no payloads).

    >>> numbered_choices("Want help?", [{"title": "Yes", "payload": "/affirm"}], "Reply with a number:")
    'Want help?\\nReply with a number:\\n1. Yes'
    """
    lines = [text.strip()] if text and text.strip() else []
    lines.append(prompt)
    lines += [f"{number}. {str(button.get('title') or '').strip()}" for number, button in enumerate(buttons, 1)]
    return "\n".join(lines)


_CHOICE = re.compile(r"^\s*#?(\d{1,2})\s*[.)]?\s*$")


def is_choice(text: str) -> bool:
    """Whether a reply is a bare choice number ("1", "2.", "#3")."""
    return _CHOICE.match(text or "") is not None


def chosen_payload(text: str, buttons: Sequence[Mapping[str, Any]]) -> str | None:
    """The payload of the button a reply like "2" (or "2." / "#2") picks, if it picks one."""
    match = _CHOICE.match(text or "")
    if not match or not buttons:
        return None
    number = int(match.group(1))
    if not 1 <= number <= len(buttons):
        return None
    payload = buttons[number - 1].get("payload")
    return str(payload) if payload else None


# A sentence ends with . ! ? (maybe closing quotes or brackets) and white space; a line break
# always ends a piece.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"'”’)\]]*[ \t]+|[ \t]*\n\s*")
# ...but not the period of a list number ("2. Book") or of a common abbreviation ("Dr. Lee").
_NOT_AN_END = re.compile(r"(?:^|\s)(?:\d{1,3}|[Dd]r|Mr|Mrs|Ms|St|e\.g|i\.e|vs|approx)\.$")


def split_sms(text: str, limit: int = SMS_LIMIT) -> list[str]:
    """Splits ``text`` into messages of at most ``limit`` characters, at sentence boundaries.

    Sentences (and lines) are packed greedily; a sentence longer than ``limit`` is split between
    words, and a word longer than ``limit`` is cut. Text that fits is returned unchanged.
    """
    text = (text or "").strip()
    if not text:
        return []
    if len(text) <= limit:
        return [text]
    ends = [m.end() for m in _BOUNDARY.finditer(text) if not _NOT_AN_END.search(text, 0, m.start())]
    cuts = [0, *ends, len(text)]
    pieces = [text[a:b] for a, b in zip(cuts, cuts[1:]) if text[a:b].strip()]
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        for part in _fit(piece, limit):
            if current and len((current + part).rstrip()) > limit:
                chunks.append(current.strip())
                current = ""
            current += part
    if current.strip():
        chunks.append(current.strip())
    return chunks


def _fit(piece: str, limit: int) -> Iterable[str]:
    """``piece`` itself, or its words regrouped into parts of at most ``limit`` characters."""
    if len(piece.strip()) <= limit:
        yield piece
        return
    part = ""
    for word in re.findall(r"\S+\s*", piece):
        while len(word.strip()) > limit:  # one enormous "word" (a URL...): cut it
            if part:
                yield part
                part = ""
            yield word[:limit] + " "
            word = word[limit:]
        if part and len((part + word).rstrip()) > limit:
            yield part
            part = ""
        part += word
    if part:
        yield part


def contact_ref(phone: str) -> str:
    """A stable pseudonym of a phone number for logs (never log the number itself)."""
    return "sms-" + hashlib.sha256(phone.encode("utf-8")).hexdigest()[:10]


# ------------------------------------------------------------------ opt-out state (sms_contacts)


def ensure_contact(phone: str, database_url: str | None = None) -> None:
    """Creates the number's row on first contact (safe when two messages race)."""
    with session_scope(database_url) as session:
        if session.execute(select(SmsContact.id).where(SmsContact.phone == phone)).first():
            return
    try:
        with session_scope(database_url) as session:
            session.add(SmsContact(phone=phone, opted_out=False))
    except IntegrityError:  # created meanwhile by the other message
        pass


def _set(phone: str, condition: Any, values: dict[str, Any], database_url: str | None) -> bool:
    ensure_contact(phone, database_url)
    now = utcnow()
    with session_scope(database_url) as session:
        result = session.execute(
            update(SmsContact)
            .where(SmsContact.phone == phone, condition)
            .values(**{key: (now if value is utcnow else value) for key, value in values.items()}, updated_at=now)
        )
        return result.rowcount == 1


def record_opt_out(phone: str, database_url: str | None = None) -> bool:
    """Records that ``phone`` texted an opt-out keyword.

    Returns:
        True when the number was not opted out before (so one confirmation is due).
    """
    return _set(phone, SmsContact.opted_out.is_(False), {"opted_out": True, "opted_out_at": utcnow}, database_url)


def record_opt_in(phone: str, database_url: str | None = None) -> bool:
    """Records that ``phone`` texted an opt-in keyword.

    Returns:
        True when the number was opted out (so it is now resubscribed and told so).
    """
    return _set(phone, SmsContact.opted_out.is_(True), {"opted_out": False, "opted_in_at": utcnow}, database_url)


def claim_privacy_notice(phone: str, database_url: str | None = None) -> bool:
    """True exactly once per number: the caller includes the privacy note in its message."""
    return _set(phone, SmsContact.privacy_notice_sent_at.is_(None), {"privacy_notice_sent_at": utcnow}, database_url)


def opted_out_since(phone: str, database_url: str | None = None) -> datetime | None:
    """When ``phone`` opted out, or None if it may be texted."""
    with session_scope(database_url) as session:
        row = session.execute(
            select(SmsContact.opted_out, SmsContact.opted_out_at).where(SmsContact.phone == phone)
        ).first()
    if row is None or not row.opted_out:
        return None
    return row.opted_out_at or utcnow()


def claim_message(message_sid: str, database_url: str | None = None) -> bool:
    """Takes an incoming text's Twilio ``MessageSid``: True the first time, False for a re-delivery.

    The primary key decides, so of two instances (or requests) taking one id at once exactly one
    gets True.
    """
    try:
        with session_scope(database_url) as session:
            session.add(ReceivedSms(message_sid=message_sid))
    except IntegrityError:
        return False
    return True


def is_opted_out(phone: str, database_url: str | None = None) -> bool:
    """Whether ``phone`` texted STOP (or similar) and has not opted in since.

    The staff console calls this to show that a patient opted out; the SMS connector and
    :func:`clinic.rasa_api.send_staff_reply` call it before sending anything.
    """
    return opted_out_since(phone, database_url) is not None


# ------------------------------------------------------------------ background work


class InOrder:
    """Background work, one at a time per key (a phone number), in the order it was submitted.

    Work for different keys runs concurrently. A failure of one piece of work does not stop the
    next; it is logged without the key (a phone number).
    """

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()

    def __len__(self) -> int:
        """Pieces of work not finished yet."""
        return len(self._tasks)

    def submit(self, key: str, work: Callable[[], Awaitable[Any]]) -> asyncio.Task:
        """Starts ``work()`` once the key's earlier work is done; returns at once (call from the event loop).

        Returns:
            The task running it (its result is ``work``'s).
        """
        previous = self._tails.get(key)
        task = asyncio.get_running_loop().create_task(self._after(previous, work))
        self._tails[key] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._forget(key, done))
        return task

    @staticmethod
    async def _after(previous: asyncio.Task | None, work: Callable[[], Awaitable[Any]]) -> Any:
        if previous is not None:
            await asyncio.wait([previous])  # keep the order; its outcome does not matter here
        return await work()

    def _forget(self, key: str, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if self._tails.get(key) is task:
            del self._tails[key]
        if not task.cancelled() and task.exception() is not None:
            logger.error("background work failed", exc_info=task.exception())

    async def drain(self, timeout: float | None = None) -> bool:
        """Waits until everything submitted so far (and work it submits meanwhile) is done.

        Args:
            timeout: give up after this many seconds (the work goes on).

        Returns:
            Whether everything is done.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(list(self._tasks), timeout=left)
        return True


# ------------------------------------------------------------------ sending


@dataclass(frozen=True)
class SmsLineSettings:
    """The Twilio account and number of the patient text line.

    Attributes:
        account_sid: ``TWILIO_ACCOUNT_SID``.
        auth_token: ``TWILIO_AUTH_TOKEN`` (secret): signs Twilio's webhooks and our API calls.
        number: the clinic's patient text number (``TWILIO_SMS_NUMBER``, else ``TWILIO_FROM_NUMBER``).
        webhook_url: the exact URL configured in Twilio for incoming messages
            (``TWILIO_WEBHOOK_URL``); signatures are checked against it. Unset: the URL the
            request arrived at (right only without a proxy in front).
        api_base: Twilio's API base URL, or a stand-in's (``TWILIO_API_BASE``).
        retry_delays: seconds to wait before each retry of a failed send (``SMS_RETRY_DELAYS``).
    """

    account_sid: str = ""
    auth_token: str = ""
    number: str = ""
    webhook_url: str = ""
    api_base: str = TWILIO_API_BASE
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS

    def __repr__(self) -> str:  # never print the token
        return f"SmsLineSettings(account_sid={self.account_sid[:6]}..., api_base={self.api_base!r})"

    @property
    def can_verify(self) -> bool:
        """Incoming requests can be checked (an auth token is set)."""
        return bool(self.auth_token)

    @property
    def can_send(self) -> bool:
        """Messages can be sent (account, token and number are set)."""
        return bool(self.account_sid and self.auth_token and self.number)

    @classmethod
    def from_sources(
        cls, credentials: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
    ) -> SmsLineSettings:
        """Reads credentials.yml's keys (``account_sid``, ``auth_token``, ``twilio_number``,
        ``webhook_url``, ``api_base``, ``retry_delays``), falling back to the environment.

        Raises:
            ValueError: ``api_base``, ``webhook_url`` or ``retry_delays`` is malformed.
        """
        creds = dict(credentials or {})
        env = environment() if environ is None else environ

        def pick(key: str, *names: str) -> str:
            value = creds.get(key)
            for name in names:
                value = value or env.get(name)
            return str(value or "").strip()

        api_base = (pick("api_base", "TWILIO_API_BASE") or TWILIO_API_BASE).rstrip("/")
        if urlsplit(api_base).scheme not in ("http", "https") or not urlsplit(api_base).hostname:
            raise ValueError(f"TWILIO_API_BASE must be an https:// URL (got {api_base!r})")
        webhook_url = pick("webhook_url", "TWILIO_WEBHOOK_URL")
        if webhook_url and urlsplit(webhook_url).scheme not in ("http", "https"):
            raise ValueError("TWILIO_WEBHOOK_URL must be the full https:// URL configured in Twilio")
        delays = creds.get("retry_delays")
        if delays is None:
            delays = env.get("SMS_RETRY_DELAYS") or ""
        if isinstance(delays, str):
            delays = [part for part in delays.replace(" ", "").split(",") if part]
        try:
            retry_delays = tuple(float(d) for d in delays) if delays else DEFAULT_RETRY_DELAYS
        except (TypeError, ValueError):
            raise ValueError("SMS_RETRY_DELAYS must be a comma list of seconds, e.g. 2,10,30") from None
        if any(d < 0 for d in retry_delays):
            raise ValueError("SMS_RETRY_DELAYS must not be negative")
        return cls(
            account_sid=pick("account_sid", "TWILIO_ACCOUNT_SID"),
            auth_token=pick("auth_token", "TWILIO_AUTH_TOKEN"),
            number=pick("twilio_number", "TWILIO_SMS_NUMBER", "TWILIO_FROM_NUMBER"),
            webhook_url=webhook_url,
            api_base=api_base,
            retry_delays=retry_delays,
        )


class SmsSendError(Exception):
    """A message was not sent. The text is safe to log: no message text, number or secret."""

    def __init__(self, reason: str, *, retryable: bool, opted_out: bool = False) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.opted_out = opted_out


class SmsTransport(Protocol):
    """Sends one SMS now (blocking) or raises :class:`SmsSendError`."""

    def send(self, to: str, body: str) -> None: ...


class TwilioSmsTransport:
    """Twilio's Messages API through the ``twilio`` package (``TWILIO_API_BASE`` respected)."""

    def __init__(self, settings: SmsLineSettings, timeout: float = 10.0) -> None:
        self.settings = settings
        self.timeout = timeout

    def send(self, to: str, body: str) -> None:
        """Creates the message.

        Raises:
            SmsSendError: retryable for network trouble, HTTP 429 and 5xx; not for other refusals.
        """
        from twilio.base.exceptions import TwilioException, TwilioRestException
        from twilio.rest import Client

        from clinic.staff.notifiers.sms import RebasedTwilioHttpClient

        if not self.settings.can_send:
            raise SmsSendError("the SMS line is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, "
                               "TWILIO_SMS_NUMBER)", retryable=False)
        http_client = RebasedTwilioHttpClient(self.settings.api_base, timeout=self.timeout)
        try:
            client = Client(self.settings.account_sid, self.settings.auth_token, http_client=http_client)
            client.messages.create(to=to, from_=self.settings.number, body=body)
        except TwilioRestException as exc:
            code = f", Twilio error {exc.code}" if exc.code else ""
            retryable = exc.status == 429 or exc.status >= 500
            raise SmsSendError(f"Twilio answered HTTP {exc.status}{code}", retryable=retryable,
                               opted_out=exc.code == TWILIO_UNSUBSCRIBED) from None
        except TwilioException as exc:
            raise SmsSendError(f"Twilio client error ({type(exc).__name__})", retryable=False) from None
        except ValueError:
            raise SmsSendError("Twilio answered something other than JSON", retryable=True) from None
        except OSError as exc:  # requests' ConnectionError, Timeout... (their text holds the URL)
            raise SmsSendError(f"Twilio unreachable ({type(exc).__name__})", retryable=True) from None
        finally:
            http_client.close()


@dataclass
class SmsDispatcher:
    """Sends SMS in the background: in order per number, retried, never blocking the caller.

    Before every attempt the number's opt-out is checked again (a STOP may arrive while
    replies are queued), except for the opt-out confirmation itself. Logs carry
    :func:`contact_ref` pseudonyms and error reasons, never message text.

    Attributes:
        transport: what sends one message.
        retry_delays: seconds before each retry (so ``len + 1`` attempts in all).
        database_url: the clinic database holding ``sms_contacts``.
        sleep: ``asyncio.sleep`` (tests may replace it).
    """

    transport: SmsTransport
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    database_url: str | None = None
    sleep: Callable[[float], Any] = asyncio.sleep
    _queue: InOrder = field(default_factory=InOrder, init=False, repr=False)

    def submit(self, to: str, body: str, *, even_if_opted_out: bool = False) -> asyncio.Task:
        """Queues one message to ``to`` and returns at once (call from the event loop).

        Args:
            to: the E.164 number.
            body: the text (already within :data:`SMS_LIMIT`).
            even_if_opted_out: only for the opt-out confirmation.

        Returns:
            The task sending it; its result is True when Twilio accepted the message.
        """
        return self._queue.submit(to, lambda: self._deliver(to, body, even_if_opted_out))

    async def drain(self, timeout: float | None = None) -> bool:
        """Waits until everything queued so far is sent or given up (at most ``timeout`` s).

        Returns:
            Whether nothing is left to send.
        """
        return await self._queue.drain(timeout)

    async def _deliver(self, to: str, body: str, even_if_opted_out: bool) -> bool:
        ref = contact_ref(to)
        attempts = len(self.retry_delays) + 1
        for attempt in range(1, attempts + 1):
            if not even_if_opted_out and await asyncio.to_thread(is_opted_out, to, self.database_url):
                logger.info("sms to %s not sent: the number opted out", ref)
                return False
            try:
                await asyncio.to_thread(self.transport.send, to, body)
            except SmsSendError as exc:
                if exc.opted_out:
                    await asyncio.to_thread(record_opt_out, to, self.database_url)
                    logger.warning("sms to %s refused: Twilio has an opt-out for this number (recorded)", ref)
                    return False
                if not exc.retryable or attempt == attempts:
                    logger.error("sms to %s failed after %d attempt(s): %s", ref, attempt, exc)
                    return False
                delay = self.retry_delays[attempt - 1]
                logger.warning("sms to %s failed (attempt %d of %d): %s; retrying in %ss", ref, attempt, attempts,
                               exc, delay)
                await self.sleep(delay)
            except Exception:  # a database or programming error: never lose the loop over it
                logger.exception("sms to %s failed unexpectedly", ref)
                return False
            else:
                logger.debug("sms to %s accepted by Twilio (%d characters)", ref, len(body))
                return True
        return False
