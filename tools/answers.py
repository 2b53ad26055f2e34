"""The assistant's answers as a patient reads them: filled from clinic.yml, with their
length and reading level (``make answers``): Flesch-Kincaid grade in English, Fernández-Huerta
ease in Spanish; SMS answers also with the segments they are billed as, by their real encoding
(Spanish with á, í, ó or ú goes as UCS-2, 70 characters a segment instead of 160)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import textstat
import yaml
from textstat.textstat import textstatistics

from clinic.channels.segments import Segments, count_segments
from clinic.profile import ClinicProfile, load_profile
from clinic.settings import PROJECT_DIR

WEB_LIMIT, SMS_LIMIT, GRADE_LIMIT, SPANISH_EASE_MIN = 700, 320, 9.0, 60.0
SMS_SEGMENT_LIMIT = 3  # segments one SMS answer may take
# Spanish syllables on an instance of their own: the shared one keeps counting English.
_SPANISH = textstatistics()
_SPANISH.set_lang("es")


@dataclass(frozen=True)
class Answer:
    response: str
    channel: str  # "web" or "sms"
    text: str
    language: str = "en"  # "en" or "es"

    @property
    def reading(self) -> float:
        """Flesch-Kincaid grade (English, lower is easier) or Fernández-Huerta (Spanish, higher is easier)."""
        if self.language == "es":
            return _SPANISH.fernandez_huerta(self.text)
        return textstat.flesch_kincaid_grade(self.text)

    @property
    def too_hard(self) -> bool:
        return self.reading < SPANISH_EASE_MIN if self.language == "es" else self.reading > GRADE_LIMIT

    @property
    def limit(self) -> int:
        return SMS_LIMIT if self.channel == "sms" else WEB_LIMIT

    @property
    def segments(self) -> Segments | None:
        """The SMS segments the text takes (None on the web)."""
        return count_segments(self.text) if self.channel == "sms" else None

    @property
    def over(self) -> bool:
        """Longer than its channel allows, too many SMS segments, or too hard to read."""
        segments = self.segments
        too_many = segments is not None and segments.count > SMS_SEGMENT_LIMIT
        return len(self.text) > self.limit or too_many or self.too_hard


def filled_answers(profile: ClinicProfile | None = None, domain: Path = PROJECT_DIR / "domain.yml",
                   prefix: str = "utter_faq_") -> list[Answer]:
    """Every variation of the responses starting with ``prefix``, filled in its language."""
    profile = profile or load_profile()
    values = {language: profile.answer_values(language) for language in ("en", "es")}
    responses = yaml.safe_load(domain.read_text(encoding="utf-8"))["responses"]
    answers = []
    for name, variations in responses.items():
        if not name.startswith(prefix):
            continue
        for variation in variations:
            channel = "sms" if variation.get("channel") == "twilio" else "web"
            language = next((c["value"] for c in variation.get("condition") or [] if c["name"] == "language"), "en")
            answers.append(Answer(name, channel, variation["text"].format(**values[language]), language))
    return answers


def report(answers: list[Answer]) -> str:
    """One line per answer; SMS answers show "segments encoding" ("3 UCS-2"), web ones "-"."""
    lines = [f"{'response':32} {'lang':4} {'channel':7} {'chars':>5} {'limit':>5} {'segments':>9} {'reading':>7}"]
    for a in answers:
        flag = "  << over" if a.over else ""
        scale = "FH" if a.language == "es" else "FK"
        segments = a.segments
        billed = f"{segments.count} {segments.encoding}" if segments is not None else "-"
        lines.append(f"{a.response:32} {a.language:4} {a.channel:7} {len(a.text):>5} {a.limit:>5} {billed:>9} "
                     f"{scale} {a.reading:>4.1f}{flag}")
    return "\n".join(lines)
