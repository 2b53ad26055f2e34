"""clinic.channels.sms: carrier keywords, opt-out state, message shaping and background sending."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from clinic.channels import sms
from clinic.channels.sms import (
    SMS_LIMIT,
    Keyword,
    SmsDispatcher,
    SmsLineSettings,
    SmsSendError,
    SmsTexts,
    TwilioSmsTransport,
)
from tests.clinic.staff.notifiers.servers import TWILIO_SID, TWILIO_TOKEN, TwilioStub, free_port

PHONE = "+15005550006"
LINE = "+15550104201"


# ------------------------------------------------------------------ keywords


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop. ", "STOPALL", "unsubscribe", "Cancel", "END", "quit",
                                  "REVOKE", "optout", "STOP!", "ALTO", "parar", "Cancelar"])
def test_opt_out_keywords_are_whole_messages_in_any_case(text: str) -> None:
    assert sms.keyword(text) is Keyword.OPT_OUT


@pytest.mark.parametrize("text", ["START", "yes", "Unstop"])
def test_opt_in_keywords(text: str) -> None:
    assert sms.keyword(text) is Keyword.OPT_IN


@pytest.mark.parametrize("text", ["HELP", "help", "Info", "AYUDA"])
def test_help_keywords(text: str) -> None:
    assert sms.keyword(text) is Keyword.HELP


@pytest.mark.parametrize("text", ["stop texting me please", "can I cancel my booking", "help me", "yes please",
                                  "the end", "", None, "S T O P"])
def test_other_messages_are_not_keywords(text: str | None) -> None:
    assert sms.keyword(text) is None


@pytest.mark.parametrize(("text", "language"), [("ALTO", "es"), ("ayuda", "es"), ("STOP", None), ("hola", None)])
def test_a_spanish_keyword_is_answered_in_spanish(text: str, language: str | None) -> None:
    assert sms.keyword_language(text) == language


# ------------------------------------------------------------------ texts


@pytest.fixture(scope="module")
def texts() -> SmsTexts:
    return SmsTexts()


def test_help_names_the_clinic_its_phone_rates_and_how_to_opt_out(texts: SmsTexts) -> None:
    text = texts.get("help")

    assert "Sample Ketamine Clinic" in text and "(555) 010-4200" in text
    assert "Msg & data rates may apply" in text and "Reply STOP to opt out" in text


def test_the_spanish_help_says_how_to_stop_in_spanish(texts: SmsTexts) -> None:
    text = texts.get("help", "es")

    assert "(555) 010-4200" in text and "Responde ALTO" in text


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("name", sms.TEXT_NAMES)
def test_each_line_text_is_a_short_single_message(texts: SmsTexts, name: str, language: str) -> None:
    text = texts.get(name, language)

    assert text and len(text) <= 200 and "{" not in text


def test_the_line_texts_say_what_they_are_for(texts: SmsTexts) -> None:
    assert "\n" not in texts.get("privacy_note") and "private" in texts.get("privacy_note")
    assert "START" in texts.get("opted_out") and "988" in texts.get("opted_out")
    assert "STOP" in texts.get("opted_in")
    assert "pictures" in texts.get("media")


def test_a_texts_file_missing_a_text_is_refused(tmp_path) -> None:
    path = tmp_path / "texts.yml"
    path.write_text("help: hi\n", encoding="utf-8")

    with pytest.raises(ValueError, match="opted_out"):
        SmsTexts(path).get("help")


# ------------------------------------------------------------------ numbered choices


BUTTONS = [{"title": "Talk to a person", "payload": "/request_human"},
           {"title": "Book a consultation", "payload": "/book_consultation"}]


def test_buttons_become_numbered_lines_without_payloads() -> None:
    text = sms.numbered_choices("Want help?", BUTTONS, "Reply with a number:")

    assert text == "Want help?\nReply with a number:\n1. Talk to a person\n2. Book a consultation"
    assert "/" not in text


@pytest.mark.parametrize(("reply", "payload"), [("1", "/request_human"), (" 2 ", "/book_consultation"),
                                                ("2.", "/book_consultation"), ("#1", "/request_human")])
def test_a_number_picks_its_button(reply: str, payload: str) -> None:
    assert sms.is_choice(reply)
    assert sms.chosen_payload(reply, BUTTONS) == payload


@pytest.mark.parametrize("reply", ["0", "3", "12", "one", "1 please", ""])
def test_other_replies_pick_nothing(reply: str) -> None:
    assert sms.chosen_payload(reply, BUTTONS) is None


# ------------------------------------------------------------------ splitting


def test_text_that_fits_is_unchanged() -> None:
    text = "Short answer.\nSecond line."
    assert sms.split_sms(text) == [text]
    assert sms.split_sms("   ") == []


def test_long_text_is_split_at_sentence_boundaries() -> None:
    sentences = [f"Sentence number {i} says something useful about the clinic." for i in range(12)]
    text = " ".join(sentences)

    parts = sms.split_sms(text)

    assert len(parts) > 1 and all(len(p) <= SMS_LIMIT for p in parts)
    assert all(p.endswith(".") for p in parts)  # every part ends a sentence
    assert " ".join(parts) == text


def test_lines_are_kept_and_are_boundaries_too() -> None:
    choices = [f"{i}. Choice number {i} with a longer title here" for i in range(1, 10)]
    text = "Reply with a number:\n" + "\n".join(choices)

    parts = sms.split_sms(text)

    assert all(len(p) <= SMS_LIMIT for p in parts)
    assert "\n".join(parts) == text


def test_a_sentence_longer_than_a_message_is_split_between_words() -> None:
    text = "word " * 150  # 750 characters, no sentence end

    parts = sms.split_sms(text)

    assert all(len(p) <= SMS_LIMIT for p in parts)
    assert " ".join(parts).split() == text.split()


def test_an_enormous_word_is_cut() -> None:
    parts = sms.split_sms("see https://example.org/" + "x" * 700 + " ok.")

    assert all(len(p) <= SMS_LIMIT for p in parts) and len(parts) >= 3


def test_contact_ref_is_a_stable_pseudonym_without_the_number() -> None:
    assert sms.contact_ref(PHONE) == sms.contact_ref(PHONE) != sms.contact_ref("+15005550007")
    assert "5550006" not in sms.contact_ref(PHONE)


# ------------------------------------------------------------------ opt-out state


def test_opting_out_and_in_is_recorded_once_each(database_url: str) -> None:
    assert not sms.is_opted_out(PHONE, database_url)  # unknown number

    assert sms.record_opt_out(PHONE, database_url) is True
    assert sms.record_opt_out(PHONE, database_url) is False  # already: no second confirmation
    assert sms.is_opted_out(PHONE, database_url) and sms.opted_out_since(PHONE, database_url) is not None

    assert sms.record_opt_in(PHONE, database_url) is True
    assert sms.record_opt_in(PHONE, database_url) is False
    assert not sms.is_opted_out(PHONE, database_url)
    assert sms.opted_out_since(PHONE, database_url) is None


def test_the_privacy_notice_is_claimed_once_per_number(database_url: str) -> None:
    sms.ensure_contact(PHONE, database_url)
    sms.ensure_contact(PHONE, database_url)  # idempotent

    assert sms.claim_privacy_notice(PHONE, database_url) is True
    assert sms.claim_privacy_notice(PHONE, database_url) is False
    assert sms.claim_privacy_notice("+15005550007", database_url) is True


def test_opt_out_is_per_number(sqlite_url: str) -> None:
    sms.record_opt_out(PHONE, sqlite_url)

    assert not sms.is_opted_out("+15005550007", sqlite_url)


# ------------------------------------------------------------------ settings


def test_settings_come_from_the_environment_unless_credentials_yml_sets_them() -> None:
    environ = {"TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TWILIO_FROM_NUMBER": LINE,
               "TWILIO_WEBHOOK_URL": "https://clinic.example/webhooks/twilio/webhook", "SMS_RETRY_DELAYS": "1, 5"}

    settings = SmsLineSettings.from_sources(None, environ)

    assert (settings.account_sid, settings.auth_token, settings.number) == (TWILIO_SID, TWILIO_TOKEN, LINE)
    assert settings.webhook_url == "https://clinic.example/webhooks/twilio/webhook"
    assert settings.retry_delays == (1.0, 5.0) and settings.api_base == "https://api.twilio.com"
    assert settings.can_verify and settings.can_send
    assert TWILIO_TOKEN not in repr(settings)

    overridden = SmsLineSettings.from_sources({"twilio_number": "+15550000000", "retry_delays": [0, 0]},
                                              {**environ, "TWILIO_SMS_NUMBER": "+15551111111"})
    assert overridden.number == "+15550000000" and overridden.retry_delays == (0.0, 0.0)
    assert SmsLineSettings.from_sources(None, {**environ, "TWILIO_SMS_NUMBER": "+15551111111"}).number == "+15551111111"


def test_an_unconfigured_line_can_neither_verify_nor_send() -> None:
    settings = SmsLineSettings.from_sources(None, {})

    assert not settings.can_verify and not settings.can_send
    assert settings.retry_delays == sms.DEFAULT_RETRY_DELAYS


@pytest.mark.parametrize(("environ", "message"), [
    ({"TWILIO_API_BASE": "ftp://x"}, "TWILIO_API_BASE"),
    ({"TWILIO_WEBHOOK_URL": "/webhooks/twilio/webhook"}, "TWILIO_WEBHOOK_URL"),
    ({"SMS_RETRY_DELAYS": "soon"}, "SMS_RETRY_DELAYS"),
    ({"SMS_RETRY_DELAYS": "-1"}, "SMS_RETRY_DELAYS"),
])
def test_malformed_settings_are_refused_by_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SmsLineSettings.from_sources(None, environ)


# ------------------------------------------------------------------ Twilio transport (a local Messages API)


@pytest.fixture
def twilio() -> Iterator[TwilioStub]:
    stub = TwilioStub()
    stub.start()
    yield stub
    stub.stop()


def _line(api_base: str) -> SmsLineSettings:
    return SmsLineSettings(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, number=LINE, api_base=api_base)


def test_the_transport_creates_the_message_through_twilios_api(twilio: TwilioStub) -> None:
    TwilioSmsTransport(_line(twilio.url)).send(PHONE, "Hello there.")

    assert twilio.messages() == [{"To": PHONE, "From": LINE, "Body": "Hello there."}]


@pytest.mark.parametrize(("status", "code", "retryable", "opted_out"), [
    (500, 20500, True, False), (429, 20429, True, False), (400, 21211, False, False), (400, 21610, False, True),
])
def test_twilio_refusals_say_whether_a_retry_may_help(twilio: TwilioStub, status: int, code: int, retryable: bool,
                                                      opted_out: bool) -> None:
    twilio.fail_with = (status, code, "refused")

    with pytest.raises(SmsSendError) as caught:
        TwilioSmsTransport(_line(twilio.url)).send(PHONE, "Hello there.")

    assert caught.value.retryable is retryable and caught.value.opted_out is opted_out
    assert str(code) in str(caught.value) and PHONE not in str(caught.value)


def test_an_unreachable_twilio_is_retryable() -> None:
    with pytest.raises(SmsSendError) as caught:
        TwilioSmsTransport(_line(f"http://127.0.0.1:{free_port()}"), timeout=2).send(PHONE, "Hello there.")

    assert caught.value.retryable and "unreachable" in str(caught.value)


def test_an_unconfigured_line_does_not_send() -> None:
    with pytest.raises(SmsSendError, match="not configured") as caught:
        TwilioSmsTransport(SmsLineSettings()).send(PHONE, "Hello there.")
    assert not caught.value.retryable


# ------------------------------------------------------------------ dispatcher


class FakeTransport:
    """Records sends; fails with the queued errors first."""

    def __init__(self, *errors: SmsSendError) -> None:
        self.errors = list(errors)
        self.sent: list[tuple[str, str]] = []
        self.attempts = 0

    def send(self, to: str, body: str) -> None:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((to, body))


async def _no_wait(_seconds: float) -> None:
    return None


def _dispatch(transport: FakeTransport, database_url: str, *messages: tuple[str, str],
              even_if_opted_out: bool = False) -> list[bool]:
    async def run() -> list[bool]:
        dispatcher = SmsDispatcher(transport, retry_delays=(5.0, 5.0), database_url=database_url, sleep=_no_wait)
        tasks = [dispatcher.submit(to, body, even_if_opted_out=even_if_opted_out) for to, body in messages]
        await dispatcher.drain()
        return [task.result() for task in tasks]

    return asyncio.run(run())


class SlowFirst(FakeTransport):
    def send(self, to: str, body: str) -> None:
        if body == "first":
            import time

            time.sleep(0.3)
        super().send(to, body)


def test_messages_to_one_number_keep_their_order(sqlite_url: str) -> None:
    transport = SlowFirst()

    assert _dispatch(transport, sqlite_url, (PHONE, "first"), (PHONE, "second"), (PHONE, "third")) == [True] * 3
    assert [body for _, body in transport.sent] == ["first", "second", "third"]


def test_a_failure_that_may_pass_is_retried_and_logged_without_text_or_number(
        sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    transport = FakeTransport(SmsSendError("Twilio answered HTTP 503", retryable=True))

    with caplog.at_level(logging.DEBUG, logger="clinic.channels.sms"):
        assert _dispatch(transport, sqlite_url, (PHONE, "secret patient text")) == [True]

    assert transport.attempts == 2 and transport.sent == [(PHONE, "secret patient text")]
    assert "retrying" in caplog.text and "HTTP 503" in caplog.text
    assert "secret" not in caplog.text and "5550006" not in caplog.text


def test_retries_stop_after_the_last_delay(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    transport = FakeTransport(*[SmsSendError("Twilio unreachable (ConnectionError)", retryable=True)] * 5)

    with caplog.at_level(logging.ERROR, logger="clinic.channels.sms"):
        assert _dispatch(transport, sqlite_url, (PHONE, "secret")) == [False]

    assert transport.attempts == 3 and "failed after 3 attempt(s)" in caplog.text and "secret" not in caplog.text


def test_a_refusal_is_not_retried(sqlite_url: str) -> None:
    transport = FakeTransport(SmsSendError("Twilio answered HTTP 400, Twilio error 21211", retryable=False))

    assert _dispatch(transport, sqlite_url, (PHONE, "hello")) == [False]
    assert transport.attempts == 1


def test_nothing_is_sent_to_a_number_that_opted_out_except_the_confirmation(sqlite_url: str) -> None:
    sms.record_opt_out(PHONE, sqlite_url)
    transport = FakeTransport()

    assert _dispatch(transport, sqlite_url, (PHONE, "bot answer")) == [False]
    assert _dispatch(transport, sqlite_url, (PHONE, "confirmation"), even_if_opted_out=True) == [True]
    assert transport.sent == [(PHONE, "confirmation")]


def test_twilios_own_opt_out_is_recorded(sqlite_url: str) -> None:
    transport = FakeTransport(SmsSendError("Twilio answered HTTP 400, Twilio error 21610", retryable=False,
                                           opted_out=True))

    assert _dispatch(transport, sqlite_url, (PHONE, "hello")) == [False]
    assert sms.is_opted_out(PHONE, sqlite_url)


# ------------------------------------------------------------------ received MessageSids


def test_a_message_sid_is_taken_once(database_url: str) -> None:
    assert sms.claim_message("SM0123456789abcdef0123456789abcdef", database_url)
    assert not sms.claim_message("SM0123456789abcdef0123456789abcdef", database_url)
    assert sms.claim_message("SMfedcba9876543210fedcba9876543210", database_url)


def test_of_many_instances_taking_one_message_sid_at_once_exactly_one_gets_it(database_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = list(pool.map(lambda _: sms.claim_message("SMsame", database_url), range(8)))

    assert taken.count(True) == 1


def test_received_message_sids_are_purged_after_a_week(sqlite_url: str) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from clinic.clock import utcnow
    from clinic.db import ReceivedSms, session_scope
    from clinic.retention import purge

    now = utcnow()
    with session_scope(sqlite_url) as session:
        session.add_all([ReceivedSms(message_sid="SMold", received_at=now - timedelta(days=8)),
                         ReceivedSms(message_sid="SMnew", received_at=now - timedelta(days=6))])

    report = purge(days=365, audit_days=365, now=now, database_url=sqlite_url, tracker_url=sqlite_url)

    assert report.deleted["received_sms"] == 1
    with session_scope(sqlite_url) as session:
        assert list(session.execute(select(ReceivedSms.message_sid)).scalars()) == ["SMnew"]


# ------------------------------------------------------------------ background work in order


def test_work_for_one_number_runs_in_order_and_other_numbers_do_not_wait() -> None:
    started: list[str] = []

    async def run() -> None:
        gate = asyncio.Event()
        queue = sms.InOrder()

        def work(name: str, wait: bool = False):
            async def go() -> str:
                started.append(name)
                if wait:
                    await gate.wait()
                return name
            return go

        first = queue.submit(PHONE, work("first", wait=True))
        second = queue.submit(PHONE, work("second"))
        other = queue.submit(LINE, work("other"))
        await asyncio.sleep(0.05)
        assert started == ["first", "other"] and not second.done()
        assert not await queue.drain(timeout=0.05)  # "first" still waits
        gate.set()
        assert await queue.drain(timeout=5)
        assert [t.result() for t in (first, second, other)] == ["first", "second", "other"]
        assert len(queue) == 0

    asyncio.run(run())

    assert started == ["first", "other", "second"]


def test_a_failing_piece_of_work_does_not_stop_the_next(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> list[str]:
        queue = sms.InOrder()
        done: list[str] = []

        async def fail() -> None:
            raise RuntimeError("boom")

        async def then() -> None:
            done.append("next")

        failing = queue.submit(PHONE, fail)
        queue.submit(PHONE, then)
        await queue.drain()
        assert isinstance(failing.exception(), RuntimeError)
        return done

    with caplog.at_level(logging.ERROR, logger="clinic.channels.sms"):
        assert asyncio.run(run()) == ["next"]

    assert "background work failed" in caplog.text and "5550006" not in caplog.text
