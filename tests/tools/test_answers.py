"""The answer report: filled texts, lengths and reading grades."""

from __future__ import annotations

from tools.answers import Answer, filled_answers, report

TOPICS = 16


def test_every_faq_answer_is_filled_for_web_and_sms_in_english_and_spanish() -> None:
    answers = filled_answers()
    assert len(answers) == 2 * 2 * TOPICS
    assert {(a.channel, a.language) for a in answers} == {("web", "en"), ("sms", "en"), ("web", "es"), ("sms", "es")}
    assert not any("{" in a.text or "}" in a.text for a in answers)


def test_the_report_flags_an_answer_over_its_limit() -> None:
    long_sms = Answer("utter_faq_example", "sms", "Short words here. " * 30)
    lines = report([long_sms, Answer("utter_faq_ok", "web", "A short answer.")]).splitlines()
    assert lines[1].endswith("<< over") and not lines[2].endswith("<< over")


def test_the_report_shows_sms_segments_by_encoding_and_flags_more_than_three() -> None:
    # 213 characters: under the 320-character limit, but 4 segments as UCS-2.
    spanish = Answer("utter_faq_es", "sms", "¿Cuánto dura la sesión? Poco. " * 7 + "Sí.", "es")
    english = Answer("utter_faq_en", "sms", "How long is it? Not long. " * 8)
    lines = report([spanish, english, Answer("utter_faq_web", "web", "A short answer.")]).splitlines()

    assert "4 UCS-2" in lines[1] and lines[1].endswith("<< over")
    assert "2 GSM-7" in lines[2] and not lines[2].endswith("<< over")
    assert lines[3].split()[5] == "-"
