"""clinic.contact: names and phone numbers as patients type them."""

from __future__ import annotations

import pytest

from clinic.contact import clean_name, display_phone, normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("Jane Doe", "Jane Doe"),
        ("  jane   doe ", "jane doe"),
        ("my name is Ana María López", "Ana María López"),
        ("It's José O'Neil-Díaz.", "José O'Neil-Díaz"),
        ("I'm Sam", "Sam"),
        ("this is Dr. Jane Doe", "Dr. Jane Doe"),
        ("John F. Kennedy", "John F. Kennedy"),
        ("李小龙", "李小龙"),
        ("Zoë", "Zoë"),
    ],
)
def test_a_plausible_name_is_kept(typed: str, name: str) -> None:
    assert clean_name(typed) == name


@pytest.mark.parametrize(
    "typed",
    ["", "   ", "x", "yes", "No", "thanks", "thank you", "no thanks", "ok thanks", "not sure", "stop",
     "R2D2", "12345", "jane@example.com", "<script>", "a" * 101, "John..Smith", "Ana-"],
)
def test_an_implausible_name_is_refused(typed: str) -> None:
    assert clean_name(typed) is None


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("312-555-0123", "+13125550123"),
        ("(312) 555 0123", "+13125550123"),
        ("3125550123", "+13125550123"),
        ("1-312-555-0123", "+13125550123"),
        ("my number is 312.555.0123 thanks", "+13125550123"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_a_phone_number_is_normalized(typed: str, e164: str) -> None:
    assert normalize_phone(typed) == e164


@pytest.mark.parametrize("typed", ["", "555-0123", "12", "call me", "000-000-0000", "999-999-9999999999"])
def test_an_unusable_phone_number_is_refused(typed: str) -> None:
    assert normalize_phone(typed) is None


@pytest.mark.parametrize(
    ("e164", "shown"), [("+13125550123", "(312) 555-0123"), ("+442079460958", "+44 20 7946 0958")]
)
def test_display_phone(e164: str, shown: str) -> None:
    assert display_phone(e164) == shown


@pytest.mark.parametrize(
    ("typed", "email"),
    [
        ("ana@example.com", "ana@example.com"),
        ("Ana.Lopez@Example.COM", "Ana.Lopez@example.com"),  # the domain is case-insensitive
        ("my email is ana@example.com.", "ana@example.com"),
        ("<ana+clinic@example.org>", "ana+clinic@example.org"),
        ("ana dot lopez at example dot com", "ana.lopez@example.com"),
        ("email: josé@correo.example.mx", "josé@correo.example.mx"),
    ],
)
def test_an_email_address_is_normalized(typed: str, email: str) -> None:
    assert normalize_email(typed) == email


@pytest.mark.parametrize("typed", ["", "no", "ana@example", "ana@@example.com", "ana at example", "@example.com",
                                   "ana@example.test"])  # .test is a reserved name
def test_an_unusable_email_address_is_refused(typed: str) -> None:
    assert normalize_email(typed) is None
