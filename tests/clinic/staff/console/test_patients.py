"""The conversation page's patient panel and notes on the patient, on the page and in the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from starlette.testclient import TestClient

from clinic.channels.sms import record_opt_out
from clinic.staff import audit, inbox
from clinic.staff.accounts import StaffMember
from tests.clinic.staff.console.conftest import Browser

SMS_PATIENT = "+13125550123"  # make_booking's default phone
SOON = datetime.now(timezone.utc) + timedelta(days=3)
LAST_YEAR = datetime.now(timezone.utc) - timedelta(days=300)


def _panel(html: str) -> str:
    match = re.search(r'<section class="panel patient-panel".*?</section>', html, re.DOTALL)
    assert match, "no patient panel on the page"
    return match.group(0)


def _patient_notes(html: str) -> list[str]:
    match = re.search(r'<ul id="patient-note-list" class="items">(.*?)</ul>', html, re.DOTALL)
    assert match
    return [text.strip() for text in re.findall(r'<p class="item-text">(.*?)</p>', match.group(1), re.DOTALL)]


def test_an_sms_patient_s_bookings_are_listed_by_phone_with_links_to_the_bookings_page(
    staff_browser: Browser, open_escalation: Callable[..., int], make_booking: Callable[..., int]
) -> None:
    upcoming = make_booking(SOON, conversation_id="web-visit-7")  # booked on the website, same phone
    past = make_booking(LAST_YEAR, conversation_id="web-visit-2")
    make_booking(SOON + timedelta(hours=2), phone="+13125550999", name="Someone Else", conversation_id="other")
    escalation_id = open_escalation(SMS_PATIENT, channel="twilio")

    panel = _panel(staff_browser.get(f"/escalations/{escalation_id}").text)

    assert f'href="/bookings#booking-{upcoming}"' in panel
    assert f'data-booking-id="{past}"' in panel.split('id="patient-past"')[1]
    assert "Ana María López" in panel and "Someone Else" not in panel
    assert "Matched by phone" in panel


def test_a_website_patient_is_matched_by_the_booking_made_in_this_conversation(
    staff_browser: Browser, open_escalation: Callable[..., int], make_booking: Callable[..., int]
) -> None:
    booked_here = make_booking(SOON, conversation_id="web-conv")
    by_same_phone = make_booking(SOON + timedelta(days=7), conversation_id="older-web-conv")
    escalation_id = open_escalation("web-conv", channel="socketio")

    panel = _panel(staff_browser.get(f"/escalations/{escalation_id}").text)

    assert f"#booking-{booked_here}" in panel and f"#booking-{by_same_phone}" in panel
    assert SMS_PATIENT in panel


def test_without_a_booking_or_phone_the_panel_says_so(
    staff_browser: Browser, open_escalation: Callable[..., int], make_booking: Callable[..., int]
) -> None:
    make_booking(SOON, conversation_id="someone-else")
    escalation_id = open_escalation("anonymous-web", channel="socketio")

    panel = _panel(staff_browser.get(f"/escalations/{escalation_id}").text)

    assert "No upcoming booking." in panel and "Matched by this conversation only" in panel


def test_earlier_escalations_of_the_same_phone_show_their_outcome(
    staff_browser: Browser, staff_user: StaffMember, db: str, open_escalation: Callable[..., int]
) -> None:
    earlier = open_escalation(SMS_PATIENT, channel="twilio")
    inbox.reply(earlier, staff_user, "We'll call you at 3.", database_url=db)
    inbox.resolve(earlier, staff_user, database_url=db)
    now = open_escalation(SMS_PATIENT, channel="twilio", message_id="m2")
    unrelated = open_escalation("+13125550999", channel="twilio")

    panel = _panel(staff_browser.get(f"/escalations/{now}").text)

    assert f'href="/escalations/{earlier}"' in panel
    assert "Resolved by Sam Staff, 1 reply" in panel
    assert f"/escalations/{unrelated}" not in panel and f"/escalations/{now}" not in panel


def test_the_page_view_with_the_patient_panel_is_audited(
    staff_browser: Browser, db: str, open_escalation: Callable[..., int], make_booking: Callable[..., int]
) -> None:
    make_booking(SOON)
    escalation_id = open_escalation(SMS_PATIENT, channel="twilio")

    staff_browser.get(f"/escalations/{escalation_id}")

    views = audit.list_events(db, escalation_id=escalation_id, action="view")
    assert [event.username for event in views] == ["sam"]


def test_the_sms_opt_out_and_language_show_beside_the_panel(
    staff_browser: Browser, db: str, open_escalation: Callable[..., int]
) -> None:
    record_opt_out(SMS_PATIENT, database_url=db)
    escalation_id = open_escalation(SMS_PATIENT, channel="twilio", language="es")

    page = staff_browser.get(f"/escalations/{escalation_id}").text

    assert "Opted out (STOP)" in page and '<dd id="fact-language">Spanish</dd>' in page


# ------------------------------------------------------------------ notes on the patient


def test_a_note_on_the_patient_is_seen_at_their_next_escalation(
    staff_browser: Browser, staff_user: StaffMember, db: str, open_escalation: Callable[..., int]
) -> None:
    first = open_escalation(SMS_PATIENT, channel="twilio")
    response = staff_browser.post(f"/escalations/{first}/patient-notes", {"text": "Prefers a call after 5 PM"})
    assert response.status_code == 303 and response.headers["location"].endswith("#patient-notes")
    inbox.resolve(first, staff_user, database_url=db)

    second = open_escalation(f"whatsapp:{SMS_PATIENT}", channel="twilio", message_id="m9")
    other_patient = open_escalation("+13125550999", channel="twilio")

    assert _patient_notes(staff_browser.get(f"/escalations/{second}").text) == ["Prefers a call after 5 PM"]
    assert _patient_notes(staff_browser.get(f"/escalations/{other_patient}").text) == []
    added = audit.list_events(db, escalation_id=first, action="note")
    assert len(added) == 1 and "Prefers" not in (added[0].detail or "")


def test_a_website_patient_s_notes_stay_with_the_conversation(
    staff_browser: Browser, open_escalation: Callable[..., int]
) -> None:
    here = open_escalation("web-a", channel="socketio")
    elsewhere = open_escalation("web-b", channel="socketio")
    staff_browser.post(f"/escalations/{here}/patient-notes", {"text": "Asked about <b>parking</b>"})

    page = staff_browser.get(f"/escalations/{here}").text

    assert _patient_notes(page) == ["Asked about &lt;b&gt;parking&lt;/b&gt;"]
    assert _patient_notes(staff_browser.get(f"/escalations/{elsewhere}").text) == []


def test_an_empty_patient_note_is_refused_on_the_page(
    staff_browser: Browser, open_escalation: Callable[..., int]
) -> None:
    escalation_id = open_escalation("web-a", channel="socketio")

    response = staff_browser.post(f"/escalations/{escalation_id}/patient-notes", {"text": "   "})

    assert response.status_code == 400
    assert 'id="patient-note-error"' in response.text and "Note is empty" in response.text


def test_a_patient_note_needs_the_csrf_token(staff_browser: Browser, open_escalation: Callable[..., int]) -> None:
    escalation_id = open_escalation("web-a", channel="socketio")

    response = staff_browser.client.post(f"/escalations/{escalation_id}/patient-notes", data={"text": "x"})

    assert response.status_code == 403


# ------------------------------------------------------------------ API


def test_the_api_returns_the_patient_context_and_audits_it(
    api: TestClient, db: str, open_escalation: Callable[..., int], make_booking: Callable[..., int]
) -> None:
    booking_id = make_booking(SOON, conversation_id="web-1")
    earlier = open_escalation(SMS_PATIENT, channel="twilio")
    record_opt_out(SMS_PATIENT, database_url=db)
    escalation_id = open_escalation("web-1", channel="socketio", language="es")

    body = api.get(f"/api/escalations/{escalation_id}/patient").json()

    assert [b["id"] for b in body["upcoming_bookings"]] == [booking_id]
    assert body["phones"] == [SMS_PATIENT] and body["language"] == "es" and body["sms_opted_out"] is None
    assert [(x["id"], x["outcome"]) for x in body["other_escalations"]] == [(earlier, "Open")]
    events = audit.list_events(db, escalation_id=escalation_id, action="view")
    assert len(events) == 1 and f"bookings {booking_id}" in (events[0].detail or "")
    assert "via api" in (events[0].detail or "")


def test_the_api_adds_and_lists_notes_on_the_patient(
    api: TestClient, db: str, staff_user: StaffMember, open_escalation: Callable[..., int]
) -> None:
    first = open_escalation(SMS_PATIENT, channel="twilio")
    created = api.post(f"/api/escalations/{first}/patient-notes", json={"text": "Spanish speaker, son translates"})
    assert created.status_code == 201
    inbox.resolve(first, staff_user, database_url=db)
    later = open_escalation(SMS_PATIENT, channel="twilio", message_id="m2")

    listed = api.get(f"/api/escalations/{later}/patient-notes").json()

    assert listed["patient"] == f"phone:{SMS_PATIENT}" and listed["by"] == "phone"
    assert [n["text"] for n in listed["notes"]] == ["Spanish speaker, son translates"]
    assert listed["notes"][0]["author"]["username"] == "sam"
    assert [e.action for e in audit.list_events(db, escalation_id=first, action="note")] == ["note"]
    assert [e.action for e in audit.list_events(db, escalation_id=later)] == ["view"]


def test_the_api_refuses_a_note_without_text_and_an_unknown_escalation(
    api: TestClient, open_escalation: Callable[..., int]
) -> None:
    escalation_id = open_escalation("web-a", channel="socketio")

    assert api.post(f"/api/escalations/{escalation_id}/patient-notes", json={}).status_code == 400
    assert api.post(f"/api/escalations/{escalation_id}/patient-notes", json={"text": ""}).status_code == 400
    assert api.get("/api/escalations/999/patient").status_code == 404
    assert api.get("/api/escalations/999/patient-notes").status_code == 404


def test_the_api_needs_a_token(client: TestClient, open_escalation: Callable[..., int]) -> None:
    escalation_id = open_escalation("web-a", channel="socketio")

    assert client.get(f"/api/escalations/{escalation_id}/patient").status_code == 401
