"""clinic.profile: loading and validating clinic.yml, and the values answers use."""

from __future__ import annotations

import copy
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from clinic.profile import DEFAULT_PATH, ProfileCache, ProfileError, load_profile

_RAW = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
# Prices of treatments are optional: a clinic that does not publish one leaves it out.
OPTIONAL_FIELDS = {"prices.iv_infusion", "prices.iv_series_of_six", "prices.im_injection", "prices.spravato_session"}
# Only the calcom backend needs a Cal.com event type.
OPTIONAL_BOOKING_FIELDS = {"booking.calcom_event_type_id"}


def _field_paths(data: dict[str, Any], prefix: str = "") -> list[str]:
    """Every field of clinic.yml, nested ones as "prices.consultation"."""
    paths = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        paths.append(path)
        if isinstance(value, dict):
            paths += _field_paths(value, prefix=f"{path}.")
    return paths


ALL_FIELDS = _field_paths(_RAW)
# Retention periods have defaults (365 days; the audit trail max(6 years, retention_days)).
OPTIONAL_RETENTION_FIELDS = {"retention_days", "audit_retention_days"}
# Spanish wording: a field left out is sent in English.
OPTIONAL_SPANISH_FIELDS = {f for f in ALL_FIELDS if f.startswith("spanish")}
OPTIONAL = OPTIONAL_FIELDS | OPTIONAL_BOOKING_FIELDS | OPTIONAL_RETENTION_FIELDS | OPTIONAL_SPANISH_FIELDS
REQUIRED_FIELDS = [f for f in ALL_FIELDS if f not in OPTIONAL]


def _without(raw: dict[str, Any], path: str) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node[part]
    del node[last]
    return raw


def _with(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value
    return raw


def _write(tmp_path: Path, raw: Any) -> Path:
    path = tmp_path / "clinic.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def test_the_project_profile_is_valid() -> None:
    profile = load_profile(DEFAULT_PATH)

    assert profile.name == _RAW["name"]
    assert profile.phone.startswith("+1") and profile.phone[1:].isdigit()
    assert profile.treatments == _RAW["treatments"]


def test_the_clinic_profile_variable_picks_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINIC_PROFILE", str(_write(tmp_path, _with(_RAW, "name", "Lakeside Clinic"))))

    assert load_profile().name == "Lakeside Clinic"


def test_the_field_list_covers_the_whole_profile() -> None:
    assert {"name", "phone", "hours.monday", "prices.consultation", "consultation.formats"} <= set(ALL_FIELDS)
    assert len(REQUIRED_FIELDS) >= 25


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_a_missing_field_is_named(tmp_path: Path, field: str) -> None:
    path = _write(tmp_path, _without(_RAW, field))

    with pytest.raises(ProfileError) as error:
        load_profile(path)

    message = str(error.value)
    assert str(path) in message
    if field.startswith("hours."):  # a weekday is part of the hours field
        assert "'hours'" in message and field.split(".")[1] in message
    else:
        assert f"missing field '{field}'" in message


@pytest.mark.parametrize("field", sorted(OPTIONAL_FIELDS))
def test_an_optional_price_may_be_left_out(tmp_path: Path, field: str) -> None:
    profile = load_profile(_write(tmp_path, _without(_RAW, field)))

    assert getattr(profile.prices, field.split(".")[1]) is None


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("phone", "12", "phone"),
        ("phone", "call the front desk", "phone"),
        ("sms_number", "+1 555", "sms_number"),
        ("timezone", "Mars/Olympus_Mons", "timezone"),
        ("timezone", "../../etc/passwd", "timezone"),
        ("timezone", "", "timezone"),
        ("hours.monday", "8-18", "hours"),
        ("hours.monday", "8:00 AM-6:00 PM", "hours"),
        ("hours.tuesday", "18:00-08:00", "hours"),
        ("hours.wednesday", "09:00-09:00", "hours"),
        ("hours.thursday", "25:00-26:00", "hours"),
        ("hours.friday", "08:00-12:75", "hours"),
        ("hours.funday", "08:00-12:00", "hours"),
        ("hours", "weekdays 8 to 6", "hours"),
        ("treatments", ["iv", "psilocybin"], "treatments"),
        ("treatments", [], "treatments"),
        ("consultation.formats", ["zoom"], "consultation.formats"),
        ("consultation.minutes", 0, "consultation.minutes"),
        ("website", "sample-clinic.example", "website"),
        ("retention_days", 7, "retention_days"),
        ("prices.iv_infusion", -5, "prices.iv_infusion"),
        ("fasting_hours", "four", "fasting_hours"),
        ("name", None, "name"),
        ("favourite_colour", "teal", "favourite_colour"),
        ("booking.backend", "google", "booking.backend"),
        ("booking.slot_minutes", 0, "booking.slot_minutes"),
        ("booking.chairs", 0, "booking.chairs"),
        ("booking.horizon_days", 0, "booking.horizon_days"),
        ("booking.blocked_dates", ["Christmas"], "booking.blocked_dates"),
        ("booking.blocked_dates", "2026-12-25", "booking.blocked_dates"),
        ("booking.calcom_event_type_id", -1, "booking.calcom_event_type_id"),
        ("booking.colour", "teal", "booking.colour"),
        ("spanish.colour", "verde", "spanish.colour"),
        ("spanish.parking", "", "spanish.parking"),
        ("spanish.conditions_treated", ["depresión"], "spanish"),
        ("spanish.booking.preparation", "x" * 201, "spanish.booking.preparation"),
    ],
)
def test_an_invalid_value_is_named(tmp_path: Path, field: str, value: Any, named: str) -> None:
    path = _write(tmp_path, _with(_RAW, field, value))

    with pytest.raises(ProfileError) as error:
        load_profile(path)

    assert f"invalid field '{named}" in str(error.value)


def test_the_calcom_backend_needs_an_event_type(tmp_path: Path) -> None:
    raw = _with(_with(_RAW, "booking.backend", "calcom"), "booking.calcom_event_type_id", None)

    with pytest.raises(ProfileError, match=r"'booking.calcom_event_type_id'.*needs the Cal.com event type"):
        load_profile(_write(tmp_path, raw))
    profile = load_profile(_write(tmp_path, _with(raw, "booking.calcom_event_type_id", 123)))
    assert profile.booking.calcom_event_type_id == 123


def test_the_booking_settings_are_read(tmp_path: Path) -> None:
    booking = load_profile(_write(tmp_path, _without(_RAW, "booking.calcom_event_type_id"))).booking

    assert booking.backend == "builtin" and booking.calcom_event_type_id is None
    assert booking.slot_minutes > 0 and booking.chairs >= 1
    assert all(isinstance(day, date) for day in booking.blocked_dates)


def test_closing_before_opening_says_so(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"'hours'.*monday.*closing time must be after opening time"):
        load_profile(_write(tmp_path, _with(_RAW, "hours.monday", "17:00-09:00")))


def test_an_unknown_treatment_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"'treatments\.1'.*unknown treatment 'psilocybin'"):
        load_profile(_write(tmp_path, _with(_RAW, "treatments", ["iv", "psilocybin"])))


@pytest.mark.parametrize(
    ("content", "problem"),
    [("- just\n- a list\n", "must be a mapping"), ("name: [unclosed\n", "not valid YAML"), ("", "must be a mapping")],
)
def test_an_unusable_file_is_reported(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "clinic.yml"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(ProfileError, match=problem):
        load_profile(path)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read the clinic profile"):
        load_profile(tmp_path / "nowhere.yml")


# ------------------------------------------------------------------ values for answers


def test_answer_values_are_display_strings(make_profile) -> None:
    values = make_profile(phone="312-555-0123", sms_number="(312) 555 0199").answer_values()

    assert values["clinic_phone"] == "(312) 555-0123"
    assert values["clinic_sms"] == "(312) 555-0199"
    assert all(isinstance(v, str) and v for v in values.values())


def test_opening_hours_are_grouped_by_equal_days(make_profile) -> None:
    hours = {
        "monday": "08:00-18:00",
        "tuesday": "08:00-18:00",
        "wednesday": "08:00-18:00",
        "thursday": "10:30-19:00",
        "friday": "08:00-16:00",
        "saturday": "closed",
        "sunday": "closed",
    }

    text = make_profile(hours=hours).answer_values()["clinic_hours"]

    assert text == (
        "Monday to Wednesday 8 AM to 6 PM, Thursday 10:30 AM to 7 PM, Friday 8 AM to 4 PM, "
        "closed Saturday to Sunday"
    )


def test_prices_follow_the_treatments_offered(make_profile) -> None:
    prices = {"consultation": 75, "iv_infusion": 450.5, "iv_series_of_six": 2400, "im_injection": 300}

    iv_only = make_profile(treatments=["iv"], prices=prices).answer_values()
    im_only = make_profile(treatments=["im"], prices=prices).answer_values()
    no_price = make_profile(treatments=["esketamine"], prices=prices).answer_values()

    assert iv_only["prices_text"] == "An IV infusion is $450.50, or $2,400 for a series of six."
    assert im_only["prices_text"] == "An IM injection is $300."
    assert no_price["prices_text"] == "Please call us for current prices."


@pytest.mark.parametrize(
    ("consultation", "cost", "formats"),
    [
        ({"free": True, "minutes": 30, "formats": ["in person", "video"]}, "free", "in person or by video"),
        ({"free": False, "minutes": 45, "formats": ["phone"]}, "$75", "by phone"),
        ({"free": False, "minutes": 45, "formats": ["in person", "video", "phone"]}, "$75",
         "in person, by video or by phone"),
    ],
)
def test_consultation_values(make_profile, consultation: dict, cost: str, formats: str) -> None:
    values = make_profile(consultation=consultation, prices={"consultation": 75}).answer_values()

    assert values["consultation_cost"] == cost
    assert values["consultation_formats"] == formats
    assert values["consultation_minutes"] == str(consultation["minutes"])


# ------------------------------------------------------------------ the cache


def _rewrite(path: Path, raw: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    stat = path.stat()  # make the change visible even on file systems with coarse timestamps
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_the_cache_rereads_a_changed_file(tmp_path: Path) -> None:
    path = _write(tmp_path, _RAW)
    cache = ProfileCache(path)
    assert cache.values()["fasting_hours"] == str(_RAW["fasting_hours"])

    _rewrite(path, _with(_RAW, "fasting_hours", 6))

    assert cache.values()["fasting_hours"] == "6"


def test_a_broken_edit_keeps_the_last_good_profile(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path, _RAW)
    cache = ProfileCache(path)
    good = cache.get()

    _rewrite(path, _with(_RAW, "timezone", "Nowhere/Special"))

    assert cache.get() is good
    assert "still using the previous profile" in caplog.text


def test_the_cache_fails_when_the_first_read_is_invalid(tmp_path: Path) -> None:
    cache = ProfileCache(_write(tmp_path, _without(_RAW, "phone")))

    with pytest.raises(ProfileError, match="'phone'"):
        cache.get()


# ------------------------------------------------------------------ retention


def test_retention_defaults_to_a_year_and_the_audit_trail_to_six_years(tmp_path: Path) -> None:
    raw = _without(_without(_RAW, "retention_days"), "audit_retention_days")

    profile = load_profile(_write(tmp_path, raw))

    assert (profile.retention_days, profile.audit_retention_days) == (365, 2190)


def test_the_audit_trail_is_kept_at_least_as_long_as_the_records(tmp_path: Path) -> None:
    raw = _without(_with(_RAW, "retention_days", 3000), "audit_retention_days")
    assert load_profile(_write(tmp_path, raw)).audit_retention_days == 3000

    with pytest.raises(ProfileError, match=r"invalid field 'audit_retention_days'.*at least retention_days"):
        load_profile(_write(tmp_path, _with(_with(_RAW, "retention_days", 3000), "audit_retention_days", 2500)))


@pytest.mark.parametrize(("field", "value"), [("retention_days", 29), ("retention_days", "a year"),
                                              ("retention_days", 100000), ("audit_retention_days", 30)])
def test_a_retention_period_out_of_range_is_named(tmp_path: Path, field: str, value: Any) -> None:
    with pytest.raises(ProfileError, match=f"invalid field '{field}'"):
        load_profile(_write(tmp_path, _with(_RAW, field, value)))


# ------------------------------------------------------------------ Spanish


def test_spanish_values_are_worded_in_spanish(make_profile) -> None:
    hours = {"monday": "08:00-18:00", "tuesday": "08:00-18:00", "wednesday": "08:00-18:00",
             "thursday": "10:30-19:00", "friday": "08:00-16:00", "saturday": "closed", "sunday": "closed"}
    prices = {"consultation": 75, "iv_infusion": 450.5, "iv_series_of_six": 2400, "im_injection": 300}
    consultation = {"free": False, "minutes": 45, "formats": ["in person", "video", "phone"]}
    profile = make_profile(hours=hours, prices=prices, consultation=consultation, treatments=["iv", "im"])

    values = profile.answer_values("es")

    assert values["clinic_hours"] == ("lunes a miércoles de 8 a. m. a 6 p. m., jueves de 10:30 a. m. a 7 p. m., "
                                      "viernes de 8 a. m. a 4 p. m., sábado y domingo cerrado")
    assert values["prices_text"] == "Una infusión IV cuesta $450.50, o $2,400 por una serie de seis. " \
                                    "Una inyección IM cuesta $300."
    assert values["consultation_cost"] == "de $75"  # "una consulta de $75", "la consulta es de $75"
    assert values["consultation_formats"] == "en persona, por video o por teléfono"
    assert values["treatments_text"] == "infusiones IV e inyecciones IM"


def test_spanish_has_its_own_free_consultation_and_no_price_wording(make_profile) -> None:
    values = make_profile(treatments=["esketamine"], prices={"consultation": 0}).answer_values("es")

    assert values["consultation_cost"] == "gratis"
    assert values["prices_text"] == "Llámanos para saber los precios actuales."


def test_spanish_prose_comes_from_the_spanish_block(make_profile) -> None:
    values = make_profile().answer_values("es")

    for placeholder, field in [("clinic_parking", "parking"), ("insurance_text", "insurance"),
                               ("payment_options", "payment_options"), ("response_time", "response_time"),
                               ("cancellation_policy", "cancellation_policy")]:
        assert values[placeholder] == " ".join(_RAW["spanish"][field].split())
    assert values["booking_preparation"] == _RAW["spanish"]["booking"]["preparation"]
    assert values["conditions_text"].startswith(_RAW["spanish"]["conditions_treated"][0])


@pytest.mark.parametrize(("conditions", "text"), [
    (["ansiedad", "insomnio"], "ansiedad e insomnio"),
    (["dolor", "hipocondría"], "dolor e hipocondría"),
    (["dolor", "hielo"], "dolor y hielo"),
    (["depresión"], "depresión"),
])
def test_spanish_lists_join_with_y_or_e(make_profile, conditions: list[str], text: str) -> None:
    spanish = {**_RAW["spanish"], "conditions_treated": conditions}

    values = make_profile(conditions_treated=["x"] * len(conditions), spanish=spanish).answer_values("es")

    assert values["conditions_text"] == text


def test_a_clinic_without_spanish_wording_answers_with_its_english_prose(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="clinic.profile"):
        profile = load_profile(_write(tmp_path, _without(_RAW, "spanish")))
    values = profile.answer_values("es")

    assert values["insurance_text"] == profile.insurance and values["clinic_parking"] == profile.parking
    assert values["clinic_hours"].startswith("lunes")  # computed values are still Spanish
    assert "spanish.insurance" in caplog.text and "spanish.booking.preparation" in caplog.text


def test_a_complete_spanish_block_loads_without_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="clinic.profile"):
        load_profile(_write(tmp_path, _RAW))

    assert "Spanish" not in caplog.text


@pytest.mark.parametrize("language", ["en", None, "fr"])
def test_any_other_language_gets_english(tmp_path: Path, language: str | None) -> None:
    cache = ProfileCache(_write(tmp_path, _RAW))

    assert cache.values(language) == cache.values("en") != cache.values("es")
    assert cache.values(language)["clinic_hours"].startswith("Monday")
