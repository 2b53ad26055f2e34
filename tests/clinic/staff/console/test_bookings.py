"""Bookings in the console: the page and the API list bookings and requests, staff confirm and
cancel them (CSRF-protected, audited), times in the clinic's time zone."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from clinic.booking import service as booking
from clinic.staff import audit
from clinic.staff.console.bookings import parse_time
from tests.clinic.booking.scheduling.helpers import CHICAGO, at
from tests.clinic.staff.console.conftest import Browser

MONDAY_TEN = at(2031, 3, 3, 10)  # 16:00 UTC (CST)
JULY_EIGHT = at(2031, 7, 8, 9, 30)  # 14:30 UTC (CDT)


def _row_ids(html: str, kind: str) -> list[int]:
    return [int(i) for i in re.findall(rf'<tr class="row[^"]*" id="{kind}-(\d+)"', html)]


def _banner(html: str) -> str:
    match = re.search(r'<div class="banner banner-(\w+)" role="(?:status|alert)">\s*([^<]*)', html)
    return f"{match.group(1)}: {match.group(2).strip()}" if match else ""


def _events(db: str, action: str) -> list[tuple[str | None, str | None]]:
    return [(e.username, e.detail) for e in reversed(audit.list_events(db, action=action))]


def _booking(db: str, booking_id: int) -> booking.BookingView:
    [view] = [b for b in booking.list_bookings(status=None, database_url=db) if b.id == booking_id]
    return view


def _request(db: str, request_id: int) -> booking.RequestView:
    [view] = [r for r in booking.list_requests(status=None, database_url=db) if r.id == request_id]
    return view


# ------------------------------------------------------------------ the page


def test_the_page_lists_requests_and_upcoming_bookings_in_the_clinics_time_zone(
    staff_browser: Browser, db: str, make_booking: Callable[..., int], make_request: Callable[..., int]
) -> None:
    later = make_booking(JULY_EIGHT, name="Cy Young", phone="+13125550177", reason="PTSD", backend="calcom")
    first = make_booking(MONDAY_TEN)
    make_booking(at(2020, 1, 6, 10), name="Old Past")
    make_booking(at(2031, 3, 4, 10), name="Gone Away", status="cancelled")
    webhook = make_request(at(2031, 3, 4, 14), text="Tuesday afternoon")
    fallback = make_request(None, name="Di Fallback", text="whenever", backend="calcom",
                            fallback_reason="backend_unavailable")

    page = staff_browser.get("/bookings")

    assert page.status_code == 200
    html = page.text
    assert _row_ids(html, "booking") == [first, later]
    assert _row_ids(html, "request") == [webhook, fallback]
    for text in ("Mon, Mar 3, 2031", "10:00 AM CST", "Tue, Jul 8, 2031", "9:30 AM CDT", "Ana María López",
                 "+13125550123", "depression", "PTSD", "Built-in calendar", "Cal.com", "Booked",
                 "America/Chicago", _booking(db, first).code):
        assert text in html, text
    assert "Old Past" not in html and "Gone Away" not in html
    # the requests: requested time, reason, what failed
    assert "Tue, Mar 4, 2031" in html and "2:00 PM CST" in html and "Tuesday afternoon" in html
    assert "Webhook request: confirm it once booked in the clinic&#39;s system (delivered" in html
    assert "The scheduling system did not answer (down or timed out). Backend: Cal.com." in html
    assert "No time chosen" in html and "anxiety" in html and "+13125550188" in html
    # clinic times are kept (not turned into the browser's time zone); actions ask first
    assert f'<time data-keep datetime="{"2031-03-03T16:00:00Z"}">' in html
    assert html.count("data-confirm=") == 2 * 2 + 2
    assert 'value="2031-03-04T14:00"' in html  # the confirm form's time, in the clinic's zone


def test_cancelled_bookings_on_request(staff_browser: Browser, make_booking: Callable[..., int]) -> None:
    live = make_booking(MONDAY_TEN)
    gone = make_booking(at(2031, 3, 4, 10), name="Gone Away", status="cancelled")

    html = staff_browser.get("/bookings?cancelled=1").text

    assert _row_ids(html, "booking") == [live, gone]
    assert "Cancelled" in html and "by the patient" in html
    assert html.count('action="/bookings/') == 1  # a cancelled booking cannot be cancelled again


def test_empty_lists_say_so(staff_browser: Browser) -> None:
    html = staff_browser.get("/bookings").text

    assert "No requests are waiting for staff." in html and "No upcoming bookings." in html


def test_the_navigation_links_to_bookings(staff_browser: Browser) -> None:
    assert 'href="/bookings"' in staff_browser.get("/").text
    assert '<a href="/bookings" aria-current="page">Bookings</a>' in staff_browser.get("/bookings").text


def test_every_view_is_audited_with_ids_not_patient_details(
    staff_browser: Browser, db: str, make_booking: Callable[..., int], make_request: Callable[..., int]
) -> None:
    booking_id = make_booking(MONDAY_TEN)
    request_id = make_request(None)

    staff_browser.get("/bookings")

    [(who, detail)] = _events(db, "booking_view")
    assert who == "sam"
    assert detail == f"bookings {booking_id}; requests {request_id}; via console"


# ------------------------------------------------------------------ confirming and cancelling


def test_confirming_a_request_at_the_time_booked(
    staff_browser: Browser, db: str, make_request: Callable[..., int]
) -> None:
    request_id = make_request(at(2031, 3, 4, 14))

    response = staff_browser.post(f"/booking-requests/{request_id}/confirm", {"start": "2031-03-04T15:30"})

    assert response.status_code == 303
    assert response.headers["location"] == "/bookings?notice=request_confirmed#requests"
    view = _request(db, request_id)
    assert (view.status, view.confirmed_by, view.preferred_time) == ("confirmed", "sam", at(2031, 3, 4, 15, 30))
    [(who, detail)] = _events(db, "booking_request_confirm")
    assert who == "sam"
    assert detail == f"request {request_id} (book, code {view.code}, webhook) at 2031-03-04T21:30:00Z; via console"
    page = staff_browser.get(response.headers["location"]).text
    assert _banner(page).startswith("success: Request confirmed.") and _row_ids(page, "request") == []


def test_confirming_without_a_time_keeps_the_requested_one(
    staff_browser: Browser, db: str, make_request: Callable[..., int]
) -> None:
    request_id = make_request(at(2031, 3, 4, 14))

    staff_browser.post(f"/booking-requests/{request_id}/confirm")

    assert _request(db, request_id).preferred_time == at(2031, 3, 4, 14)


def test_confirming_a_cancel_request_cancels_the_booking(
    staff_browser: Browser, db: str, make_booking: Callable[..., int], make_request: Callable[..., int]
) -> None:
    booking_id = make_booking(MONDAY_TEN)
    request_id = make_request(None, kind="cancel", booking_id=booking_id, backend="calcom",
                              fallback_reason="backend_error")
    page = staff_browser.get("/bookings").text
    assert f'Cancel booking <a href="#booking-{booking_id}">#{booking_id}</a>' in page
    assert f'id="start-{request_id}"' not in page  # no time to confirm for a cancellation

    staff_browser.post(f"/booking-requests/{request_id}/confirm")

    assert (_booking(db, booking_id).status, _booking(db, booking_id).cancelled_by) == ("cancelled", "sam")
    assert f"of booking {booking_id}" in _events(db, "booking_request_confirm")[0][1]


def test_confirmed_requests_from_today_are_listed_and_can_be_cancelled(
    staff_browser: Browser, db: str, make_request: Callable[..., int]
) -> None:
    upcoming = make_request(at(2031, 3, 4, 14), name="Fay Later")
    past = make_request(at(2020, 3, 4, 14), name="Old Request")
    for request_id in (upcoming, past):
        staff_browser.post(f"/booking-requests/{request_id}/confirm")

    html = staff_browser.get("/bookings").text

    assert _row_ids(html, "confirmed") == [upcoming] and "Old Request" not in html
    assert _row_ids(html, "request") == [] and "Fay Later" in html
    assert staff_browser.post(f"/booking-requests/{upcoming}/cancel").status_code == 303
    assert _request(db, upcoming).status == "cancelled"
    assert 'id="confirmed"' not in staff_browser.get("/bookings").text


def test_a_request_handled_already_is_refused_with_the_reason(
    staff_browser: Browser, db: str, make_request: Callable[..., int]
) -> None:
    request_id = make_request(None)
    staff_browser.post(f"/booking-requests/{request_id}/cancel")

    again = staff_browser.post(f"/booking-requests/{request_id}/confirm")
    cancel_again = staff_browser.post(f"/booking-requests/{request_id}/cancel")

    assert again.status_code == cancel_again.status_code == 409
    assert _banner(again.text) == (
        f"error: Nothing changed: booking request {request_id} is cancelled. The list below is current."
    )
    assert "already cancelled" in cancel_again.text
    assert _request(db, request_id).status == "cancelled"
    assert len(_events(db, "booking_request_cancel")) == 1


def test_a_time_that_is_not_a_time_is_400(staff_browser: Browser, db: str, make_request: Callable[..., int]) -> None:
    request_id = make_request(None)

    response = staff_browser.post(f"/booking-requests/{request_id}/confirm", {"start": "next tuesday"})

    assert response.status_code == 400 and "must be a date and time" in response.text
    assert _request(db, request_id).status == "requested" and _events(db, "booking_request_confirm") == []


def test_cancelling_a_request(staff_browser: Browser, db: str, make_request: Callable[..., int]) -> None:
    request_id = make_request(None)

    response = staff_browser.post(f"/booking-requests/{request_id}/cancel")

    assert response.headers["location"] == "/bookings?notice=request_cancelled#requests"
    assert (_request(db, request_id).status, _request(db, request_id).cancelled_by) == ("cancelled", "sam")
    [(who, detail)] = _events(db, "booking_request_cancel")
    assert who == "sam" and detail.startswith(f"request {request_id} (book, code ") and detail.endswith("; via console")


def test_cancelling_a_booking_frees_its_time(
    staff_browser: Browser, db: str, make_booking: Callable[..., int], console_profile
) -> None:
    booking_id = make_booking(MONDAY_TEN)

    response = staff_browser.post(f"/bookings/{booking_id}/cancel")

    assert response.headers["location"] == "/bookings?notice=booking_cancelled#bookings"
    view = _booking(db, booking_id)
    assert (view.status, view.cancelled_by) == ("cancelled", "sam")
    assert _events(db, "booking_cancel") == [("sam", f"booking {booking_id} (code {view.code}, builtin); via console")]
    assert _row_ids(staff_browser.get("/bookings").text, "booking") == []


def test_a_backend_failing_to_cancel_changes_nothing_and_says_why(
    staff_browser: Browser, db: str, make_booking: Callable[..., int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALCOM_API_KEY", raising=False)
    booking_id = make_booking(MONDAY_TEN, backend="calcom")

    response = staff_browser.post(f"/bookings/{booking_id}/cancel")

    assert response.status_code == 502
    assert "could not be cancelled in its scheduling system: the calcom backend needs CALCOM_API_KEY" in response.text
    assert _booking(db, booking_id).status == "booked"
    assert _events(db, "booking_cancel_failed") == [
        ("sam", f"booking {booking_id}: the calcom backend needs CALCOM_API_KEY; via console"),
    ]


@pytest.mark.parametrize("path", ["/booking-requests/999/confirm", "/booking-requests/999/cancel",
                                  "/bookings/999/cancel", "/bookings/99999999999/cancel"])
def test_unknown_ids_are_404(staff_browser: Browser, path: str) -> None:
    assert staff_browser.post(path).status_code == 404


def test_staff_who_are_not_administrators_manage_bookings_and_admins_read_the_trail(
    staff_browser: Browser, admin_browser: Browser, make_booking: Callable[..., int]
) -> None:
    booking_id = make_booking(MONDAY_TEN)

    assert staff_browser.post(f"/bookings/{booking_id}/cancel").status_code == 303
    assert staff_browser.get("/audit?action=booking_cancel").status_code == 403
    trail = admin_browser.get("/audit?action=booking_cancel")
    assert trail.status_code == 200 and f"booking {booking_id} (code" in trail.text
    assert '<option value="booking_view">' in admin_browser.get("/audit").text


# ------------------------------------------------------------------ the API


def test_api_lists_bookings_with_clinic_times(
    api: TestClient, db: str, make_booking: Callable[..., int]
) -> None:
    first = make_booking(MONDAY_TEN)
    later = make_booking(JULY_EIGHT, backend="calcom")
    gone = make_booking(at(2031, 3, 4, 10), status="cancelled")
    make_booking(at(2020, 1, 6, 10))

    body = api.get("/api/bookings").json()

    assert body["timezone"] == "America/Chicago"
    assert [b["id"] for b in body["bookings"]] == [first, later]
    row = body["bookings"][0]
    assert (row["start"], row["start_local"], row["end"]) == (
        "2031-03-03T16:00:00Z", "2031-03-03T10:00:00-06:00", "2031-03-03T16:30:00Z",
    )
    assert (row["full_name"], row["phone"], row["visit_reason"], row["backend"], row["status"]) == (
        "Ana María López", "+13125550123", "depression", "builtin", "booked",
    )
    assert body["bookings"][1]["start_local"] == "2031-07-08T09:30:00-05:00"

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/bookings{query}")
        assert response.status_code == 200, response.text
        return [b["id"] for b in response.json()["bookings"]]

    assert ids("?status=cancelled") == [gone]
    assert ids("?status=all") == [first, gone, later]
    assert ids("?status=all&from=2031-03-04&to=2031-03-05") == [gone]
    assert ids("?from=2031-07-08T14:30:00Z") == [later]
    assert len(ids("?status=all&from=2000-01-01")) == 4
    assert api.get("/api/bookings?status=open").status_code == 400
    assert api.get("/api/bookings?from=soon").json() == {
        "error": "from must be a date and time like 2031-03-03T10:30 (ISO 8601).",
    }
    assert _events(db, "booking_view")[0] == ("sam", f"bookings {first},{later}; via api")


def test_api_lists_requests_awaiting_staff(
    api: TestClient, make_request: Callable[..., int]
) -> None:
    waiting = make_request(at(2031, 3, 4, 14))
    fallback = make_request(None, backend="calcom", fallback_reason="backend_error", text=None)
    done = make_request(None)
    booking.cancel_request(done, staff="kim", database_url=api.app.state.console.database_url)

    body = api.get("/api/booking-requests").json()

    assert [r["id"] for r in body["requests"]] == [waiting, fallback]
    row = body["requests"][0]
    assert (row["preferred_time"], row["preferred_time_local"], row["preferred_time_text"]) == (
        "2031-03-04T20:00:00Z", "2031-03-04T14:00:00-06:00", "Tuesday afternoon",
    )
    assert (row["kind"], row["backend"], row["fallback_reason"], row["status"]) == (
        "book", "webhook", None, "requested"
    )
    assert row["what_failed"].startswith("Webhook request")
    assert body["requests"][1]["what_failed"].startswith("The scheduling system refused the booking or failed.")
    assert [r["id"] for r in api.get("/api/booking-requests?status=cancelled").json()["requests"]] == [done]
    assert len(api.get("/api/booking-requests?status=all").json()["requests"]) == 3
    assert api.get("/api/booking-requests?status=open").status_code == 400


def test_api_confirms_and_cancels_requests(
    api: TestClient, db: str, make_request: Callable[..., int]
) -> None:
    first = make_request(at(2031, 3, 4, 14))
    second = make_request(None)

    confirmed = api.post(f"/api/booking-requests/{first}/confirm", json={"start": "2031-03-04T16:00:00-06:00"})
    again = api.post(f"/api/booking-requests/{first}/confirm")
    cancelled = api.post(f"/api/booking-requests/{second}/cancel")
    cancelled_again = api.post(f"/api/booking-requests/{second}/cancel")

    assert confirmed.status_code == 200
    assert (confirmed.json()["request"]["status"], confirmed.json()["request"]["confirmed_by"]) == ("confirmed", "sam")
    assert confirmed.json()["request"]["preferred_time"] == "2031-03-04T22:00:00Z"
    assert again.status_code == 409 and again.json() == {"error": f"Booking request {first} is confirmed."}
    assert cancelled.status_code == 200 and cancelled.json()["request"]["status"] == "cancelled"
    assert cancelled_again.status_code == 409
    assert [d for _, d in _events(db, "booking_request_confirm")][0].endswith("; via api")
    assert len(_events(db, "booking_request_cancel")) == 1


@pytest.mark.parametrize("body, message", [
    ({"start": 5}, '"start" must be a string (ISO 8601).'),
    ({"start": "Tuesday"}, "start must be a date and time like 2031-03-03T10:30 (ISO 8601)."),
    ([1], "The body must be a JSON object."),
])
def test_api_refuses_a_bad_confirm_body(api: TestClient, db: str, make_request: Callable[..., int],
                                        body: object, message: str) -> None:
    request_id = make_request(None)

    response = api.post(f"/api/booking-requests/{request_id}/confirm", json=body)

    assert response.status_code == 400 and response.json() == {"error": message}
    assert _request(db, request_id).status == "requested"


def test_api_cancels_bookings(
    api: TestClient, db: str, make_booking: Callable[..., int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALCOM_API_KEY", raising=False)
    builtin = make_booking(MONDAY_TEN)
    calcom = make_booking(JULY_EIGHT, backend="calcom")

    cancelled = api.post(f"/api/bookings/{builtin}/cancel")
    again = api.post(f"/api/bookings/{builtin}/cancel")
    failed = api.post(f"/api/bookings/{calcom}/cancel")

    assert cancelled.status_code == 200 and cancelled.json()["booking"]["status"] == "cancelled"
    assert cancelled.json()["booking"]["cancelled_by"] == "sam"
    assert again.status_code == 409 and again.json() == {"error": f"Booking {builtin} is already cancelled."}
    assert failed.status_code == 502 and failed.json() == {
        "error": "The booking could not be cancelled in its scheduling system; nothing changed.",
        "reason": "the calcom backend needs CALCOM_API_KEY",
    }
    assert _booking(db, calcom).status == "booked"
    code = _booking(db, builtin).code
    assert [d for _, d in _events(db, "booking_cancel")] == [f"booking {builtin} (code {code}, builtin); via api"]
    assert len(_events(db, "booking_cancel_failed")) == 1


@pytest.mark.parametrize("path", ["/api/booking-requests/999/confirm", "/api/booking-requests/999/cancel",
                                  "/api/bookings/999/cancel", "/api/bookings/99999999999/cancel"])
def test_api_unknown_ids_are_404(api: TestClient, path: str) -> None:
    response = api.post(path)

    assert response.status_code == 404 and "error" in response.json()


# ------------------------------------------------------------------ logs and times


def test_no_patient_details_in_logs_above_debug(
    staff_browser: Browser, api: TestClient, make_booking: Callable[..., int], make_request: Callable[..., int],
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CALCOM_API_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    first = make_booking(MONDAY_TEN, name="Jane Roe", phone="+13125550142", email="jane@example.com")
    second = make_booking(JULY_EIGHT, name="Jane Roe", phone="+13125550142", backend="calcom")
    request_id = make_request(None, name="Jane Roe", phone="+13125550142", conversation_id="+13125550142")
    staff_browser.get("/bookings")
    api.get("/api/bookings")
    api.get("/api/booking-requests")
    staff_browser.post(f"/booking-requests/{request_id}/confirm", {"start": "2031-03-05T09:00"})
    staff_browser.post(f"/bookings/{first}/cancel")
    api.post(f"/api/bookings/{second}/cancel")

    loud = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
    assert loud and not any(word in message for message in loud for word in ("Jane", "5550142", "example.com",
                                                                              "depression", "anxiety"))


@pytest.mark.parametrize("raw, expected", [
    ("2031-03-03T10:30", at(2031, 3, 3, 10, 30)),
    ("2031-03-03", at(2031, 3, 3, 0)),
    ("2031-03-03T16:30:00Z", at(2031, 3, 3, 10, 30)),
    ("2031-03-09T03:30", at(2031, 3, 9, 3, 30)),  # the day after the spring-forward change: CDT
])
def test_times_without_an_offset_are_the_clinics(raw: str, expected) -> None:
    assert parse_time(raw, CHICAGO) == expected
