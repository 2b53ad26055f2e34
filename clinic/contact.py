"""Contact details a patient types: names, phone numbers and email addresses."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

# Words of letters joined by a space, apostrophe, hyphen or dot; a dot may be followed by a
# space ("John F. Kennedy", "Dr. Jane Doe").
_NAME_RE = re.compile(r"^[^\W\d_]+(?:(?:[ '\-]|\. ?)[^\W\d_]+)*\.?$", re.UNICODE)
# A "name" made only of these words is a reply, not a name ("thank you", "no thanks").
_NOT_NAME_WORDS = frozenset(
    "yes no yeah yep nope ok okay hi hello hey there thanks thank you sure not stop cancel help idk "
    "none na please".split()
)
_NAME_PREFIXES = re.compile(r"^(?:my name is|my name's|name is|it's|its|i am|i'm|im|this is)\s+", re.I)


def clean_name(text: str) -> str | None:
    """A plausible person's name from what the patient typed, or None.

    Accepts letters (any alphabet), spaces, apostrophes, hyphens and dots, 2-100 characters,
    and strips lead-ins like "my name is".
    """
    name = _NAME_PREFIXES.sub("", (text or "").strip()).strip(" .!,")
    name = re.sub(r"\s+", " ", name)
    if not 2 <= len(name) <= 100 or not _NAME_RE.match(name):
        return None
    if all(word.strip(".'-") in _NOT_NAME_WORDS for word in name.lower().split()):
        return None
    return name


def normalize_phone(text: str, region: str = "US") -> str | None:
    """The phone number in E.164 ("+13125550123"), or None when it is not a valid number."""
    candidates = [m.number for m in phonenumbers.PhoneNumberMatcher(text or "", region)]
    if not candidates:
        try:
            candidates = [phonenumbers.parse(text or "", region)]
        except phonenumbers.NumberParseException:
            return None
    for number in candidates:
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def display_phone(e164: str) -> str:
    """A number as people write it: "(312) 555-0123" for US numbers."""
    number = phonenumbers.parse(e164, "US")
    formats = phonenumbers.PhoneNumberFormat
    style = formats.NATIONAL if number.country_code == 1 else formats.INTERNATIONAL
    return phonenumbers.format_number(number, style)


# "jane dot doe at example dot com"
_SPOKEN_AT = re.compile(r"\s+(?:at|\(at\)|\[at\])\s+", re.I)
_SPOKEN_DOT = re.compile(r"\s+(?:dot|\(dot\)|\[dot\])\s+", re.I)
_EMAIL_TOKEN = re.compile(r"[^\s<>(),;:\"']+@[^\s<>(),;:\"']+")


def normalize_email(text: str) -> str | None:
    """The email address in what the patient typed ("my email is Jane@Example.com"), or None.

    Checked with email-validator for syntax only (no DNS or network lookups); the domain is
    lower-cased. Spoken forms ("jane dot doe at example dot com") are read too.
    """
    text = (text or "").strip()
    if "@" not in text and _SPOKEN_AT.search(text) and _SPOKEN_DOT.search(text):
        text = _SPOKEN_DOT.sub(".", _SPOKEN_AT.sub("@", text.split(" is ")[-1]))
    match = _EMAIL_TOKEN.search(text)
    if not match:
        return None
    try:
        return validate_email(match.group(0).rstrip("."), check_deliverability=False).normalized
    except EmailNotValidError:
        return None
