"""How many SMS segments a text takes, counted by the encoding a carrier really uses.

A text whose every character is in the GSM 03.38 alphabet goes as GSM-7: 160 septets in a single
segment, 153 per part once it has to be split (each part carries a header for reassembly). The
extension table's characters (``€ [ ] { } ^ ~ | \\`` and form feed) are sent as an escape plus the
character, so they count twice. One character outside the alphabet (``á``, ``í``, ``ó``, ``ú``, a
curly quote, an emoji) makes the whole text UCS-2: 70 UTF-16 code units in a single segment, 67
per part. An emoji outside the Basic Multilingual Plane is a surrogate pair, two units.

Carriers never split a character across two parts (an escape and its character, or a surrogate
pair, travel together), so a part may hold one unit fewer than its limit; the count here does
the same, as Twilio's own segment calculator does.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM_7 = "GSM-7"
UCS_2 = "UCS-2"

# GSM 03.38 basic table, in code order (0x1B, the escape to the extension table, left out).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each is sent as the escape and the character.
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

_SINGLE = {GSM_7: 160, UCS_2: 70}
_PART = {GSM_7: 153, UCS_2: 67}


@dataclass(frozen=True)
class Segments:
    """What an SMS costs to send.

    Attributes:
        count: segments the carrier bills (0 for an empty text).
        encoding: ``"GSM-7"`` or ``"UCS-2"``.
        units: septets (GSM-7) or UTF-16 code units (UCS-2) the text takes.
    """

    count: int
    encoding: str
    units: int


def encoding_of(text: str) -> str:
    """``"GSM-7"`` when every character is in the GSM 03.38 alphabet, else ``"UCS-2"``."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text):
        return GSM_7
    return UCS_2


def _unit_sizes(text: str, encoding: str) -> list[int]:
    """Each character's size in the encoding's units (an extended GSM character or a surrogate pair: 2)."""
    if encoding == GSM_7:
        return [2 if ch in _GSM_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def count_segments(text: str) -> Segments:
    """The segments ``text`` takes as one SMS, by its real encoding."""
    encoding = encoding_of(text)
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    if units == 0:
        return Segments(0, encoding, 0)
    if units <= _SINGLE[encoding]:
        return Segments(1, encoding, units)
    parts, used = 1, 0
    for size in sizes:
        if used + size > _PART[encoding]:
            parts, used = parts + 1, 0
        used += size
    return Segments(parts, encoding, units)
