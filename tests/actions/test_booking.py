"""actions.booking: the booking, reschedule and cancel forms' validation, questions and submissions."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions._common import FORM_SLOTS, profile_cache
from actions.booking import (
    REQUEST,
    ActionAskBookingConfirmed,
    ActionAskCancelConfirmed,
    ActionAskSlotChoice,
    ActionAskSmsConsent,
    ActionAskVisitReason,
    ActionCancelBookingForm,
    ActionStopManageBooking,
    ActionSubmitBooking,
    ActionSubmitCancel,
    ActionSubmitReschedule,
    ValidateBookingForm,
    ValidateCancelForm,
    ValidateRescheduleForm,
)
from clinic.booking import service as booking
from clinic.booking.scheduling import SchedulerUnavailable, Slot
from clinic.booking.scheduling.builtin import BuiltinScheduler, opening_slots
from clinic.clock import as_utc
from clinic.db import Booking, BookingRequest, session_scope
from tests.clinic.booking.scheduling.helpers import draft

SAFETY_INTENTS = {"crisis", "medical_question", "request_human"}
FORMS = ("booking_form", "reschedule_form", "cancel_form")


def run(action, dispatcher, tracker, domain) -> list[dict[str, Any]]:
    return asyncio.run(action.run(dispatcher, tracker, domain))


def tracker(text: str, intent: str = "inform", *, slots: dict[str, Any] | None = None, form: str | None = None,
            channel: str = "socketio", sender: str = "conv-1", entities: list[dict[str, Any]] | None = None,
            confidence: float = 1.0, after_user: list[dict[str, Any]] | None = None) -> Tracker:
    """A tracker whose latest event is a patient message (plus ``after_user`` events)."""
    parse_data = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": entities or [],
                  "message_id": "msg-1"}
    events = [
        {"event": "action", "name": "action_session_start", "timestamp": 1.0},
        {"event": "action", "name": "action_listen", "timestamp": 2.0},
        {"event": "user", "text": text, "parse_data": parse_data, "input_channel": channel, "timestamp": 3.0},
        *(after_user or []),
    ]
    return Tracker.from_dict({
        "sender_id": sender, "slots": {"handoff": False, **(slots or {})}, "latest_message": parse_data,
        "events": events, "paused": False, "followup_action": None,
        "active_loop": {"name": form} if form else {}, "latest_action_name": "action_listen",
    })


def answer(slot: str, value: Any, text: str | None = None, *, form: str = "booking_form",
           slots: dict[str, Any] | None = None, **kwargs: Any) -> Tracker:
    """The tracker after the patient answered the form's question for ``slot``."""
    return tracker(str(value) if text is None else text, form=form,
                   slots={"requested_slot": slot, **(slots or {}), slot: value},
                   after_user=[{"event": "slot", "name": slot, "value": value, "timestamp": 3.1}], **kwargs)


def said(dispatcher: CollectingDispatcher) -> list[str]:
    return [m.get("response") for m in dispatcher.messages]


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


@pytest.fixture
def profile(use_profile):
    return profile_cache().get()


@pytest.fixture
def future_slots(profile) -> list[Slot]:
    """Open slots of the clinic from tomorrow on (the actions use the real clock)."""
    now = datetime.now(timezone.utc)
    return opening_slots(profile, now + timedelta(days=1), now + timedelta(days=8))


def offered_value(slots: list[Slot], preferred: datetime | None = None) -> dict[str, Any]:
    return {"preferred": preferred.isoformat() if preferred else None,
            "slots": [[s.start.isoformat(), s.end.isoformat()] for s in slots]}


# ------------------------------------------------------------------ the domain


@pytest.mark.parametrize("form", [ValidateBookingForm, ValidateRescheduleForm, ValidateCancelForm],
                         ids=lambda form: form.__name__)
def test_form_validators_match_the_domain(domain, form) -> None:
    # an action that needs the domain is listed as {name: {send_domain: true}}
    listed = {a if isinstance(a, str) else next(iter(a)) for a in domain["actions"]}
    action = form()

    assert action.name() in listed and action.form_name() in domain["forms"]
    assert {action.name(): {"send_domain": True}} in domain["actions"]  # rasa-sdk forms read it


@pytest.mark.parametrize(
    "action",
    [ActionAskVisitReason, ActionAskSmsConsent, ActionAskSlotChoice, ActionAskBookingConfirmed,
     ActionAskCancelConfirmed, ActionSubmitBooking, ActionSubmitReschedule, ActionSubmitCancel,
     ActionCancelBookingForm, ActionStopManageBooking],
    ids=lambda action: action.__name__,
)
def test_action_names_match_the_domain(domain, action) -> None:
    assert action().name() in domain["actions"]


def test_every_form_slot_is_cleared_when_a_form_is_left(domain) -> None:
    form_slots = {slot for form in FORMS for slot in domain["forms"][form]["required_slots"]}

    assert form_slots | {"offered_slots", "booking_ref", "lookup_attempts", "requested_slot"} == set(FORM_SLOTS)


@pytest.mark.parametrize("form", FORMS)
def test_no_form_answer_can_be_a_crisis_a_medical_question_or_a_request_for_a_person(domain, form: str) -> None:
    text_mappings = [
        (slot, mapping)
        for slot in domain["forms"][form]["required_slots"]
        for mapping in domain["slots"][slot]["mappings"]
        if mapping["type"] == "from_text"
    ]

    assert [slot for slot, mapping in text_mappings if not set(mapping["not_intent"]) >= SAFETY_INTENTS] == []


# ------------------------------------------------------------------ answers


@pytest.mark.parametrize(
    ("slot", "typed", "value"),
    [
        ("patient_name", "my name is Ana María López", "Ana María López"),
        ("phone", "you can reach me at (312) 555-0123", "+13125550123"),
        ("email", "Ana.Lopez@Example.com", "Ana.Lopez@example.com"),
        ("email", "skip", "none"),
        ("email", "no thanks", "none"),
        ("visit_reason", "mostly anxiety", "anxiety"),
        ("visit_reason", "ptsd", "PTSD"),
        ("visit_reason", "something else", "other"),
        ("patient_type", "yes", "new"),
        ("patient_type", "I've been there before", "returning"),
        ("sms_consent", "yes please", True),
        ("sms_consent", "no", False),
        ("booking_confirmed", "yes", True),
    ],
)
def test_a_good_answer_is_kept_cleaned(use_profile, dispatcher, domain, slot: str, typed: str, value: Any) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer(slot, typed), domain)

    assert slots_of(events)[slot] == value
    assert dispatcher.messages == []


@pytest.mark.parametrize(
    ("slot", "entity", "value"),
    [
        ("email", "none", "none"),
        ("visit_reason", "chronic pain", "chronic pain"),
        ("patient_type", "returning", "returning"),
    ],
)
def test_a_button_answer_is_kept(use_profile, dispatcher, domain, slot: str, entity: str, value: str) -> None:
    button = answer(slot, entity, text=f'/inform{{"{slot}":"{entity}"}}')
    events = run(ValidateBookingForm(), dispatcher, button, domain)

    assert slots_of(events)[slot] == value


@pytest.mark.parametrize(("intent", "value"), [("affirm", True), ("deny", False)])
def test_a_yes_or_no_button_is_kept(use_profile, dispatcher, domain, intent: str, value: bool) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer("sms_consent", f"/{intent}", intent=intent), domain)

    assert slots_of(events)["sms_consent"] is value


@pytest.mark.parametrize(
    ("slot", "typed", "response"),
    [
        ("patient_name", "12345", "utter_invalid_name"),
        ("patient_name", "thank you", "utter_invalid_name"),
        ("phone", "555-0123", "utter_invalid_phone"),
        ("phone", "call me", "utter_invalid_phone"),
        ("email", "ana@example", "utter_invalid_email"),
        ("visit_reason", "is it going to be a long appointment or a short one today?", "utter_invalid_visit_reason"),
        ("patient_type", "hmm", "utter_invalid_patient_type"),
        ("sms_consent", "maybe", "utter_invalid_yes_no"),
        ("booking_confirmed", "hmm", "utter_invalid_yes_no"),
        ("preferred_time", "whenever", "utter_invalid_time_vague"),
        ("preferred_time", "yesterday", "utter_invalid_time_past"),
        ("preferred_time", "sunday at 10am", "utter_invalid_time_closed"),
        ("preferred_time", "when pigs fly", "utter_invalid_time"),
        ("preferred_time", "in 400 days", "utter_invalid_time_far"),
    ],
)
def test_a_bad_answer_is_asked_again_saying_what_was_wrong(use_profile, dispatcher, domain, slot: str, typed: str,
                                                           response: str) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer(slot, typed), domain)

    assert slots_of(events)[slot] is None
    assert said(dispatcher) == [response]


def test_a_blocked_date_is_named(use_profile, dispatcher, domain) -> None:
    blocked = (datetime.now(timezone.utc) + timedelta(days=10)).date()
    if blocked.weekday() == 6:  # a Sunday is closed anyway
        blocked += timedelta(days=1)
    use_profile(booking={**profile_cache().get().booking.dict(), "blocked_dates": [blocked.isoformat()]})

    run(ValidateBookingForm(), dispatcher, answer("preferred_time", f"{blocked:%B} {blocked.day}, {blocked.year}"),
        domain)

    assert said(dispatcher) == ["utter_invalid_time_blocked"]
    assert dispatcher.messages[0]["blocked_day"] == f"{blocked:%A, %B} {blocked.day}"


@pytest.mark.parametrize("slot", ["email", "visit_reason", "patient_type", "sms_consent", "booking_confirmed"])
def test_a_question_asked_instead_of_an_answer_is_answered(use_profile, dispatcher, domain, slot: str) -> None:
    events = run(ValidateBookingForm(), dispatcher,
                 answer(slot, "how much does an infusion cost and do you take insurance?", intent="faq_cost_insurance",
                        confidence=0.9), domain)

    assert slots_of(events)[slot] is None  # the form asks again
    assert said(dispatcher) == ["utter_faq_cost_insurance"]


@pytest.mark.parametrize(("typed", "kept"), [("Bo Park", "Bo Park"), ("Lee Parker Smith", "Lee Parker Smith"),
                                             ("is there parking?", None), ("parking", None), ("bo park", None)])
def test_a_name_taken_for_an_faq_is_still_a_name(use_profile, dispatcher, domain, typed: str, kept: str | None) -> None:
    asked = tracker(typed, "faq_clinic_info", form="booking_form", slots={"requested_slot": "patient_name"})

    events = run(ValidateBookingForm(), dispatcher, asked, domain)

    assert slots_of(events).get("patient_name") == kept


# ------------------------------------------------------------------ the preferred time and the offers


def test_a_preferred_time_gets_up_to_three_offers(clinic_db, profile, dispatcher, domain) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer("preferred_time", "next Tuesday at 10am"), domain)

    values = slots_of(events)
    when = datetime.fromisoformat(values["preferred_time"])
    offers = [datetime.fromisoformat(start) for start, _ in values["offered_slots"]["slots"]]
    assert (when.strftime("%A"), when.hour, when.minute) == ("Tuesday", 10, 0)
    assert when.utcoffset().total_seconds() in (-5 * 3600, -6 * 3600)  # Chicago
    assert [(o.strftime("%A"), o.hour, o.minute) for o in offers] == [
        ("Tuesday", 9, 30), ("Tuesday", 10, 0), ("Tuesday", 10, 30)]
    assert values["offered_slots"]["preferred"] == values["preferred_time"]
    assert dispatcher.messages == []


def test_as_soon_as_possible_offers_the_earliest_times(clinic_db, profile, dispatcher, domain) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer("preferred_time", "asap"), domain)

    values = slots_of(events)
    earliest, _ = booking.bookable_window(profile)
    first = datetime.fromisoformat(values["offered_slots"]["slots"][0][0])
    assert values["offered_slots"]["preferred"] is None
    assert earliest <= as_utc(first) <= earliest + timedelta(days=3)


def test_when_the_backend_is_down_the_booking_becomes_a_request(use_profile, dispatcher, domain,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args, **kwargs):
        raise SchedulerUnavailable("Cal.com answered HTTP 503")

    monkeypatch.setattr(booking, "offers", down)

    events = run(ValidateBookingForm(), dispatcher, answer("preferred_time", "next Tuesday at 10am"), domain)

    values = slots_of(events)
    assert values["slot_choice"] == REQUEST and values["preferred_time"]  # kept: nothing is lost
    assert said(dispatcher) == ["utter_scheduler_down"]


def test_no_open_time_near_the_preference_asks_for_another(use_profile, dispatcher, domain,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(booking, "offers", lambda *args, **kwargs: [])

    events = run(ValidateBookingForm(), dispatcher, answer("preferred_time", "next Tuesday at 10am"), domain)

    assert slots_of(events)["preferred_time"] is None
    assert said(dispatcher) == ["utter_no_slots_near"]


@pytest.mark.parametrize(("typed", "index"), [("2", 1), ("the first one", 0), ("3", 2)])
def test_an_offered_slot_is_chosen(use_profile, future_slots, dispatcher, domain, typed: str, index: int) -> None:
    offers = future_slots[:3]
    events = run(ValidateBookingForm(), dispatcher,
                 answer("slot_choice", typed, slots={"offered_slots": offered_value(offers)}), domain)

    assert slots_of(events)["slot_choice"] == offers[index].start.isoformat()


def test_a_button_of_an_earlier_offer_is_kept_for_booking_to_check(
    use_profile, future_slots, dispatcher, domain
) -> None:
    stale = future_slots[5].start.isoformat()

    events = run(ValidateBookingForm(), dispatcher,
                 answer("slot_choice", stale, slots={"offered_slots": offered_value(future_slots[:3])}), domain)

    assert slots_of(events)["slot_choice"] == stale


def test_other_times_asks_for_another_preferred_time(use_profile, future_slots, dispatcher, domain) -> None:
    events = run(ValidateBookingForm(), dispatcher,
                 answer("slot_choice", "other", text='/inform{"slot_choice":"other"}',
                        slots={"offered_slots": offered_value(future_slots[:3]), "preferred_time": "x"}), domain)

    assert slots_of(events) == {"slot_choice": None, "preferred_time": None, "offered_slots": None}
    assert said(dispatcher) == ["utter_booking_other_times"]


def test_a_new_time_instead_of_a_choice_gets_new_offers(clinic_db, future_slots, dispatcher, domain) -> None:
    events = run(ValidateBookingForm(), dispatcher,
                 answer("slot_choice", "do you have next wednesday at 3pm instead",
                        slots={"offered_slots": offered_value(future_slots[:3])}), domain)

    values = slots_of(events)
    assert values["slot_choice"] is None
    assert [datetime.fromisoformat(s).strftime("%A %H:%M") for s, _ in values["offered_slots"]["slots"]] == [
        "Wednesday 14:30", "Wednesday 15:00", "Wednesday 15:30"]


def test_no_at_the_summary_goes_back_to_choosing_a_time(use_profile, dispatcher, domain) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer("booking_confirmed", "no", intent="deny"), domain)

    assert slots_of(events) == {"booking_confirmed": None, "slot_choice": None, "preferred_time": None,
                                "offered_slots": None}
    assert said(dispatcher) == ["utter_booking_change"]


# ------------------------------------------------------------------ SMS and stopping


def test_on_sms_the_senders_number_is_used_and_not_asked(use_profile, dispatcher, domain) -> None:
    sms = tracker("book me in", "book_consultation", channel="twilio", sender="+13125550123")

    events = run(ValidateBookingForm(), dispatcher, sms, domain)

    assert slots_of(events)["phone"] == "+13125550123"
    assert dispatcher.messages == []


def test_on_the_web_the_number_is_asked(use_profile, dispatcher, domain) -> None:
    web = tracker("book me in", "book_consultation", channel="socketio", sender="+13125550123")

    assert "phone" not in slots_of(run(ValidateBookingForm(), dispatcher, web, domain))


@pytest.mark.parametrize("slot", ["patient_name", "email", "visit_reason", "sms_consent", "slot_choice"])
@pytest.mark.parametrize("typed", ["never mind", "stop", "cancel"])
def test_a_whole_message_stop_leaves_the_form(use_profile, dispatcher, domain, slot: str, typed: str) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer(slot, typed), domain)

    assert events == [
        SlotSet(slot, None), SlotSet("requested_slot", None), FollowupAction("action_cancel_booking_form")
    ]


def test_a_stop_word_at_activation_starts_the_form(use_profile, dispatcher, domain) -> None:
    starting = tracker("cancel", "cancel_booking")  # "cancel" outside a form starts the cancel form

    assert not any(e.get("event") == "followup" for e in run(ValidateCancelForm(), dispatcher, starting, domain))


def test_stopping_keeps_nothing(dispatcher, domain) -> None:
    events = run(ActionCancelBookingForm(), dispatcher, tracker("stop", "deny", form="booking_form",
                                                                 slots={"patient_name": "Ana López"}), domain)

    assert events == [ActiveLoop(None), *(SlotSet(slot, None) for slot in FORM_SLOTS)]
    assert said(dispatcher) == ["utter_booking_cancelled"]


# ------------------------------------------------------------------ questions with live content


def test_visit_reasons_are_the_clinics_conditions(use_profile, dispatcher, domain) -> None:
    run(ActionAskVisitReason(), dispatcher, tracker("x"), domain)

    [message] = dispatcher.messages
    assert message["response"] == "utter_ask_visit_reason"
    assert [b["title"] for b in message["buttons"]] == ["Depression", "Anxiety", "PTSD", "OCD", "Chronic pain",
                                                        "Something else"]
    assert message["buttons"][2]["payload"] == '/inform{"visit_reason":"PTSD"}'


def test_the_offers_are_buttons_with_the_slot_in_the_payload(use_profile, future_slots, dispatcher, domain) -> None:
    offers = future_slots[:3]
    preferred = offers[1].start

    asking = tracker("x", slots={"offered_slots": offered_value(offers, preferred)})
    run(ActionAskSlotChoice(), dispatcher, asking, domain)

    [message] = dispatcher.messages
    assert message["response"] == "utter_ask_slot_choice"
    assert message["preferred_time_display"].endswith(("CST", "CDT"))
    assert [b["payload"] for b in message["buttons"]] == [
        *(f'/inform{{"slot_choice":"{s.start.isoformat()}"}}' for s in offers), '/inform{"slot_choice":"other"}']
    assert message["buttons"][-1]["title"] == "Other times"


def test_the_summary_repeats_everything_before_booking(use_profile, future_slots, dispatcher, domain) -> None:
    chosen = future_slots[0]
    slots = {"patient_name": "Ana López", "phone": "+13125550123", "email": "none", "visit_reason": "anxiety",
             "patient_type": "new", "sms_consent": True, "slot_choice": chosen.start.isoformat(),
             "offered_slots": offered_value([chosen])}

    run(ActionAskBookingConfirmed(), dispatcher, tracker("x", slots=slots, form="booking_form"), domain)

    [message] = dispatcher.messages
    assert message["response"] == "utter_ask_booking_confirmed"
    assert (message["email_display"], message["visit_reason_display"], message["patient_type_display"],
            message["reminders_display"], message["phone_display"]) == (
        "none", "anxiety", "first visit", "yes", "(312) 555-0123")
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/deny"]


def test_with_the_webhook_backend_the_summary_is_a_request(use_profile, future_slots, dispatcher, domain) -> None:
    use_profile(booking={**profile_cache().get().booking.dict(), "backend": "webhook",
                         "blocked_dates": [], "calcom_event_type_id": None})
    slots = {"patient_name": "Ana", "phone": "+13125550123", "slot_choice": future_slots[0].start.isoformat()}

    run(ActionAskBookingConfirmed(), dispatcher, tracker("x", slots=slots, form="booking_form"), domain)

    assert said(dispatcher) == ["utter_ask_request_confirmed"]


def test_reminders_are_asked_for_the_number_given(use_profile, dispatcher, domain) -> None:
    run(ActionAskSmsConsent(), dispatcher, tracker("x", slots={"phone": "+13125550123"}), domain)

    assert dispatcher.messages[0]["phone_display"] == "(312) 555-0123"


# ------------------------------------------------------------------ booking


def _confirmed(chosen: Slot, **changes: Any) -> dict[str, Any]:
    return {"patient_name": "Ana López", "phone": "+13125550123", "email": "ana@example.com",
            "visit_reason": "depression", "patient_type": "new", "sms_consent": True,
            "preferred_time": chosen.start.isoformat(), "offered_slots": offered_value([chosen]),
            "slot_choice": chosen.start.isoformat(), "booking_confirmed": True, **changes}


def test_submitting_books_the_slot_and_confirms_with_the_code(clinic_db, future_slots, dispatcher, domain) -> None:
    chosen = future_slots[0]

    events = run(ActionSubmitBooking(), dispatcher, tracker("yes", "affirm", slots=_confirmed(chosen),
                                                            channel="twilio", sender="+13125550123"), domain)

    assert events == [SlotSet(slot, None) for slot in FORM_SLOTS]
    [message] = dispatcher.messages
    with session_scope(clinic_db) as session:
        row = session.execute(select(Booking)).scalar_one()
        assert (row.full_name, row.phone, row.email, row.visit_reason, row.channel, row.sms_consent) == (
            "Ana López", "+13125550123", "ana@example.com", "depression", "twilio", True)
        assert as_utc(row.starts_at) == as_utc(chosen.start)
        assert message == {**message, "response": "utter_booking_confirmed", "booking_code": row.code}
    assert message["preferred_time_display"].endswith(("CST", "CDT"))


def test_a_slot_taken_meanwhile_offers_other_slots(clinic_db, profile, future_slots, dispatcher, domain) -> None:
    chosen = future_slots[0]
    BuiltinScheduler(profile).book(draft(chosen.start, conversation_id="someone-else"))

    events = run(ActionSubmitBooking(), dispatcher, tracker("yes", "affirm", slots=_confirmed(chosen)), domain)

    assert said(dispatcher) == ["utter_slot_taken"]
    assert events[-1] == FollowupAction("booking_form")
    values = slots_of(events)
    assert values["slot_choice"] is None and values["booking_confirmed"] is None
    offered = [as_utc(datetime.fromisoformat(s)) for s, _ in values["offered_slots"]["slots"]]
    assert len(offered) == 3 and as_utc(chosen.start) not in offered


def test_a_failing_backend_sends_a_request_and_says_so(clinic_db, future_slots, dispatcher, domain,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from clinic.booking.scheduling.builtin import BuiltinScheduler as Builtin

    def down(self, draft, database_url=None):
        raise SchedulerUnavailable("down")

    monkeypatch.setattr(Builtin, "book", down)

    run(ActionSubmitBooking(), dispatcher, tracker("yes", "affirm", slots=_confirmed(future_slots[0])), domain)

    assert said(dispatcher) == ["utter_booking_fallback"]
    [request] = booking.list_requests(database_url=clinic_db)
    assert (request.fallback_reason, request.full_name, request.visit_reason) == (
        "backend_unavailable", "Ana López", "depression")


def test_a_request_when_the_calendar_could_not_be_read(clinic_db, future_slots, dispatcher, domain) -> None:
    slots = _confirmed(future_slots[0], slot_choice=REQUEST, offered_slots=offered_value([]))

    run(ActionSubmitBooking(), dispatcher, tracker("yes", "affirm", slots=slots), domain)

    assert said(dispatcher) == ["utter_booking_fallback"]
    assert [r.preferred_time for r in booking.list_requests(database_url=clinic_db)] == [as_utc(future_slots[0].start)]


def test_submitting_when_the_database_fails(broken_db, use_profile, future_slots, dispatcher, domain) -> None:
    events = run(ActionSubmitBooking(), dispatcher, tracker("yes", "affirm", slots=_confirmed(future_slots[0])), domain)

    assert events == []  # the answers are kept, so nothing the patient typed is lost
    assert said(dispatcher) == ["utter_booking_failed"]


def test_a_form_left_early_books_nothing(clinic_db, dispatcher, domain) -> None:
    assert run(ActionSubmitBooking(), dispatcher, tracker("never mind", "deny"), domain) == []
    assert dispatcher.messages == []


def test_twenty_simultaneous_bookings_of_one_slot(database_url: str, use_profile, future_slots, domain,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINIC_DATABASE_URL", database_url)
    chosen = future_slots[0]

    async def everyone() -> list[tuple[list[dict[str, Any]], CollectingDispatcher]]:
        async def one(number: int):
            dispatcher = CollectingDispatcher()
            patient = tracker("yes", "affirm", slots=_confirmed(chosen, patient_name=f"Patient {number}"),
                              sender=f"conv-{number}")
            return await ActionSubmitBooking().run(dispatcher, patient, domain), dispatcher

        return await asyncio.gather(*(one(n) for n in range(20)))

    results = asyncio.run(everyone())

    outcomes = Counter(said(dispatcher)[0] for _, dispatcher in results)
    assert outcomes == {"utter_booking_confirmed": 1, "utter_slot_taken": 19}
    for events, dispatcher in results:
        if said(dispatcher) == ["utter_slot_taken"]:  # offered other slots, the form asks again
            offered = [as_utc(datetime.fromisoformat(s)) for s, _ in slots_of(events)["offered_slots"]["slots"]]
            assert offered and as_utc(chosen.start) not in offered and events[-1] == FollowupAction("booking_form")
    with session_scope(database_url) as session:
        assert len(session.execute(select(Booking)).scalars().all()) == 1


# ------------------------------------------------------------------ rescheduling and cancelling


@pytest.fixture
def existing(clinic_db, profile, future_slots):
    """A booking of the first future slot, made earlier."""
    return BuiltinScheduler(profile).book(draft(future_slots[0].start)).appointment


def test_a_booking_is_found_by_phone_and_code(existing, dispatcher, domain) -> None:
    found = answer("booking_code", existing.code.lower(), form="reschedule_form", slots={"phone": "+13125550123"})

    values = slots_of(run(ValidateRescheduleForm(), dispatcher, found, domain))

    assert values["booking_code"] == existing.code and values["booking_ref"]["id"] == existing.id
    assert said(dispatcher) == ["utter_booking_found"]


def test_a_wrong_code_asks_again_and_three_end_the_search(existing, dispatcher, domain) -> None:
    wrong = answer("booking_code", "ZZZZZZ", form="cancel_form", slots={"phone": "+13125550123"})

    first = slots_of(run(ValidateCancelForm(), dispatcher, wrong, domain))
    assert (first["booking_code"], first["lookup_attempts"], first["phone"]) == (None, 1, None)
    assert said(dispatcher) == ["utter_booking_not_found"]

    last = answer("booking_code", "ZZZZZZ", form="cancel_form", slots={"phone": "+13125550123", "lookup_attempts": 2})
    events = run(ValidateCancelForm(), CollectingDispatcher(), last, domain)
    assert events[-1] == FollowupAction("action_stop_manage_booking")
    assert SlotSet("requested_slot", None) in events


def test_on_sms_a_wrong_code_keeps_the_senders_number(existing, dispatcher, domain) -> None:
    wrong = answer("booking_code", "ZZZZZZ", form="cancel_form", slots={"phone": "+13125550123"},
                   channel="twilio", sender="+13125550123")

    assert "phone" not in slots_of(run(ValidateCancelForm(), dispatcher, wrong, domain))


def test_rescheduling_offers_exclude_the_current_booking(existing, future_slots, dispatcher, domain) -> None:
    ref = {"kind": "booking", "id": existing.id, "code": existing.code, "start": existing.start.isoformat(),
           "end": existing.end.isoformat(), "status": "booked", "backend": "builtin"}
    when = future_slots[0].start
    typed = f"{when:%A %B} {when.day} at {when:%-I:%M%p}"

    events = run(ValidateRescheduleForm(), dispatcher,
                 answer("preferred_time", typed, form="reschedule_form", slots={"booking_ref": ref}), domain)

    offered = [as_utc(datetime.fromisoformat(s)) for s, _ in slots_of(events)["offered_slots"]["slots"]]
    assert offered and as_utc(existing.start) not in offered


def test_submitting_a_reschedule_moves_the_booking(existing, clinic_db, future_slots, dispatcher, domain) -> None:
    ref = {"kind": "booking", "id": existing.id, "code": existing.code, "start": existing.start.isoformat(),
           "end": existing.end.isoformat(), "status": "booked", "backend": "builtin"}
    new = future_slots[4]
    slots = {"booking_ref": ref, "phone": "+13125550123", "preferred_time": new.start.isoformat(),
             "offered_slots": offered_value([new]), "slot_choice": new.start.isoformat(), "booking_confirmed": True}

    events = run(ActionSubmitReschedule(), dispatcher, tracker("yes", "affirm", slots=slots), domain)

    assert said(dispatcher) == ["utter_booking_moved"] and dispatcher.messages[0]["booking_code"] == existing.code
    assert events == [SlotSet(slot, None) for slot in FORM_SLOTS]
    assert [b.start for b in booking.list_bookings(database_url=clinic_db)] == [as_utc(new.start)]


def test_the_cancel_question_quotes_the_policy(existing, dispatcher, domain) -> None:
    ref = {"kind": "booking", "id": existing.id, "code": existing.code, "start": existing.start.isoformat()}

    run(ActionAskCancelConfirmed(), dispatcher, tracker("x", slots={"booking_ref": ref}), domain)

    assert said(dispatcher) == ["utter_ask_cancel_confirmed"]
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == ["/affirm", "/deny"]
    assert "{cancellation_policy}" in next(v["text"] for v in domain["responses"]["utter_ask_cancel_confirmed"])


@pytest.mark.parametrize(("confirmed", "response", "status"),
                         [(True, "utter_booking_cancelled_done", "cancelled"), (False, "utter_booking_kept", "booked")])
def test_submitting_a_cancellation(existing, clinic_db, dispatcher, domain, confirmed: bool, response: str,
                                   status: str) -> None:
    ref = {"kind": "booking", "id": existing.id, "code": existing.code, "start": existing.start.isoformat(),
           "backend": "builtin", "status": "booked"}

    cancelling = tracker("x", slots={"booking_ref": ref, "cancel_confirmed": confirmed})
    run(ActionSubmitCancel(), dispatcher, cancelling, domain)

    assert said(dispatcher) == [response]
    with session_scope(clinic_db) as session:
        assert session.execute(select(Booking.status)).scalar_one() == status


def test_a_failing_cancellation_is_a_request_for_staff(existing, clinic_db, dispatcher, domain,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def down(self, appointment, by, database_url=None):
        raise SchedulerUnavailable("down")

    monkeypatch.setattr(BuiltinScheduler, "cancel", down)
    ref = {"kind": "booking", "id": existing.id, "code": existing.code, "start": existing.start.isoformat(),
           "backend": "builtin", "status": "booked"}

    run(ActionSubmitCancel(), dispatcher, tracker("x", slots={"booking_ref": ref, "cancel_confirmed": True}), domain)

    assert said(dispatcher) == ["utter_cancel_requested"]
    with session_scope(clinic_db) as session:
        assert session.execute(select(BookingRequest.kind)).scalar_one() == "cancel"


def test_stopping_a_change_keeps_the_booking(dispatcher, domain) -> None:
    events = run(ActionStopManageBooking(), dispatcher, tracker("never mind", "deny", form="cancel_form"), domain)

    assert events == [ActiveLoop(None), *(SlotSet(slot, None) for slot in FORM_SLOTS)]
    assert said(dispatcher) == ["utter_manage_stopped"]


def test_after_three_wrong_codes_stopping_says_nothing_more(dispatcher, domain) -> None:
    run(ActionStopManageBooking(), dispatcher, tracker("ZZZZZZ", slots={"lookup_attempts": 3}, form="cancel_form"),
        domain)

    assert dispatcher.messages == []


# ------------------------------------------------------------------ other backends, through the actions


@pytest.fixture
def calcom(use_profile, future_slots, monkeypatch: pytest.MonkeyPatch):
    from tests.clinic.booking.scheduling.servers import API_KEY, FakeCalcom

    server = FakeCalcom(free={as_utc(s.start) for s in future_slots[:6]}).start()
    use_profile(booking={**profile_cache().get().booking.dict(), "backend": "calcom", "calcom_event_type_id": 4242})
    monkeypatch.setenv("CALCOM_API_KEY", API_KEY)
    monkeypatch.setenv("CALCOM_API_URL", server.url)
    yield server
    server.stop()


def test_with_calcom_the_offers_and_the_booking_are_calcoms(clinic_db, calcom, future_slots, dispatcher,
                                                            domain) -> None:
    when = future_slots[2].start
    typed = f"{when:%A %B} {when.day} at {when:%-I:%M%p}"
    values = slots_of(run(ValidateBookingForm(), dispatcher, answer("preferred_time", typed), domain))
    offers = [as_utc(datetime.fromisoformat(s)) for s, _ in values["offered_slots"]["slots"]]
    assert offers and set(offers) <= calcom.free

    chosen = Slot(datetime.fromisoformat(values["offered_slots"]["slots"][0][0]),
                  datetime.fromisoformat(values["offered_slots"]["slots"][0][1]))
    run(ActionSubmitBooking(), dispatcher, tracker("yes", "affirm", slots=_confirmed(chosen)), domain)

    assert said(dispatcher)[-1] == "utter_booking_confirmed"
    [made] = booking.list_bookings(database_url=clinic_db)
    assert made.backend == "calcom" and made.external_uid in calcom.bookings


def test_with_calcom_down_the_booking_is_a_request_and_nothing_is_lost(clinic_db, calcom, future_slots, dispatcher,
                                                                       domain) -> None:
    from tests.clinic.booking.scheduling.servers import error

    calcom.fail_with = error(503, "ServiceUnavailableException", "maintenance")

    run(ActionSubmitBooking(), dispatcher, tracker("yes", "affirm", slots=_confirmed(future_slots[0])), domain)

    assert said(dispatcher) == ["utter_booking_fallback"]
    [request] = booking.list_requests(database_url=clinic_db)
    assert (request.full_name, request.email, request.visit_reason, request.sms_consent, request.fallback_reason) == (
        "Ana López", "ana@example.com", "depression", True, "backend_unavailable")


def test_with_the_webhook_backend_the_request_is_posted_signed(clinic_db, use_profile, future_slots, dispatcher,
                                                               domain, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.clinic.booking.scheduling.servers import WebhookReceiver

    secret = "whsec_action_test_0123456789"
    receiver = WebhookReceiver(secret).start()
    try:
        use_profile(booking={**profile_cache().get().booking.dict(), "backend": "webhook"})
        monkeypatch.setenv("BOOKING_WEBHOOK_URL", receiver.url)
        monkeypatch.setenv("BOOKING_WEBHOOK_SECRET", secret)

        run(ActionSubmitBooking(), dispatcher, tracker("yes", "affirm", slots=_confirmed(future_slots[0])), domain)
    finally:
        receiver.stop()

    assert said(dispatcher) == ["utter_booking_requested"]
    assert receiver.verified == [True]
    [request] = booking.list_requests(database_url=clinic_db)
    assert (request.backend, request.webhook_status, request.code) == (
        "webhook", "delivered", dispatcher.messages[0]["booking_code"])
