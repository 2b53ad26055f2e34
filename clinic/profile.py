"""The clinic's profile (clinic.yml): loading, validation and the values answers use.

Everything that differs between clinics lives in clinic.yml. A missing or invalid field
raises :class:`ProfileError` naming the field, so start-up stops with a clear message.

Answers come in English and Spanish (:data:`LANGUAGES`): the values computed here (hours, prices,
consultation formats, treatments) are worded in both, and the clinic's own English prose has its
Spanish wording in the optional ``spanish:`` block. A prose field the block leaves out is sent in
English, with a warning when the profile is loaded.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml
from pydantic import BaseModel, Extra, Field, ValidationError, validator

from clinic.dates import SPANISH, clock_text, weekday_name
from clinic.settings import PROJECT_DIR, clinic_profile_path

DEFAULT_PATH = PROJECT_DIR / "clinic.yml"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# The languages answers are written in; any other value of the conversation's language slot
# (unset, unknown) gets English.
LANGUAGES = ("en", SPANISH)
TREATMENT_NAMES = {
    "iv": "IV infusions",
    "im": "IM injections",
    "esketamine": "Spravato (esketamine) nasal spray",
}
TREATMENT_NAMES_ES = {
    "iv": "infusiones IV",
    "im": "inyecciones IM",
    "esketamine": "Spravato (esketamina) en espray nasal",
}
CONSULTATION_FORMATS_ES = {"in person": "en persona", "video": "por video", "phone": "por teléfono"}
SCHEDULING_BACKENDS = ("builtin", "calcom", "webhook")
# Retention (``python -m clinic.cli purge``): conversations and patient records are kept this
# many days unless clinic.yml says otherwise; the audit trail (no patient text) at least 6 years,
# the period HIPAA sets for keeping compliance documentation.
DEFAULT_RETENTION_DAYS = 365
DEFAULT_AUDIT_RETENTION_DAYS = 6 * 365
logger = logging.getLogger(__name__)
_HOURS_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class ProfileError(ValueError):
    """clinic.yml is missing, unreadable or has an invalid field."""


@dataclass(frozen=True)
class OpeningHours:
    """One weekday's opening hours; ``None`` times mean closed."""

    opens: time | None
    closes: time | None

    @property
    def is_open(self) -> bool:
        return self.opens is not None


def _parse_hours(value: str) -> OpeningHours:
    text = str(value).strip().lower()
    if text == "closed":
        return OpeningHours(None, None)
    match = _HOURS_RE.match(text)
    if not match:
        raise ValueError('use "HH:MM-HH:MM" (24-hour) or "closed"')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
        raise ValueError("not a valid time of day")
    opens, closes = time(h1, m1), time(min(h2, 23), m2 if h2 < 24 else 59)
    if closes <= opens:
        raise ValueError("closing time must be after opening time")
    return OpeningHours(opens, closes)


class Prices(BaseModel, extra=Extra.forbid):
    consultation: float = Field(..., ge=0)
    iv_infusion: float | None = Field(None, ge=0)
    iv_series_of_six: float | None = Field(None, ge=0)
    im_injection: float | None = Field(None, ge=0)
    spravato_session: float | None = Field(None, ge=0)


class Consultation(BaseModel, extra=Extra.forbid):
    free: bool
    minutes: int = Field(..., gt=0, le=240)
    formats: list[str] = Field(..., min_items=1)

    @validator("formats", each_item=True)
    def _known_format(cls, value: str) -> str:  # noqa: N805 (pydantic validator)
        if value not in ("in person", "video", "phone"):
            raise ValueError('each format must be "in person", "video" or "phone"')
        return value


class BookingSettings(BaseModel, extra=Extra.forbid):
    """How consultations are booked (``booking:`` in clinic.yml)."""

    backend: str
    slot_minutes: int = Field(..., ge=5, le=240)
    chairs: int = Field(..., ge=1, le=50)
    min_notice_hours: int = Field(..., ge=0, le=336)
    horizon_days: int = Field(..., ge=1, le=365)
    blocked_dates: list[date]
    preparation: str = Field(..., min_length=2, max_length=200)
    calcom_event_type_id: int | None = Field(None, gt=0)

    @validator("backend")
    def _known_backend(cls, value: str) -> str:  # noqa: N805
        if value not in SCHEDULING_BACKENDS:
            raise ValueError(f"unknown scheduling backend {value!r}; use {', '.join(SCHEDULING_BACKENDS)}")
        return value

    @validator("calcom_event_type_id", always=True)
    def _calcom_needs_an_event_type(cls, value: int | None, values: dict[str, Any]) -> int | None:  # noqa: N805
        if values.get("backend") == "calcom" and value is None:
            raise ValueError("the calcom backend needs the Cal.com event type's id")
        return value


class SpanishBooking(BaseModel, extra=Extra.forbid):
    """``spanish.booking`` in clinic.yml: the Spanish of ``booking.preparation``."""

    preparation: str | None = Field(None, min_length=2, max_length=200)


class SpanishText(BaseModel, extra=Extra.forbid):
    """The Spanish wording of the profile's English prose (``spanish:`` in clinic.yml).

    Each key is the English field it words in Spanish; every one is optional.
    """

    parking: str | None = Field(None, min_length=2)
    insurance: str | None = Field(None, min_length=2)
    payment_options: str | None = Field(None, min_length=2)
    conditions_treated: list[str] | None = Field(None, min_items=1)
    response_time: str | None = Field(None, min_length=2)
    cancellation_policy: str | None = Field(None, min_length=2)
    booking: SpanishBooking = Field(default_factory=SpanishBooking)  # type: ignore[arg-type]  # all fields optional

    def missing(self) -> list[str]:
        """The prose fields with no Spanish wording, as clinic.yml names them."""
        fields = ("parking", "insurance", "payment_options", "conditions_treated", "response_time",
                  "cancellation_policy")
        missing = [f"spanish.{name}" for name in fields if getattr(self, name) is None]
        if self.booking.preparation is None:
            missing.append("spanish.booking.preparation")
        return missing


class ClinicProfile(BaseModel):
    """The validated contents of clinic.yml."""

    name: str = Field(..., min_length=2, max_length=120)
    phone: str
    sms_number: str
    website: str = Field(..., regex=r"^https?://\S+$")
    address: str = Field(..., min_length=5)
    parking: str = Field(..., min_length=2)
    timezone: str
    hours: dict[str, OpeningHours]
    prices: Prices
    insurance: str = Field(..., min_length=2)
    payment_options: str = Field(..., min_length=2)
    consultation: Consultation
    fasting_hours: int = Field(..., ge=0, le=24)
    treatments: list[str] = Field(..., min_items=1)
    conditions_treated: list[str] = Field(..., min_items=1)
    response_time: str = Field(..., min_length=2)
    cancellation_policy: str = Field(..., min_length=2)
    retention_days: int = Field(DEFAULT_RETENTION_DAYS, ge=30, le=36500)
    # None in clinic.yml is filled in by _audit_kept_at_least_as_long: a profile always has a number.
    audit_retention_days: int = Field(None, ge=365, le=36500)
    booking: BookingSettings
    spanish: SpanishText = Field(default_factory=SpanishText)  # type: ignore[arg-type]  # all fields optional

    class Config:
        extra = Extra.forbid
        arbitrary_types_allowed = True

    @validator("phone", "sms_number")
    def _valid_phone(cls, value: str) -> str:  # noqa: N805
        try:
            number = phonenumbers.parse(str(value), "US")
        except phonenumbers.NumberParseException as exc:
            raise ValueError(f"not a phone number ({exc})") from None
        if not phonenumbers.is_possible_number(number):
            raise ValueError("not a possible phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @validator("timezone")
    def _valid_timezone(cls, value: str) -> str:  # noqa: N805
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use e.g. America/Chicago)") from None
        return value

    @validator("hours", pre=True)
    def _valid_hours(cls, value: Any) -> dict[str, OpeningHours]:  # noqa: N805
        if not isinstance(value, dict):
            raise ValueError("must map each weekday to its hours")
        missing = [day for day in WEEKDAYS if day not in value]
        if missing:
            raise ValueError(f"missing weekday(s): {', '.join(missing)}")
        unknown = [day for day in value if day not in WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown weekday(s): {', '.join(map(str, unknown))}")
        parsed = {}
        for day in WEEKDAYS:
            try:
                parsed[day] = _parse_hours(value[day])
            except ValueError as exc:
                raise ValueError(f"{day}: {exc}") from None
        return parsed

    @validator("audit_retention_days", always=True)
    def _audit_kept_at_least_as_long(cls, value: int | None, values: dict[str, Any]) -> int:  # noqa: N805
        days = values.get("retention_days") or DEFAULT_RETENTION_DAYS
        if value is None:
            return max(DEFAULT_AUDIT_RETENTION_DAYS, days)
        if value < days:
            raise ValueError(f"must be at least retention_days ({days}): the audit trail outlives the records")
        return value

    @validator("treatments", each_item=True)
    def _known_treatment(cls, value: str) -> str:  # noqa: N805
        if value not in TREATMENT_NAMES:
            raise ValueError(f"unknown treatment {value!r}; use {', '.join(TREATMENT_NAMES)}")
        return value

    @validator("spanish")
    def _same_conditions_in_spanish(cls, value: SpanishText, values: dict[str, Any]) -> SpanishText:  # noqa: N805
        # One Spanish name per condition, in the same order: a Spanish booking offers the same
        # visit reasons as an English one.
        english = values.get("conditions_treated")
        if value.conditions_treated is not None and english is not None \
                and len(value.conditions_treated) != len(english):
            raise ValueError(f"conditions_treated must name the same {len(english)} conditions, in the same order")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def answer_values(self, language: str | None = "en") -> dict[str, str]:
        """The ``{placeholders}`` answers may use, as display strings.

        Args:
            language: the conversation's language; Spanish (``"es"``) gets the Spanish wording
                (the English prose where ``spanish:`` leaves a field out), anything else English.
        """
        if language == SPANISH:
            return self._spanish_values()
        consultation_cost = "free" if self.consultation.free else _money(self.prices.consultation)
        return {
            "clinic_name": self.name,
            "clinic_phone": _display_phone(self.phone),
            "clinic_sms": _display_phone(self.sms_number),
            "clinic_website": self.website,
            "clinic_address": self.address,
            "clinic_parking": self.parking,
            "clinic_hours": _hours_text(self.hours),
            "prices_text": _prices_text(self),
            "insurance_text": self.insurance,
            "payment_options": self.payment_options,
            "consultation_cost": consultation_cost,
            "consultation_minutes": str(self.consultation.minutes),
            "consultation_formats": _join(self.consultation.formats, "or", by=True),
            "fasting_hours": str(self.fasting_hours),
            "treatments_text": _join([TREATMENT_NAMES[t] for t in self.treatments], "and"),
            "conditions_text": _join(self.conditions_treated, "and"),
            "response_time": self.response_time,
            "cancellation_policy": self.cancellation_policy,
            "booking_preparation": self.booking.preparation,
        }

    def _spanish_values(self) -> dict[str, str]:
        spanish = self.spanish
        values = self.answer_values("en")
        # Read after "consulta" and after "es": "una consulta gratis", "la consulta es de $75".
        cost = "gratis" if self.consultation.free else f"de {_money(self.prices.consultation)}"
        conditions = spanish.conditions_treated or self.conditions_treated
        return values | {
            "clinic_parking": spanish.parking or self.parking,
            "clinic_hours": _hours_text(self.hours, SPANISH),
            "prices_text": _prices_text(self, SPANISH),
            "insurance_text": spanish.insurance or self.insurance,
            "payment_options": spanish.payment_options or self.payment_options,
            "consultation_cost": cost,
            "consultation_formats": _join_es([CONSULTATION_FORMATS_ES[f] for f in self.consultation.formats], "o"),
            "treatments_text": _join_es([TREATMENT_NAMES_ES[t] for t in self.treatments], "y"),
            "conditions_text": _join_es(list(conditions), "y"),
            "response_time": spanish.response_time or self.response_time,
            "cancellation_policy": spanish.cancellation_policy or self.cancellation_policy,
            "booking_preparation": spanish.booking.preparation or self.booking.preparation,
        }


def _money(amount: float) -> str:
    return f"${amount:,.0f}" if float(amount).is_integer() else f"${amount:,.2f}"


def _display_phone(e164: str) -> str:
    number = phonenumbers.parse(e164, "US")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def _join(items: list[str], word: str, by: bool = False) -> str:
    items = [f"by {i}" if by and i in ("video", "phone") else i for i in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def _join_es(items: list[str], word: str) -> str:
    """"a, b y c"; "y" is "e" before an "i" sound ("ansiedad e insomnio", not before "hielo")."""
    if len(items) <= 1:
        return "".join(items)
    sound = items[-1].lower()
    if word == "y" and sound.startswith(("i", "hi")) and not sound.startswith(("ia", "ie", "io", "iu", "hie")):
        word = "e"
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def _hours_text(hours: dict[str, OpeningHours], language: str = "en") -> str:
    """Groups consecutive weekdays with equal hours: "Monday to Thursday 8 AM to 6 PM, ...".

    In Spanish: "lunes a jueves de 8 a. m. a 6 p. m., ..., sábado y domingo cerrado".
    """
    groups: list[tuple[list[str], OpeningHours]] = []
    for day in WEEKDAYS:
        if groups and groups[-1][1] == hours[day]:
            groups[-1][0].append(day)
        else:
            groups.append(([day], hours[day]))
    parts = []
    for days, h in groups:
        if language == SPANISH:
            first, last = (weekday_name(WEEKDAYS.index(d), SPANISH) for d in (days[0], days[-1]))
            span = first if len(days) == 1 else f"{first} {'y' if len(days) == 2 else 'a'} {last}"
            if h.opens is not None and h.closes is not None:
                parts.append(f"{span} de {clock_text(h.opens, SPANISH)} a {clock_text(h.closes, SPANISH)}")
            else:
                parts.append(f"{span} cerrado")
            continue
        span = days[0].title() if len(days) == 1 else f"{days[0].title()} to {days[-1].title()}"
        if h.opens is not None and h.closes is not None:
            parts.append(f"{span} {clock_text(h.opens)} to {clock_text(h.closes)}")
        else:
            parts.append(f"closed {span}")
    return ", ".join(parts)


def _prices_text(profile: ClinicProfile, language: str = "en") -> str:
    if language == SPANISH:
        return _prices_text_es(profile)
    p = profile.prices
    sentences = []
    if "iv" in profile.treatments and p.iv_infusion is not None:
        series = f", or {_money(p.iv_series_of_six)} for a series of six" if p.iv_series_of_six else ""
        sentences.append(f"An IV infusion is {_money(p.iv_infusion)}{series}.")
    if "im" in profile.treatments and p.im_injection is not None:
        sentences.append(f"An IM injection is {_money(p.im_injection)}.")
    if "esketamine" in profile.treatments and p.spravato_session is not None:
        sentences.append(f"A Spravato session is {_money(p.spravato_session)}.")
    return " ".join(sentences) or "Please call us for current prices."


def _prices_text_es(profile: ClinicProfile) -> str:
    p = profile.prices
    sentences = []
    if "iv" in profile.treatments and p.iv_infusion is not None:
        series = f", o {_money(p.iv_series_of_six)} por una serie de seis" if p.iv_series_of_six else ""
        sentences.append(f"Una infusión IV cuesta {_money(p.iv_infusion)}{series}.")
    if "im" in profile.treatments and p.im_injection is not None:
        sentences.append(f"Una inyección IM cuesta {_money(p.im_injection)}.")
    if "esketamine" in profile.treatments and p.spravato_session is not None:
        sentences.append(f"Una sesión de Spravato cuesta {_money(p.spravato_session)}.")
    return " ".join(sentences) or "Llámanos para saber los precios actuales."


def _field_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc if part != "__root__")


def load_profile(path: str | os.PathLike | None = None) -> ClinicProfile:
    """Reads and validates clinic.yml.

    Args:
        path: the file to read; defaults to ``$CLINIC_PROFILE`` or the project's clinic.yml.

    Returns:
        The validated profile.

    Raises:
        ProfileError: naming the first missing or invalid field.
    """
    path = Path(path or clinic_profile_path() or DEFAULT_PATH)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the clinic profile ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: must be a mapping of fields")
    try:
        profile = ClinicProfile.parse_obj(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_path(first["loc"])
        kind = "missing" if first["type"] == "value_error.missing" else "invalid"
        detail = "" if kind == "missing" else f": {first['msg']}"
        raise ProfileError(f"{path}: {kind} field '{field}'{detail}") from None
    untranslated = profile.spanish.missing()
    if untranslated:
        logger.warning("%s has no Spanish wording for %s: Spanish answers use the English text there",
                       path, ", ".join(untranslated))
    return profile


class ProfileCache:
    """Keeps the parsed profile and re-reads the file when it changes on disk."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self._path = Path(path or clinic_profile_path() or DEFAULT_PATH)
        self._stamp: tuple[int, int] | None = None
        self._profile: ClinicProfile | None = None
        self._values: dict[str, dict[str, str]] = {}

    def get(self) -> ClinicProfile:
        """Returns the current profile; a broken edit keeps serving the last good one."""
        stat = self._path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                profile = load_profile(self._path)
            except ProfileError:
                if self._profile is None:
                    raise
                logger.error(
                    "clinic.yml changed but is invalid; still using the previous profile",
                    exc_info=True,
                )
                self._stamp = stamp
                return self._profile
            values = {language: profile.answer_values(language) for language in LANGUAGES}
            self._profile, self._values, self._stamp = profile, values, stamp
            return profile
        assert self._profile is not None  # a stamp is only kept with the profile read at that stamp
        return self._profile

    def values(self, language: str | None = "en") -> dict[str, str]:
        """The current profile's answer values in ``language`` (English unless Spanish)."""
        self.get()
        return self._values[language if language in LANGUAGES else "en"]
