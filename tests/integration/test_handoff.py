"""Hand-off end to end: a web patient, the real assistant, and staff replying through Rasa's API."""

from __future__ import annotations

from clinic.rasa_api import hand_back, send_staff_reply
from clinic.staff.transcript import read_transcript
from tests.clinic.staff import stored_escalations
from tests.integration.patient import SocketPatient


def test_staff_hold_the_conversation_reply_on_its_channel_and_hand_it_back(running_stack) -> None:
    env = running_stack.env
    api = f"http://127.0.0.1:{running_stack.rasa_port}"
    patient = SocketPatient(running_stack.rasa_port)
    try:
        patient.say("i'm on lithium and lamictal, is ketamine safe for me?")
        told = " ".join(patient.replies())
        assert "clinical team" in told and "911" in told

        # While staff hold it: no answer, an acknowledgement, and the message is attached for staff.
        patient.say("how much does an infusion cost?")
        held = patient.replies(wait=4)
        assert len(held) == 1 and "Your message is with our team" in held[0] and "$" not in held[0]
        [escalation] = stored_escalations(database_url=env["CLINIC_DATABASE_URL"])
        assert escalation.conversation_id == patient.session_id and escalation.channel == "socketio"
        assert [m.reason for m in escalation.messages] == ["medical_question", "handoff"]

        # A crisis still gets the crisis resources at once, and makes the escalation urgent.
        patient.say("honestly i just want to kill myself")
        crisis = " ".join(patient.replies())
        assert "988" in crisis and "911" in crisis
        [escalation] = stored_escalations(database_url=env["CLINIC_DATABASE_URL"])
        assert escalation.urgency == "urgent"

        # A staff reply reaches the patient's browser and is in the transcript.
        delivery = send_staff_reply(patient.session_id, "Hi, this is Dana, a nurse at the clinic.",
                                    staff_name="Dana", base_url=api)
        assert delivery.ok, delivery.error
        assert patient.replies() == ["Hi, this is Dana, a nurse at the clinic."]
        transcript = read_transcript(patient.session_id, tracker_url=env["TRACKER_STORE_URL"])
        assert ("staff", "Dana") in [(e.sender, e.staff_name) for e in transcript]
        assert [e.text for e in transcript if e.sender == "patient"][:2] == [
            "i'm on lithium and lamictal, is ketamine safe for me?", "how much does an infusion cost?"]

        # Handed back: the bot says so, then answers FAQs again.
        assert hand_back(patient.session_id, base_url=api).ok
        back = " ".join(patient.replies())
        assert "virtual assistant" in back
        patient.say("how much does an infusion cost?")
        assert any("$" in text for text in patient.replies())
    finally:
        patient.close()
