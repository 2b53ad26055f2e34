"""The inbox pages through every escalation, and finds one patient's by conversation id or phone."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from starlette.testclient import TestClient

from clinic.clock import utcnow
from clinic.db import Escalation, session_scope
from clinic.staff import audit, inbox
from tests.clinic.staff.console.conftest import Browser

START = utcnow() - timedelta(days=2)


def _open_many(db: str, count: int, *, first: int = 0, urgency: str = "normal",
               start: datetime = START) -> list[int]:
    """Stores ``count`` open escalations opened a minute apart; their ids, oldest first."""
    with session_scope(db) as session:
        rows = [
            Escalation(conversation_id=f"conv-{first + n}", channel="socketio", reason="asked_for_staff",
                       urgency=urgency, status="open", created_at=start + timedelta(minutes=first + n))
            for n in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _pages(api: TestClient, url: str) -> list[list[int]]:
    pages = []
    while url:
        body = api.get(url).json()
        pages.append([row["id"] for row in body["escalations"]])
        url = body["next"]
    return pages


def _row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="row[^"]*" data-id="(\d+)"', html)]


def _next_link(html: str) -> str | None:
    match = re.search(r'id="inbox-next" class="button" href="([^"]*)"', html)
    return match.group(1).replace("&amp;", "&") if match and match.group(1) else None


# ------------------------------------------------------------------ paging


def test_the_api_pages_through_every_open_escalation(api: TestClient, db: str) -> None:
    ids = _open_many(db, 250)

    pages = _pages(api, "/api/escalations")

    assert [len(page) for page in pages] == [200, 50]
    assert [i for page in pages for i in page] == ids


def test_a_cursor_survives_new_arrivals(api: TestClient, db: str) -> None:
    ids = _open_many(db, 250)
    first = api.get("/api/escalations").json()
    newer = _open_many(db, 3, first=250)
    [urgent] = _open_many(db, 1, first=300, urgency="urgent")

    second = api.get(first["next"]).json()

    assert [row["id"] for row in second["escalations"]] == ids[200:] + newer
    assert second["next"] is None
    assert api.get("/api/escalations").json()["escalations"][0]["id"] == urgent  # urgent first, on page one


def test_urgent_escalations_come_first_across_pages(api: TestClient, db: str) -> None:
    normal = _open_many(db, 3)
    urgent = _open_many(db, 3, first=10, urgency="urgent")

    pages = _pages(api, "/api/escalations?limit=2")

    assert pages == [urgent[:2], [urgent[2], normal[0]], normal[1:]]


def test_resolved_escalations_page_latest_first(api: TestClient, db: str) -> None:
    ids = _open_many(db, 5)
    with session_scope(db) as session:
        for n, escalation_id in enumerate(ids):
            row = session.get(Escalation, escalation_id)
            row.status, row.resolved_at = "resolved", START + timedelta(hours=1, minutes=n)

    pages = _pages(api, "/api/escalations?status=resolved&limit=2")

    assert pages == [ids[:2:-1][:2], ids[2:0:-1], ids[:1]]


@pytest.mark.parametrize(
    "query",
    ["cursor=garbage", "cursor=" + "A" * 200, "limit=0", "limit=201", "limit=x"],
)
def test_a_bad_cursor_or_limit_is_400(api: TestClient, db: str, query: str) -> None:
    response = api.get(f"/api/escalations?{query}")

    assert response.status_code == 400 and response.json()["error"]


def test_an_open_cursor_is_refused_on_the_resolved_list(api: TestClient, db: str) -> None:
    _open_many(db, 3)
    cursor = api.get("/api/escalations?limit=1").json()["next"].split("cursor=")[1].split("&")[0]

    response = api.get(f"/api/escalations?status=resolved&cursor={cursor}")

    assert response.status_code == 400 and "first page" in response.json()["error"]


def test_the_inbox_page_has_a_next_page_link(staff_browser: Browser, db: str) -> None:
    ids = _open_many(db, 230)

    first = staff_browser.get("/")
    second = staff_browser.get(_next_link(first.text))

    assert _row_ids(first.text) == ids[:200]
    assert _row_ids(second.text) == ids[200:] and _next_link(second.text) is None
    assert 'href="/?show=open">First page' in second.text
    polled = staff_browser.get(re.search(r'data-poll-url="([^"]+)"', second.text).group(1).replace("&amp;", "&"))
    assert [row["id"] for row in polled.json()["rows"]] == ids[200:] and polled.json()["next"] is None
    assert staff_browser.get("/inbox.json").json()["next"] == _next_link(first.text)


def test_a_bad_cursor_on_the_inbox_page_is_explained(staff_browser: Browser) -> None:
    response = staff_browser.get("/?cursor=bm90IGEgY3Vyc29y")

    assert response.status_code == 400 and "start again from the first page" in response.text


# ------------------------------------------------------------------ finding one patient


@pytest.fixture
def patients(open_escalation: Callable[..., int], make_booking: Callable[..., int], db: str) -> dict[str, int]:
    """An SMS patient, a web chat patient who booked with the same phone, and someone else."""
    ids = {
        "sms": open_escalation("+13125550123", channel="twilio"),
        "booked": open_escalation("web-booked-1", channel="socketio"),
        "other": open_escalation("conv-other", channel="socketio"),
    }
    make_booking(utcnow() + timedelta(days=3), phone="+13125550123", conversation_id="web-booked-1")
    _open_many(db, 5, first=100)
    return ids


@pytest.mark.parametrize("typed", ["(312) 555-0123", "312.555.0123", "+1 312 555 0123", "3125550123"])
def test_the_api_finds_a_patient_by_phone(api: TestClient, patients: dict[str, int], db: str, typed: str) -> None:
    response = api.get("/api/escalations", params={"phone": typed})

    assert response.status_code == 200
    assert {row["id"] for row in response.json()["escalations"]} == {patients["sms"], patients["booked"]}
    [event] = audit.list_events(db, action="find")
    assert (event.username, event.conversation_id) == ("sam", "+13125550123")
    assert event.detail == f"by phone: 2 found ({patients['booked']}, {patients['sms']}); via api"


def test_the_api_finds_a_conversation_by_its_id(api: TestClient, patients: dict[str, int], db: str) -> None:
    response = api.get("/api/escalations", params={"conversation_id": "conv-other"})

    assert [row["id"] for row in response.json()["escalations"]] == [patients["other"]]
    [event] = audit.list_events(db, action="find")
    assert event.escalation_id == patients["other"]
    assert event.detail == f"by conversation id: 1 found ({patients['other']}); via api"


def test_finding_lists_resolved_escalations_too(api: TestClient, patients: dict[str, int], db: str) -> None:
    with session_scope(db) as session:
        row = session.get(Escalation, patients["sms"])
        row.status, row.resolved_at = "resolved", utcnow()

    response = api.get("/api/escalations", params={"phone": "312-555-0123"})

    assert [row["status"] for row in response.json()["escalations"]] == ["open", "resolved"]


@pytest.mark.parametrize(
    "params",
    [{"phone": "not a phone"}, {"phone": "123"}, {"conversation_id": " "}, {"conversation_id": "x" * 256},
     {"phone": "3125550123", "conversation_id": "conv-other"}, {"phone": "3125550123", "status": "open"}],
)
def test_a_bad_look_up_is_400(api: TestClient, patients: dict[str, int], db: str, params: dict[str, str]) -> None:
    response = api.get("/api/escalations", params=params)

    assert response.status_code == 400 and response.json()["error"]
    assert audit.list_events(db, action="find") == []


def test_the_inbox_finds_by_phone_or_conversation_id(
    staff_browser: Browser, patients: dict[str, int], db: str
) -> None:
    by_phone = staff_browser.get("/", params={"find": "(312) 555-0123"})
    by_id = staff_browser.get("/", params={"find": "conv-other"})
    nothing = staff_browser.get("/", params={"find": "conv-nobody"})

    assert sorted(_row_ids(by_phone.text)) == sorted([patients["sms"], patients["booked"]])
    assert _row_ids(by_id.text) == [patients["other"]]
    assert _row_ids(nothing.text) == [] and "No escalation found" in nothing.text
    assert "data-poll-url" not in by_phone.text  # a look-up is not polled (each one is audited)
    assert [e.detail for e in audit.list_events(db, action="find")] == [
        "by conversation id, name, booking code or text: 0 found; via console",
        f"by conversation id, name, booking code or text: 1 found ({patients['other']}); via console",
        f"by phone: 2 found ({patients['booked']}, {patients['sms']}); via console",
    ]


def test_the_inbox_page_has_a_find_box(staff_browser: Browser) -> None:
    page = staff_browser.get("/")

    assert 'role="search"' in page.text and 'name="find"' in page.text


def test_an_empty_look_up_is_explained(staff_browser: Browser) -> None:
    response = staff_browser.get("/", params={"find": "   "})

    assert response.status_code == 400 and "Type a conversation id, a phone number" in response.text


def test_page_escalations_refuses_a_limit_over_the_page_size(db: str) -> None:
    with pytest.raises(ValueError, match="limit"):
        inbox.page_escalations(limit=inbox.PAGE_SIZE + 1, database_url=db)
