"""The console's pages: inbox (live), conversation (live), claim, reply, notes, resolve, audit log."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from clinic.channels.sms import record_opt_out
from clinic.staff import audit, inbox
from clinic.staff.accounts import StaffMember
from clinic.staff.notifications import NotificationStatus
from tests.clinic.staff.console import FakeRasa
from tests.clinic.staff.console.conftest import Browser


def _row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="row[^"]*" data-id="(\d+)"', html)]


def _language_cells(html: str) -> dict[int, str]:
    """Each inbox row's Language cell, by escalation id."""
    return {int(i): cell.strip() for i, cell in re.findall(
        r'<tr class="row[^"]*" data-id="(\d+)">.*?<td data-label="Language">(.*?)</td>', html, re.DOTALL)}


def _banner(html: str) -> str:
    match = re.search(r'<div class="banner banner-(\w+)" role="(?:status|alert)">\s*([^<]*)', html)
    return f"{match.group(1)}: {match.group(2).strip()}" if match else ""


# ------------------------------------------------------------------ inbox


def test_the_inbox_lists_open_escalations_urgent_first(
    staff_browser: Browser, open_escalation: Callable[..., int]
) -> None:
    normal = open_escalation("conv-normal", "asked_for_staff", rule=None, channel="socketio")
    urgent = open_escalation("conv-urgent", "crisis", rule="self_harm", channel="twilio")

    page = staff_browser.get("/")

    assert page.status_code == 200
    assert _row_ids(page.text) == [urgent, normal]
    for text in ("Crisis", "self_harm", "SMS", "Asked for staff", "Website chat", "Unassigned", "Urgent"):
        assert text in page.text
    assert 'data-poll-url="/inbox.json?show=open"' in page.text


def test_a_new_escalation_appears_in_the_polled_json(
    staff_browser: Browser, open_escalation: Callable[..., int]
) -> None:
    first = staff_browser.get("/inbox.json").json()
    escalation_id = open_escalation("conv-new", "emergency", rule="chest_pain")

    later = staff_browser.get("/inbox.json").json()

    assert first["rows"] == [] and first["counts"] == {"all": 0, "mine": 0, "unassigned": 0}
    [row] = later["rows"]
    assert (row["id"], row["urgency"], row["reason_label"], row["guard_rule"]) == (
        escalation_id, "urgent", "Emergency", "chest_pain",
    )
    assert row["waiting_seconds"] >= 0 and row["assigned_to"] is None and row["url"] == f"/escalations/{escalation_id}"
    assert "text" not in str(row.keys()) and later["counts"]["all"] == 1


def test_the_filters(staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa) -> None:
    mine = open_escalation("conv-mine")
    free = open_escalation("conv-free")
    done = open_escalation("conv-done")
    staff_browser.post(f"/escalations/{mine}/claim")
    staff_browser.post(f"/escalations/{done}/resolve")

    assert _row_ids(staff_browser.get("/?show=mine").text) == [mine]
    assert _row_ids(staff_browser.get("/?show=unassigned").text) == [free]
    assert _row_ids(staff_browser.get("/?show=resolved").text) == [done]
    assert _row_ids(staff_browser.get("/?show=bogus").text) == [mine, free]
    assert [r["id"] for r in staff_browser.get("/inbox.json?show=mine").json()["rows"]] == [mine]
    assert staff_browser.get("/inbox.json?show=bogus").status_code == 400
    assert "Sam Staff (you)" in staff_browser.get("/?show=mine").text


def test_the_inbox_shows_each_conversations_language(
    staff_browser: Browser, open_escalation: Callable[..., int]
) -> None:
    spanish = open_escalation("conv-es", language="es")
    english = open_escalation("conv-en", language="en")
    older = open_escalation("conv-old")  # recorded before languages were kept

    page = staff_browser.get("/")
    rows = {row["id"]: row for row in staff_browser.get("/inbox.json").json()["rows"]}

    assert '<th scope="col">Language</th>' in page.text
    assert _language_cells(page.text) == {spanish: "Spanish", english: "English", older: ""}
    assert [(rows[i]["language"], rows[i]["language_label"]) for i in (spanish, english, older)] == [
        ("es", "Spanish"), ("en", "English"), (None, None)]


def test_failing_notifications_show_as_a_banner(staff_browser: Browser, fake: FakeRasa) -> None:
    assert 'id="notification-banner" class="banner banner-warning" role="alert" hidden' in staff_browser.get("/").text
    fake.failing.append(NotificationStatus(7, "sms", "urgent", "failed", 4, "Twilio: 401 Unauthorized",
                                               datetime.now(timezone.utc), None))

    page = staff_browser.get("/")
    polled = staff_browser.get("/inbox.json").json()

    assert "Staff notifications are failing" in page.text and "Twilio: 401 Unauthorized" in page.text
    assert '<a href="/escalations/7">#7</a>' in page.text
    assert 'role="alert" hidden' not in page.text
    assert polled["failing"][0]["notifier"] == "sms" and polled["failing"][0]["attempts"] == 4
    assert polled["failing"][0]["escalation_id"] == 7


# ------------------------------------------------------------------ a conversation


def test_the_conversation_page_shows_the_transcript_and_is_audited(
    staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa, db: str
) -> None:
    escalation_id = open_escalation("conv-1", "medical_question", text="can I take it with lexapro?")
    fake.say("conv-1", "patient", "can I take it with lexapro?")
    last = fake.say("conv-1", "bot", "A clinician will answer you.")
    fake.by_escalation[escalation_id] = [
        NotificationStatus(escalation_id, "email", "opened", "sent", 1, None, None, datetime.now(timezone.utc)),
    ]

    page = staff_browser.get(f"/escalations/{escalation_id}")

    assert page.status_code == 200
    assert "can I take it with lexapro?" in page.text and "A clinician will answer you." in page.text
    assert f'data-last-id="{last.id}"' in page.text
    assert "named_medicine" in page.text and "conv-1" in page.text and "email" in page.text
    assert [(e.action, e.username, e.escalation_id) for e in audit.list_events(db, action="view")] == [
        ("view", "sam", escalation_id)
    ]


def test_a_spanish_conversation_page_says_so_and_marks_its_lines_for_screen_readers(
    staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa
) -> None:
    escalation_id = open_escalation("conv-1", text="tomo litio, ¿puedo hacerlo?", language="es")
    fake.say("conv-1", "patient", "tomo litio, ¿puedo hacerlo?")
    fake.say("conv-1", "bot", "Una persona del equipo clínico te responderá aquí.")
    fake.say("conv-1", "staff", "Hi, this is Dana.", staff_name="Dana")

    page = staff_browser.get(f"/escalations/{escalation_id}").text

    assert '<dt>Language</dt><dd id="fact-language">Spanish</dd>' in page  # the label is English: no lang
    assert '<p class="msg-text" lang="es">tomo litio, ¿puedo hacerlo?</p>' in page
    assert '<p class="msg-text" lang="es">Una persona del equipo clínico te responderá aquí.</p>' in page
    assert '<p class="msg-text">Hi, this is Dana.</p>' in page  # staff may write either language
    assert 'data-language="es"' in page  # lines polled later get it too (console.js)


def test_a_conversation_without_a_known_language_shows_none(
    staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa
) -> None:
    escalation_id = open_escalation("conv-1")
    fake.say("conv-1", "patient", "hello?")

    page = staff_browser.get(f"/escalations/{escalation_id}").text

    assert "<dt>Language</dt>" not in page and ' lang="' not in page.split("<body", 1)[1]


def test_new_messages_are_polled_after_the_last_id(
    staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa, db: str
) -> None:
    escalation_id = open_escalation("conv-1")
    first = fake.say("conv-1", "patient", "hello?")
    staff_browser.get(f"/escalations/{escalation_id}")
    fake.say("conv-1", "patient", "is anyone there?")

    polled = staff_browser.get(f"/escalations/{escalation_id}/updates.json?after={first.id}").json()

    assert [(e["sender"], e["text"]) for e in polled["transcript"]] == [("patient", "is anyone there?")]
    assert polled["escalation"]["id"] == escalation_id and polled["replies"] == [] and polled["notes"] == []
    assert len(audit.list_events(db, action="view")) == 1  # polling is not another view


@pytest.mark.parametrize("bad", ["-1", "x", "1.5", str(2**64)])
def test_polling_after_a_bad_id_is_refused(
    staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa, bad: str
) -> None:
    escalation_id = open_escalation("conv-1")

    assert staff_browser.get(f"/escalations/{escalation_id}/updates.json?after={bad}").status_code == 400


def test_claim_take_over_and_unassign(
    staff_browser: Browser, make_user: Callable[..., StaffMember], open_escalation: Callable[..., int], db: str
) -> None:
    kim = make_user("kim", name="Kim Nurse")
    escalation_id = open_escalation("conv-1")
    inbox.claim(escalation_id, kim, database_url=db)

    conflict = staff_browser.post(f"/escalations/{escalation_id}/claim")
    page = staff_browser.get(conflict.headers["location"])
    taken = staff_browser.post(f"/escalations/{escalation_id}/claim", {"take_over": "1"})
    after_take = staff_browser.get(taken.headers["location"]).text
    released = staff_browser.post(f"/escalations/{escalation_id}/unassign")
    after_release = staff_browser.get(released.headers["location"]).text

    assert conflict.status_code == 303 and conflict.headers["location"].endswith("notice=claimed_by_other")
    assert _banner(page.text).startswith("warning: Someone else has claimed") and "Take over" in page.text
    assert _banner(after_take).startswith("success: You have claimed") and "Sam Staff (you)" in after_take
    assert _banner(after_release).startswith("info:") and ">Claim</button>" in after_release


def test_a_delivered_reply(staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa) -> None:
    escalation_id = open_escalation("conv-1")

    response = staff_browser.post(f"/escalations/{escalation_id}/reply", {"text": "A nurse will call you today."})
    page = staff_browser.get(response.headers["location"]).text

    assert response.status_code == 303 and "notice=reply_sent" in response.headers["location"]
    assert fake.sent == [("conv-1", "A nurse will call you today.", "Sam Staff")]
    assert "Delivered" in page and "A nurse will call you today." in page
    assert _banner(page) == "success: Reply delivered to the patient."


def test_a_failed_reply_shows_why(staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa) -> None:
    escalation_id = open_escalation("conv-1")
    fake.reply_error = "Rasa answered 503"

    response = staff_browser.post(f"/escalations/{escalation_id}/reply", {"text": "Hello there"})
    page = response.text
    polled = staff_browser.get(f"/escalations/{escalation_id}/updates.json").json()

    assert response.status_code == 502
    assert "Not delivered: Rasa answered 503" in page and ">Hello there</textarea>" in page  # kept for a retry
    assert 'class="badge badge-reply-failed">Not delivered<' in page and "Reason: Rasa answered 503" in page
    assert polled["replies"][0]["status"] == "failed" and polled["replies"][0]["error"] == "Rasa answered 503"


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "Reply is empty"), ("   ", "Reply is empty"), ("y" * 2001, "Reply is too long: 2,001 characters")],
)
def test_a_bad_reply_is_refused_in_a_friendly_way(
    staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa, text: str, message: str
) -> None:
    escalation_id = open_escalation("conv-1")

    response = staff_browser.post(f"/escalations/{escalation_id}/reply", {"text": text})

    assert response.status_code == 400 and message in response.text
    assert 'aria-invalid="true"' in response.text and fake.sent == []
    if text.strip():
        assert text in response.text  # what was typed is kept


def test_notes(staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa) -> None:
    escalation_id = open_escalation("conv-1")

    added = staff_browser.post(f"/escalations/{escalation_id}/notes", {"text": "Left a voicemail."})
    empty = staff_browser.post(f"/escalations/{escalation_id}/notes", {"text": ""})
    page = staff_browser.get(added.headers["location"]).text

    assert added.status_code == 303 and "Left a voicemail." in page and "Sam Staff" in page
    assert empty.status_code == 400 and "Note is empty" in empty.text
    assert fake.sent == []  # notes never go to the patient


def test_resolve(staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa) -> None:
    escalation_id = open_escalation("conv-1")

    response = staff_browser.post(f"/escalations/{escalation_id}/resolve")
    page = staff_browser.get(response.headers["location"]).text
    again = staff_browser.post(f"/escalations/{escalation_id}/resolve")
    reply = staff_browser.post(f"/escalations/{escalation_id}/reply", {"text": "hi"})

    assert fake.handed_back == ["conv-1"]
    assert _banner(page).startswith("success: Resolved") and "Resolve and hand back" not in page
    assert 'name="text" rows="4"' not in page  # no reply box once resolved
    assert again.headers["location"].endswith("notice=already_resolved")
    assert reply.headers["location"].endswith("notice=already_resolved") and fake.sent == []


def test_a_failed_hand_back_says_why_and_stays_open(
    staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa
) -> None:
    escalation_id = open_escalation("conv-1")
    fake.hand_back_error = "Rasa unreachable"

    response = staff_browser.post(f"/escalations/{escalation_id}/resolve")

    assert response.status_code == 502
    assert "Could not hand the conversation back to the assistant: Rasa unreachable" in response.text
    assert "Resolve and hand back" in response.text


def test_an_unreadable_transcript_falls_back_to_the_recorded_messages(
    staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa
) -> None:
    escalation_id = open_escalation("conv-1", text="I need to talk to someone")
    fake.transcript_error = OSError("tracker store down")

    page = staff_browser.get(f"/escalations/{escalation_id}")

    assert page.status_code == 200
    assert "could not be read" in page.text and "I need to talk to someone" in page.text


def test_an_sms_patient_who_opted_out_cannot_be_texted(
    staff_browser: Browser, open_escalation: Callable[..., int], db: str
) -> None:
    phone = "+13125550142"
    escalation_id = open_escalation(phone, "asked_for_staff", rule=None, channel="twilio")

    allowed = staff_browser.get(f"/escalations/{escalation_id}").text
    record_opt_out(phone, database_url=db)
    opted_out = staff_browser.get(f"/escalations/{escalation_id}").text
    polled = staff_browser.get(f"/escalations/{escalation_id}/updates.json").json()

    assert "<dt>Texts</dt><dd id=\"fact-sms\">Allowed</dd>" in allowed
    assert '<p class="banner banner-warning" id="sms-opt-out" role="status" hidden>' in allowed
    assert 'aria-describedby="reply-help"' in allowed
    assert "Opted out (STOP)" in opted_out
    assert '<p class="banner banner-warning" id="sms-opt-out" role="status">' in opted_out
    assert "replies can't be texted to them until they text START" in opted_out
    assert 'aria-describedby="reply-help sms-opt-out"' in opted_out
    assert polled["sms_opted_out"] is True


def test_no_opt_out_state_off_sms(staff_browser: Browser, open_escalation: Callable[..., int]) -> None:
    escalation_id = open_escalation("conv-web", channel="socketio")

    page = staff_browser.get(f"/escalations/{escalation_id}").text

    assert "fact-sms" not in page and "sms-opt-out" not in page
    assert staff_browser.get(f"/escalations/{escalation_id}/updates.json").json()["sms_opted_out"] is None


def test_an_unreadable_opt_out_state_is_unknown(
    staff_browser: Browser, open_escalation: Callable[..., int], monkeypatch: pytest.MonkeyPatch
) -> None:
    escalation_id = open_escalation("+13125550142", channel="twilio")

    def broken(*args: object, **kwargs: object) -> bool:
        raise ConnectionError("database down")

    monkeypatch.setattr(inbox, "services", replace(inbox.services, is_opted_out=broken))
    page = staff_browser.get(f"/escalations/{escalation_id}")

    assert page.status_code == 200 and '<dd id="fact-sms">Unknown</dd>' in page.text


@pytest.mark.parametrize("path", ["/escalations/999", "/escalations/99999999999999999999",
                                  "/escalations/999/updates.json", "/escalations/abc", "/nowhere"])
def test_unknown_ids_and_paths_are_404(staff_browser: Browser, path: str) -> None:
    response = staff_browser.get(path)

    assert response.status_code == 404
    if path.endswith(".json"):
        assert response.json() == {"error": "Not found."}
    else:
        assert "Not found" in response.text


@pytest.mark.parametrize("action", ["claim", "unassign", "resolve", "notes", "reply"])
def test_posting_to_an_unknown_escalation_is_404(staff_browser: Browser, fake: FakeRasa, action: str) -> None:
    assert staff_browser.post(f"/escalations/4242/{action}", {"text": "hi"}).status_code == 404
    assert fake.sent == [] and fake.handed_back == []


# ------------------------------------------------------------------ audit log


def test_the_audit_log_for_admins(
    admin_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa
) -> None:
    escalation_id = open_escalation("conv-1")
    admin_browser.get(f"/escalations/{escalation_id}")
    admin_browser.post(f"/escalations/{escalation_id}/claim")

    page = admin_browser.get("/audit")
    filtered = admin_browser.get(f"/audit?escalation={escalation_id}&action=claim")

    assert page.status_code == 200
    for action in ("login", "view", "claim"):
        assert f'tag-{action}">{action}<' in page.text
    assert filtered.text.count("<tr>") == 2  # header + one event
    assert admin_browser.get("/audit?escalation=abc").status_code == 400
    assert admin_browser.get("/audit?action=nope").status_code == 400
    assert 'href="/audit"' in admin_browser.get("/").text


def test_staff_do_not_see_the_audit_link(staff_browser: Browser) -> None:
    assert 'href="/audit"' not in staff_browser.get("/").text


# ------------------------------------------------------------------ readable everywhere


@pytest.mark.parametrize("path", ["/", "/login", "/escalations/1", "/audit"])
def test_pages_are_made_for_phones_too(admin_browser: Browser, open_escalation: Callable[..., int],
                                       path: str) -> None:
    open_escalation("conv-1")

    html = admin_browser.get(path).text

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<html lang="en">' in html and "/static/console.css?v=" in html


def test_static_assets(browser: Browser) -> None:
    css = browser.get("/static/console.css")
    js = browser.get("/static/console.js")

    assert css.status_code == js.status_code == 200
    assert "@media (max-width: 700px)" in css.text
    assert "textContent" in js.text and "innerHTML" not in js.text and "insertAdjacentHTML" not in js.text
