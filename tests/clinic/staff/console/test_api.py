"""The JSON API: bearer tokens, the same capabilities as the pages, proper error codes, audit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from clinic.channels.sms import record_opt_out
from clinic.staff import audit, inbox
from clinic.staff.accounts import StaffMember, create_api_token, deactivate, revoke_api_token
from tests.clinic.staff.console import FakeRasa
from tests.clinic.staff.console.conftest import Browser


def _anonymous(app: Starlette, token: str | None = None, scheme: str = "Bearer") -> TestClient:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    return TestClient(app, base_url="https://testserver", headers=headers)


# ------------------------------------------------------------------ tokens


def test_a_valid_token(api: TestClient) -> None:
    response = api.get("/api/me")

    assert response.status_code == 200
    assert response.json() == {"id": 1, "username": "sam", "display_name": "Sam Staff", "is_admin": False,
                               "role": "staff"}


@pytest.mark.parametrize("header", [None, "wrong-token", ""])
def test_missing_or_wrong_tokens_get_401(app: Starlette, api_token: str, header: str | None) -> None:
    with _anonymous(app, header) as client:
        response = client.get("/api/escalations")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "error" in response.json()


def test_the_scheme_must_be_bearer(app: Starlette, api_token: str) -> None:
    with _anonymous(app, api_token, scheme="Basic") as client:
        assert client.get("/api/escalations").status_code == 401
    with _anonymous(app, api_token, scheme="bearer") as client:
        assert client.get("/api/escalations").status_code == 200


@pytest.mark.parametrize("why", ["revoked", "account disabled"])
def test_revoked_and_disabled_tokens_get_401(app: Starlette, db: str, staff_user: StaffMember,
                                             make_user: Callable[..., StaffMember], why: str) -> None:
    if why == "revoked":
        token = create_api_token("sam", "old", database_url=db)
        revoke_api_token(token.info.id, database_url=db)
    else:
        make_user("kim")
        token = create_api_token("kim", "kim's", database_url=db)
        deactivate("kim", database_url=db)

    with _anonymous(app, token.token) as client:
        assert client.get("/api/escalations").status_code == 401


def test_a_session_cookie_does_not_open_the_api(staff_browser: Browser) -> None:
    assert staff_browser.get("/api/escalations").status_code == 401


# ------------------------------------------------------------------ reading


def test_listing_with_status_and_filters(api: TestClient, open_escalation: Callable[..., int], fake: FakeRasa) -> None:
    normal = open_escalation("conv-normal")
    urgent = open_escalation("conv-urgent", "crisis", rule="self_harm")
    done = open_escalation("conv-done")
    api.post(f"/api/escalations/{normal}/claim")
    api.post(f"/api/escalations/{done}/resolve")

    def ids(query: str = "") -> list[int]:
        response = api.get(f"/api/escalations{query}")
        assert response.status_code == 200
        return [row["id"] for row in response.json()["escalations"]]

    assert ids() == [urgent, normal]
    assert ids("?filter=mine") == [normal]
    assert ids("?filter=unassigned") == [urgent]
    assert ids("?status=resolved") == [done]
    assert api.get("/api/escalations?status=closed").status_code == 400
    assert api.get("/api/escalations?filter=everything").status_code == 400
    row = api.get("/api/escalations").json()["escalations"][0]
    assert (row["reason"], row["guard_rule"], row["urgency"], row["channel"]) == (
        "crisis", "self_harm", "urgent", "rest",
    )


def test_the_detail_has_transcript_notes_and_replies_and_is_audited(
    api: TestClient, open_escalation: Callable[..., int], fake: FakeRasa, db: str
) -> None:
    escalation_id = open_escalation("conv-1", text="is it safe with my meds?")
    fake.say("conv-1", "patient", "is it safe with my meds?")
    api.post(f"/api/escalations/{escalation_id}/notes", json={"text": "checking chart"})
    api.post(f"/api/escalations/{escalation_id}/reply", json={"text": "A nurse will call."})

    body = api.get(f"/api/escalations/{escalation_id}").json()

    assert body["escalation"]["id"] == escalation_id and body["trigger_text"] == "is it safe with my meds?"
    assert [(e["sender"], e["text"]) for e in body["transcript"]] == [
        ("patient", "is it safe with my meds?"), ("staff", "A nurse will call."),
    ]
    assert [n["text"] for n in body["notes"]] == ["checking chart"]
    assert [(r["text"], r["status"]) for r in body["replies"]] == [("A nurse will call.", "delivered")]
    assert body["transcript_error"] is None and body["notifications"] == []
    assert [(e.action, e.detail) for e in audit.list_events(db, action="view")] == [("view", "via api")]


def test_escalations_carry_the_conversations_language(
    api: TestClient, open_escalation: Callable[..., int], fake: FakeRasa
) -> None:
    spanish = open_escalation("conv-es", language="es")
    older = open_escalation("conv-old")

    listed = {e["id"]: e for e in api.get("/api/escalations").json()["escalations"]}
    detail = api.get(f"/api/escalations/{spanish}").json()["escalation"]

    assert (detail["language"], detail["language_label"]) == ("es", "Spanish")
    assert (listed[spanish]["language"], listed[older]["language"]) == ("es", None)


def test_the_detail_says_whether_an_sms_patient_opted_out(
    api: TestClient, open_escalation: Callable[..., int], fake: FakeRasa, db: str
) -> None:
    phone = "+13125550142"
    sms = open_escalation(phone, channel="twilio")
    web = open_escalation("conv-web", channel="socketio")

    before = api.get(f"/api/escalations/{sms}").json()["sms_opted_out"]
    record_opt_out(phone, database_url=db)

    assert before is False
    assert api.get(f"/api/escalations/{sms}").json()["sms_opted_out"] is True
    assert api.get(f"/api/escalations/{web}").json()["sms_opted_out"] is None


# ------------------------------------------------------------------ acting


def test_claim_unassign_and_take_over(api: TestClient, open_escalation: Callable[..., int],
                                      make_user: Callable[..., StaffMember], db: str) -> None:
    escalation_id = open_escalation("conv-1")

    claimed = api.post(f"/api/escalations/{escalation_id}/claim")
    released = api.post(f"/api/escalations/{escalation_id}/unassign", json={})
    inbox.claim(escalation_id, make_user("kim"), database_url=db)
    conflict = api.post(f"/api/escalations/{escalation_id}/claim")
    taken = api.post(f"/api/escalations/{escalation_id}/claim", json={"take_over": True})

    assert claimed.status_code == 200 and claimed.json()["escalation"]["assigned_to"]["username"] == "sam"
    assert released.status_code == 200 and released.json()["escalation"]["assigned_to"] is None
    assert conflict.status_code == 409 and "Already claimed" in conflict.json()["error"]
    assert taken.status_code == 200 and taken.json()["escalation"]["assigned_to"]["username"] == "sam"
    assert api.post(f"/api/escalations/{escalation_id}/claim", json={"take_over": "yes"}).status_code == 400
    details = [e.detail for e in audit.list_events(db, escalation_id=escalation_id, username="sam")]
    assert details == ["taken over from kim; via api", "via api", "via api"]


def test_reply_and_note(api: TestClient, open_escalation: Callable[..., int], fake: FakeRasa) -> None:
    escalation_id = open_escalation("conv-1")

    reply = api.post(f"/api/escalations/{escalation_id}/reply", json={"text": "Hello from the clinic"})
    note = api.post(f"/api/escalations/{escalation_id}/notes", json={"text": "patient is calm"})

    assert reply.status_code == 201 and reply.json()["reply"]["status"] == "delivered"
    assert note.status_code == 201 and note.json()["note"]["author"]["username"] == "sam"
    assert fake.sent == [("conv-1", "Hello from the clinic", "Sam Staff")]


def test_a_failed_delivery_is_502_with_the_reason(api: TestClient, open_escalation: Callable[..., int],
                                                  fake: FakeRasa) -> None:
    escalation_id = open_escalation("conv-1")
    fake.reply_error = "Rasa answered 500"

    response = api.post(f"/api/escalations/{escalation_id}/reply", json={"text": "Hello"})

    assert response.status_code == 502
    body = response.json()
    assert body["reason"] == "Rasa answered 500" and body["reply"]["status"] == "failed"


def test_resolve_then_409(api: TestClient, open_escalation: Callable[..., int], fake: FakeRasa) -> None:
    escalation_id = open_escalation("conv-1")

    first = api.post(f"/api/escalations/{escalation_id}/resolve")
    second = api.post(f"/api/escalations/{escalation_id}/resolve")
    reply = api.post(f"/api/escalations/{escalation_id}/reply", json={"text": "hi"})

    assert first.status_code == 200 and first.json()["escalation"]["status"] == "resolved"
    assert first.json()["escalation"]["resolved_by"]["username"] == "sam"
    assert second.status_code == 409 and reply.status_code == 409
    assert fake.handed_back == ["conv-1"]


def test_a_failed_hand_back_is_502_and_stays_open(api: TestClient, open_escalation: Callable[..., int],
                                                  fake: FakeRasa) -> None:
    escalation_id = open_escalation("conv-1")
    fake.hand_back_error = "connection refused"

    response = api.post(f"/api/escalations/{escalation_id}/resolve")

    assert response.status_code == 502
    assert response.json()["reason"] == "connection refused"
    assert response.json()["escalation"]["status"] == "open"


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "JSON object"),
        (b"\xff\xfe\x00binary\x00", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"{}", '"text"'),
        (b'{"text": 5}', "string"),
        (b'{"text": "   "}', "empty"),
        (b'{"text": "' + b"x" * 2001 + b'"}', "too long"),
        (b'{"text": "nul\\u0000byte"}', "control characters"),
    ],
)
@pytest.mark.parametrize("action", ["reply", "notes"])
def test_bad_bodies_are_400(api: TestClient, open_escalation: Callable[..., int], fake: FakeRasa,
                            action: str, body: bytes, message: str) -> None:
    escalation_id = open_escalation("conv-1")

    response = api.post(f"/api/escalations/{escalation_id}/{action}", content=body,
                        headers={"Content-Type": "application/json"})

    assert response.status_code == 400 and message in response.json()["error"]
    assert fake.sent == []


def test_a_huge_body_is_413(api: TestClient, open_escalation: Callable[..., int], fake: FakeRasa) -> None:
    escalation_id = open_escalation("conv-1")
    huge = b'{"text": "' + b"x" * 200_000 + b'"}'

    declared = api.post(f"/api/escalations/{escalation_id}/reply", content=huge)
    streamed = api.post(f"/api/escalations/{escalation_id}/reply", content=iter([huge[:50_000], huge[50_000:]]))

    assert declared.status_code == streamed.status_code == 413
    assert "too large" in declared.json()["error"] and "too large" in streamed.json()["error"]
    assert fake.sent == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/escalations/999"),
        ("GET", "/api/escalations/99999999999999999999"),
        ("POST", "/api/escalations/999/claim"),
        ("POST", "/api/escalations/999/unassign"),
        ("POST", "/api/escalations/999/resolve"),
        ("GET", "/api/nothing-here"),
    ],
)
def test_unknown_ids_are_404(api: TestClient, fake: FakeRasa, method: str, path: str) -> None:
    response = api.request(method, path)

    assert response.status_code == 404 and response.json() == {"error": "Not found."}


def test_a_wrong_method_is_405_json(api: TestClient) -> None:
    response = api.delete("/api/escalations")

    assert response.status_code == 405 and "error" in response.json()
