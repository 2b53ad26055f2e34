"""What a new staff password must not be: short, trivial, common, or the account's own name.

Following NIST SP 800-63B and OWASP, the rules ask for length and check the password against
what attackers try first, instead of composition rules (a digit, a symbol...), which only lead
people to ``Summer2024!``. A password is refused when it

* has fewer than :data:`MIN_LENGTH` or more than :data:`MAX_LENGTH` characters;
* is one character, or a pattern of up to four, repeated (``aaaaaaaaaaaa``, ``abcabcabcabc``);
* is a run along the alphabet, the digits or the keyboard (``123456789012``, ``qwertyuiopas``),
  with at most digits or symbols around it;
* is the user name or the person's name with only digits or symbols added (``dana.ruiz2024!``);
* is on the list of common passwords shipped with the project (:data:`COMMON_PASSWORDS_PATH`),
  once lower-cased, without spaces, without the digits and symbols around it, and with
  look-alike symbols read as letters (``P@ssw0rd-2024`` is ``password``), or is one repeated.

Long passphrases of ordinary words pass: only the whole password (or its core) is compared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

MIN_LENGTH = 12
MAX_LENGTH = 1024
COMMON_PASSWORDS_PATH = Path(__file__).resolve().parent / "common_passwords.txt"
SHORT_PATTERN = 4  # a unit of up to this many characters repeated is a pattern, not a password

_SEPARATORS = re.compile(r"[\s._-]+")
_AROUND = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_LETTERS = re.compile(r"[^\W\d_]")
_LOOK_ALIKES = str.maketrans({"@": "a", "4": "a", "3": "e", "0": "o", "$": "s", "5": "s", "7": "t", "+": "t",
                              "!": "i", "|": "l"})
_RUNS = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789",
    "qwertyuiopasdfghjklzxcvbnm",
    "1234567890qwertyuiop",
    "1q2w3e4r5t6y7u8i9o0p",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmikolp",
    "zaq1xsw2cde3vfr4bgt5nhy6mju7ki8lo9p0",
)
_MIN_RUN = 4

TOO_SHORT = f"The password must have at least {MIN_LENGTH} characters."
TOO_LONG = f"The password must have at most {MAX_LENGTH} characters."
REPEATED = "The password is one character or a short pattern repeated (like aaaa… or abcabc…): choose another."
RUN = "The password is a run of letters, digits or keys (like abcdef…, 123456… or qwerty…): choose another."
OWN_NAME = "The password is your user name or name with only digits or symbols added: choose another."
COMMON = (
    "This password is too common: it is on the list of passwords attackers try first (perhaps with "
    "digits or symbols added). Choose another; a few unrelated words make a strong password."
)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The list of common passwords (read once, on first use)."""
    lines = COMMON_PASSWORDS_PATH.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def problem(password: str, names: Iterable[str] = ()) -> str | None:
    """Why ``password`` cannot be used (a sentence for the person choosing it), or None when it can.

    Args:
        password: the new password, as typed.
        names: the account's user name and the person's name, which the password must not be.
    """
    if len(password) < MIN_LENGTH:
        return TOO_SHORT
    if len(password) > MAX_LENGTH:
        return TOO_LONG
    lower = password.lower()
    compact = _SEPARATORS.sub("", lower)
    if len(_unit(compact)) <= SHORT_PATTERN:
        return REPEATED
    cores = {compact, _AROUND.sub("", compact)}
    if any(_is_run(text) for text in cores):
        return RUN
    if _only_names(compact, names):
        return OWN_NAME
    if _forms(lower, compact) & common_passwords():
        return COMMON
    return None


def _unit(text: str) -> str:
    """The shortest string that ``text`` is repeats of (``text`` itself when it is no repetition)."""
    if not text:
        return text
    period = (text + text).find(text, 1)
    return text[:period]


def _is_run(text: str) -> bool:
    if len(text) < _MIN_RUN:
        return False
    for run in _RUNS:
        for direction in (run, run[::-1]):
            if text in direction * (len(text) // len(direction) + 2):
                return True
    return False


def _only_names(compact: str, names: Iterable[str]) -> bool:
    """The password holds a name, and nothing but digits and symbols is left once the names (and
    their parts of three letters or more) are taken out."""
    words: set[str] = set()
    for name in names:
        lowered = (name or "").lower()
        words.add(_SEPARATORS.sub("", lowered))
        words.update(part for part in re.split(r"[\W_]+", lowered) if len(part) >= 3)
    rest = compact
    for word in sorted(words - {""}, key=len, reverse=True):
        rest = rest.replace(word, "")
    return rest != compact and not _LETTERS.search(rest)


def _forms(lower: str, compact: str) -> set[str]:
    """The ways the password is compared with the list: as typed, compact, its core, look-alikes read."""
    forms = {lower, compact, _unit(compact)}
    for text in (lower, compact):
        core = _AROUND.sub("", text)
        forms.add(core)
        forms.add(_unit(core))
        for one in "il":  # "1" stands for either
            forms.add(core.replace("1", one).translate(_LOOK_ALIKES))
    forms.discard("")
    return forms
