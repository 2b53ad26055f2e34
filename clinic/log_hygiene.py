"""Log hygiene: records at INFO and above never carry patient text or contact details.

The project's own code logs ids, reasons and channels only; this module is the second line of
defence for what libraries log, installed in every server process (:func:`install`):

- **Every stdlib log record** at INFO or above (Rasa, the action server, SQLAlchemy, sanic...) is
  rewritten when it is created: phone numbers (E.164, US formats, URL-encoded), email addresses
  and SQL statement parameters in the message and in its traceback become ``[phone]``,
  ``[email]``, ``[parameters hidden]``. A conversation id on SMS is the patient's number, so it
  is caught too.
- **Rasa's structured logs** (structlog) at INFO and above: the values of keys that hold message
  text, slots, parse data or events (Rasa's own list of anonymisable keys, plus sender ids) are
  replaced by ``[redacted]``, and tracebacks are rendered without local variables (Rasa's default
  renders every frame's locals: the message text, the tracker...). Rasa logs e.g. the message
  text at ERROR when handling a REST message fails.

DEBUG records are left alone: ``LOG_LEVEL=DEBUG`` is for a developer's machine and may show
everything. Free text without a recognisable pattern (a message quoted inside another library's
exception) cannot be recognised here; that is why our engines use ``hide_parameters`` and our
code never puts patient text in a log call.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

REDACTED = "[redacted]"
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\s*(?:\n|\(Background|$))", re.DOTALL)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE_PATTERNS = (
    re.compile(r"%2B\d{8,15}", re.IGNORECASE),  # URL-encoded E.164 (a conversation id in a URL)
    re.compile(r"\+\d[\d ().-]{7,18}\d"),  # E.164, possibly spaced: +1 312 555 0100
    # US numbers: 312-555-0100, (312) 555-0100, 312.555.0100, 3125550100, 1-312-555-0100
    re.compile(r"(?<![\w.:/%-])(?:1[ .-]?)?\(?[2-9]\d{2}\)?[ .-]?\d{3}[ .-]?\d{4}(?![\w])"),
)
# Rasa's own anonymisable structlog keys (rasa.utils.log_utils) plus ids and containers of them.
SENSITIVE_KEYS = frozenset({
    "text", "response_text", "user_text", "slot_values", "parse_data_text", "parse_data_entities",
    "prediction_events", "tracker_latest_message", "prefilled_slots", "message", "response",
    "slot_candidates", "rasa_event", "rasa_events", "tracker_states", "current_states", "old_states",
    "successes", "current_entity", "next_entity", "states", "entity", "token_text", "user_message",
    "json_message", "sender_id", "sender", "conversation_id", "tracker", "events", "slots", "metadata",
    "parse_data", "entities", "value", "body", "payload", "phone", "email", "name",
})
_QUIET_METHODS = frozenset({"debug", "trace"})

_lock = threading.Lock()
_installed: dict[str, Any] = {}


def scrub(text: str) -> str:
    """``text`` with phone numbers, email addresses and SQL parameters replaced."""
    if not text:
        return text
    text = _SQL_PARAMETERS.sub("[parameters hidden]", text)
    text = _EMAIL.sub("[email]", text)
    for pattern in _PHONE_PATTERNS:
        text = pattern.sub("[phone]", text)
    return text


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Rewrites a record at INFO or above in place (message and traceback text); returns it."""
    if record.levelno < logging.INFO:
        return record
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string: keep the template only
        message = str(record.msg)
    record.msg, record.args = scrub(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    return record


def _record_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(previous(*args, **kwargs))

    factory.clinic_log_hygiene = True  # type: ignore[attr-defined]
    return factory


def redact_event(_logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: sensitive values of events at INFO and above become ``[redacted]``."""
    if method_name in _QUIET_METHODS:
        return event_dict
    for key in SENSITIVE_KEYS.intersection(event_dict):
        event_dict[key] = REDACTED
    for key in ("event", "event_info"):
        if isinstance(event_dict.get(key), str):
            event_dict[key] = scrub(event_dict[key])
    return event_dict


def _install_structlog() -> None:
    """Adds :func:`redact_event` first and renders tracebacks without locals, in place (so loggers
    that cached the processor list get it too)."""
    try:
        import structlog
        from structlog.dev import ConsoleRenderer, plain_traceback
        from structlog.processors import ExceptionRenderer
        from structlog.tracebacks import ExceptionDictTransformer
    except ImportError:  # pragma: no cover - structlog comes with Rasa
        return
    processors = structlog.get_config()["processors"]
    if not any(p is redact_event for p in processors):
        processors.insert(0, redact_event)
    for index, processor in enumerate(processors):
        if isinstance(processor, ExceptionRenderer) and not getattr(processor, "clinic_no_locals", False):
            renderer = ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
            renderer.clinic_no_locals = True  # type: ignore[attr-defined]
            processors[index] = renderer
        elif isinstance(processor, ConsoleRenderer):
            processor._exception_formatter = plain_traceback  # no rich locals on a terminal either


def install() -> None:
    """Installs the record rewriting and the structlog redaction in this process (idempotent).

    Call it after the process configured its logging (Rasa configures structlog at start-up; this
    project installs it when the Rasa server creates its NLG, and in the action server when the
    actions package is imported). Installing again re-applies the structlog part, in case the
    configuration was replaced meanwhile.
    """
    with _lock:
        current = logging.getLogRecordFactory()
        if not getattr(current, "clinic_log_hygiene", False):
            _installed["factory"] = current
            logging.setLogRecordFactory(_record_factory(current))
        _install_structlog()


def uninstall() -> None:
    """Restores the previous record factory (tests). The structlog redaction stays harmless."""
    with _lock:
        if "factory" in _installed:
            logging.setLogRecordFactory(_installed.pop("factory"))


def installed() -> bool:
    return bool(getattr(logging.getLogRecordFactory(), "clinic_log_hygiene", False))
