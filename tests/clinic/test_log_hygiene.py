"""clinic.log_hygiene: records at INFO and above carry no phone numbers, emails or SQL parameters,
and Rasa's structured logs no message text or traceback locals."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from clinic import log_hygiene
from clinic.log_hygiene import REDACTED, scrub


@pytest.mark.parametrize("phone", [
    "+13125550187", "+1 312 555 0187", "+44 20 7946 0958", "312-555-0187", "(312) 555-0187", "312.555.0187",
    "3125550187", "1-312-555-0187", "%2B13125550187", "%2b13125550187",
])
def test_phone_numbers_in_any_format_are_replaced(phone: str) -> None:
    assert scrub(f"conversation {phone} failed") == "conversation [phone] failed"


@pytest.mark.parametrize("email", ["ana.diaz@example.com", "a+b@mail.example.org", "ZQ.1F@EXAMPLE.COM"])
def test_emails_are_replaced(email: str) -> None:
    assert scrub(f"to {email}.") == "to [email]."


def test_sql_parameters_are_replaced_but_the_statement_kept() -> None:
    error = ("(psycopg2.OperationalError) server closed the connection unexpectedly\n"
             "[SQL: INSERT INTO events (sender_id, data) VALUES (%(sender_id)s, %(data)s)]\n"
             "[parameters: {'sender_id': 'rest-1', 'data': '{\"text\": \"i want to die]\"}'}]\n"
             "(Background on this error at: https://sqlalche.me/e/14/e3q8)")

    scrubbed = scrub(error)

    assert "[SQL: INSERT INTO events" in scrubbed and "[parameters hidden]" in scrubbed
    assert "die" not in scrubbed and "rest-1" not in scrubbed and "sqlalche.me/e/14/e3q8" in scrubbed


@pytest.mark.parametrize("text", [
    "Starting Rasa server on http://127.0.0.1:5005", "escalation 12 opened (reason=crisis channel=twilio)",
    "sms to sms-3f2a9c01be failed (attempt 2 of 3)", "booking K7M4QX moved", "2026-11-22 06:26:48 took 1234 ms",
    "Loading model models/clinic-a590b54249512ea7.tar.gz", "notification 3 for escalation 41 via slack sent",
])
def test_ordinary_log_lines_are_unchanged(text: str) -> None:
    assert scrub(text) == text


@pytest.fixture
def installed() -> Iterator[None]:
    log_hygiene.install()
    try:
        yield
    finally:
        log_hygiene.uninstall()


def test_records_at_info_and_above_are_scrubbed_when_created(installed: None, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.hygiene")
    caplog.set_level(logging.DEBUG, logger="tests.hygiene")

    logger.info("sms from %s, email %s", "+13125550187", "ana@example.com")
    logger.debug("debug keeps %s", "+13125550187")
    try:
        raise ValueError("bad number 312-555-0187")
    except ValueError:
        logger.exception("failed for %s", "(312) 555-0187")

    info, debug, error = caplog.records
    assert info.getMessage() == "sms from [phone], email [email]"
    assert debug.getMessage() == "debug keeps +13125550187"  # DEBUG is left alone
    assert error.getMessage() == "failed for [phone]"
    assert "ValueError: bad number [phone]" in logging.Formatter().format(error)
    assert "555-0187" not in caplog.text


def test_install_is_idempotent_and_uninstall_restores(caplog: pytest.LogCaptureFixture) -> None:
    before = logging.getLogRecordFactory()
    log_hygiene.install()
    log_hygiene.install()
    try:
        assert log_hygiene.installed()
    finally:
        log_hygiene.uninstall()
    assert logging.getLogRecordFactory() is before and not log_hygiene.installed()
    logging.getLogger("tests.hygiene").warning("+13125550187")
    assert "+13125550187" in caplog.text


@pytest.fixture
def rasa_structlog() -> Iterator[io.StringIO]:
    """structlog configured as Rasa configures it off a terminal (JSON, tracebacks with locals)."""
    saved = structlog.get_config()
    saved = {**saved, "processors": list(saved["processors"])}
    output = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(output),
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=True,
    )
    try:
        yield output
    finally:
        structlog.configure(**saved)
        log_hygiene.uninstall()


def test_rasa_structured_logs_lose_message_text_and_traceback_locals(rasa_structlog: io.StringIO) -> None:
    logger = structlog.get_logger()
    logger.info("warm.up")  # a logger already in use (cached) is covered too
    log_hygiene.install()

    text = "i want to end it all, call me at 312-555-0187"
    logger.error("rest.message.received.failure", text=text, sender_id="+13125550187")
    logger.debug("processor.message", text=text)
    try:
        secret = text  # noqa: F841 - a local variable of the failing frame
        raise RuntimeError("tracker store down")
    except RuntimeError:
        logger.exception("rest.message.received.failure", text=text)

    warm, error, debug, exception = (json.loads(line) for line in rasa_structlog.getvalue().splitlines())
    assert (error["text"], error["sender_id"], error["level"]) == (REDACTED, REDACTED, "error")
    assert debug["text"] == text  # DEBUG is left alone
    assert exception["text"] == REDACTED and "tracker store down" in json.dumps(exception["exception"])
    assert "end it all" not in json.dumps(exception), json.dumps(exception)
    assert all(frame["locals"] is None for frame in exception["exception"][0]["frames"])
