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
