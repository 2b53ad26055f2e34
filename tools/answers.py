"""The assistant's answers as a patient reads them: filled from clinic.yml, with their
length and Flesch-Kincaid grade (``make answers``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import textstat
import yaml

from clinic.profile import ClinicProfile, load_profile
from clinic.settings import PROJECT_DIR

WEB_LIMIT, SMS_LIMIT, GRADE_LIMIT = 700, 320, 9.0


@dataclass(frozen=True)
class Answer:
    response: str
    channel: str  # "web" or "sms"
    text: str

    @property
    def grade(self) -> float:
        return textstat.flesch_kincaid_grade(self.text)

    @property
    def limit(self) -> int:
        return SMS_LIMIT if self.channel == "sms" else WEB_LIMIT


def filled_answers(profile: ClinicProfile | None = None, domain: Path = PROJECT_DIR / "domain.yml",
                   prefix: str = "utter_faq_") -> list[Answer]:
    """Every variation of the responses starting with ``prefix``, placeholders filled."""
    values = (profile or load_profile()).answer_values()
    responses = yaml.safe_load(domain.read_text(encoding="utf-8"))["responses"]
    answers = []
    for name, variations in responses.items():
        if not name.startswith(prefix):
            continue
        for variation in variations:
            channel = "sms" if variation.get("channel") == "twilio" else "web"
            answers.append(Answer(name, channel, variation["text"].format(**values)))
    return answers


def report(answers: list[Answer]) -> str:
    lines = [f"{'response':32} {'channel':7} {'chars':>5} {'limit':>5} {'FK grade':>8}"]
    for a in answers:
        flag = "  << over" if len(a.text) > a.limit or a.grade > GRADE_LIMIT else ""
        lines.append(f"{a.response:32} {a.channel:7} {len(a.text):>5} {a.limit:>5} {a.grade:>8.1f}{flag}")
    return "\n".join(lines)
