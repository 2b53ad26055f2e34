"""Saved replies in the console: administrators keep them, staff insert them on a conversation page
(filled in for the patient), and the JSON API lists and changes them."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from clinic.clock import utcnow
from clinic.staff import audit, saved_replies
from clinic.staff.accounts import StaffMember, create_api_token
from tests.clinic.staff.console.conftest import Browser

_OPTION = re.compile(r'<option value="(\d+)" data-text="([^"]*)">([^<]*)</option>')


def offered(page: str) -> dict[str, str]:
    """The saved replies a conversation page offers: name -> the text it inserts."""
    return {html.unescape(name): html.unescape(text) for _id, text, name in _OPTION.findall(page)}


@pytest.fixture
def admin_api(app: object, db: str, admin_user: StaffMember) -> TestClient:
    token = create_api_token(admin_user.username, "tests", database_url=db).token
    with TestClient(app, base_url="https://testserver", headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


# ------------------------------------------------------------------ the conversation page


def test_the_reply_box_offers_saved_replies_filled_in_for_the_patient(
    staff_browser: Browser, open_escalation: Callable[..., int], make_booking: Callable[..., int],
) -> None:
    escalation_id = open_escalation("conv-1", channel="socketio")
    make_booking(utcnow() + timedelta(days=2), name="Ana María López", conversation_id="conv-1")

    page = staff_browser.get(f"/escalations/{escalation_id}").text
    replies = offered(page)

    assert replies["Call-back offer"].startswith("Hi Ana, this is the team at Sample Ketamine Clinic.")
    assert "(555) 010-4200" in replies["Call-back offer"]
    assert 'id="saved-replies" hidden' in page  # shown by console.js (no script in the page)
    assert "<script>" not in page


def test_an_unknown_patient_is_greeted_as_there(staff_browser: Browser, open_escalation: Callable[..., int]) -> None:
    escalation_id = open_escalation("+13125550123", channel="twilio")

    replies = offered(staff_browser.get(f"/escalations/{escalation_id}").text)

    assert replies["Call-back offer"].startswith("Hi there, this is the team")


def test_retired_and_other_channel_replies_are_not_offered(
    staff_browser: Browser, admin_user: StaffMember, open_escalation: Callable[..., int], db: str,
) -> None:
    saved_replies.create_reply(admin_user, "SMS only", "Text us any time.", "sms", database_url=db)
    callback = next(r for r in saved_replies.list_replies(database_url=db) if r.name == "Call-back offer")
    saved_replies.set_retired(callback.id, admin_user, True, database_url=db)
    escalation_id = open_escalation("conv-1", channel="socketio")

    replies = offered(staff_browser.get(f"/escalations/{escalation_id}").text)

    assert "SMS only" not in replies and "Call-back offer" not in replies and "After-hours note" in replies


def test_a_reply_with_html_in_a_saved_reply_is_escaped(
    staff_browser: Browser, admin_user: StaffMember, open_escalation: Callable[..., int], db: str,
) -> None:
    saved_replies.create_reply(admin_user, "<i>Odd</i>", 'Say "hi" & <b>bye</b>', database_url=db)
    escalation_id = open_escalation("conv-1")

    page = staff_browser.get(f"/escalations/{escalation_id}").text

    assert 'data-text="Say &#34;hi&#34; &amp; &lt;b&gt;bye&lt;/b&gt;"' in page and "<i>Odd</i>" not in page


# ------------------------------------------------------------------ the page


def test_staff_see_the_saved_replies_without_the_forms(staff_browser: Browser) -> None:
    page = staff_browser.get("/saved-replies")

    assert page.status_code == 200 and "Call-back offer" in page.text
    assert 'action="/saved-replies"' not in page.text and "Retire" not in page.text


def test_staff_cannot_post_changes(staff_browser: Browser, db: str) -> None:
    first = saved_replies.list_replies(database_url=db)[0]

    created = staff_browser.post("/saved-replies", {"name": "Mine", "text": "Hello"})
    retired = staff_browser.post(f"/saved-replies/{first.id}/retire")

    assert created.status_code == retired.status_code == 403
    assert saved_replies.get_reply(first.id, database_url=db) == first


def test_an_admin_adds_edits_and_retires_a_saved_reply(admin_browser: Browser, db: str) -> None:
    added = admin_browser.post("/saved-replies", {"name": "Parking", "text": "Park behind {clinic_name}.",
                                                  "channel": "web"})
    assert added.status_code == 303 and added.headers["location"] == "/saved-replies?notice=created"
    [parking] = [r for r in saved_replies.list_replies(database_url=db) if r.name == "Parking"]

    edited = admin_browser.post(f"/saved-replies/{parking.id}", {"name": "Parking", "text": "Free parking.",
                                                                 "channel": ""})
    retired = admin_browser.post(f"/saved-replies/{parking.id}/retire")
    page = admin_browser.get("/saved-replies?notice=retired").text

    assert edited.status_code == retired.status_code == 303
    now = saved_replies.get_reply(parking.id, database_url=db)
    assert (now.body, now.channel, now.retired, now.updated_by) == ("Free parking.", None, True, "ada")
    assert "Retired" in page and "Put back in use" in page
    assert [e.action for e in reversed(audit.list_events(db)) if e.action.startswith("saved_reply")] == [
        "saved_reply_create", "saved_reply_edit", "saved_reply_retire"]


def test_a_bad_saved_reply_is_explained_and_the_text_kept(admin_browser: Browser) -> None:
    response = admin_browser.post("/saved-replies", {"name": "Greeting", "text": "Hi {first_name}!"})

    assert response.status_code == 400
    assert "Unknown placeholder {first_name}" in response.text and "Hi {first_name}!</textarea>" in response.text


def test_a_name_in_use_is_a_conflict(admin_browser: Browser) -> None:
    response = admin_browser.post("/saved-replies", {"name": "After-hours note", "text": "Hello"})

    assert response.status_code == 409 and "already in use" in response.text


# ------------------------------------------------------------------ JSON API


def test_the_api_lists_saved_replies_for_staff(api: TestClient) -> None:
    response = api.get("/api/saved-replies")

    assert response.status_code == 200
    names = [item["name"] for item in response.json()["saved_replies"]]
    assert "Call-back offer" in names
    assert api.get("/api/saved-replies", params={"include_retired": "true"}).status_code == 403


def test_the_api_fills_them_in_for_an_escalation(api: TestClient, open_escalation: Callable[..., int],
                                                 make_booking: Callable[..., int]) -> None:
    escalation_id = open_escalation("conv-7", channel="socketio")
    make_booking(utcnow() + timedelta(days=2), name="Ben Ortiz", conversation_id="conv-7")

    response = api.get("/api/saved-replies", params={"escalation_id": str(escalation_id)})

    texts = {item["name"]: item["text"] for item in response.json()["saved_replies"]}
    assert texts["Call-back offer"].startswith("Hi Ben, this is the team at Sample Ketamine Clinic.")
    assert api.get("/api/saved-replies", params={"escalation_id": "999"}).status_code == 404


def test_admins_create_edit_retire_and_restore_through_the_api(admin_api: TestClient, api: TestClient,
                                                               db: str) -> None:
    body = {"name": "Forms", "text": "Fill in the forms, {patient_first_name}.", "channel": "sms"}
    created = admin_api.post("/api/saved-replies", json=body)
    reply_id = created.json()["saved_reply"]["id"]
    edited = admin_api.post(f"/api/saved-replies/{reply_id}", json={"name": "Forms", "text": "Forms are online."})
    retired = admin_api.post(f"/api/saved-replies/{reply_id}/retire")
    restored = admin_api.post(f"/api/saved-replies/{reply_id}/restore")

    assert created.status_code == 201 and created.json()["saved_reply"]["channel"] == "sms"
    edited_reply = edited.json()["saved_reply"]
    assert (edited_reply["text"], edited_reply["channel"]) == ("Forms are online.", None)
    assert retired.json()["saved_reply"]["retired"] is True and restored.json()["saved_reply"]["retired"] is False
    assert [e.detail for e in audit.list_events(db) if e.action == "saved_reply_edit"] == [
        f"saved reply {reply_id}; via api"]
    assert api.post("/api/saved-replies", json={"name": "X", "text": "Y"}).status_code == 403
    assert admin_api.post("/api/saved-replies", json={"name": "X"}).status_code == 400
    assert admin_api.post("/api/saved-replies/4242", json={"name": "X", "text": "Y"}).status_code == 404
    assert admin_api.post("/api/saved-replies", json={"name": "Forms", "text": "Y"}).status_code == 409
