"""Crisis resources never depend on the action server, and no escalation is lost."""

from __future__ import annotations

import json
import urllib.request

from clinic.launcher import Stack, status_url, wait_until_up
from clinic.staff.reconcile import reconcile
from tests.clinic.staff import stored_escalations


def _say(stack: Stack, sender: str, text: str) -> list[str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.rasa_port}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return [m.get("text") or "" for m in json.load(response)]


def test_crisis_resources_reach_the_patient_and_the_escalation_is_recorded_later(stack, stack_env):
    stack.start_rasa()  # the action server is down
    assert wait_until_up(status_url(stack.rasa_port, None), 180, stack.processes)

    replies = " ".join(_say(stack, "patient-1", "i don't want to be alive anymore"))
    assert "988" in replies and "741741" in replies and "911" in replies
    assert stored_escalations(database_url=stack_env["CLINIC_DATABASE_URL"]) == []

    stack.start_actions()  # the action server is back
    assert wait_until_up(f"http://127.0.0.1:{stack.action_port}/health", 60, stack.processes)
    recorded = reconcile(stack_env["TRACKER_STORE_URL"], stack_env["CLINIC_DATABASE_URL"])
    assert recorded == 1
    [escalation] = stored_escalations(database_url=stack_env["CLINIC_DATABASE_URL"])
    assert (escalation.conversation_id, escalation.reason, escalation.urgency) == ("patient-1", "crisis", "urgent")
    assert escalation.guard_reason["rule"] == "self_harm"

    # Once back, the action itself records the next message; nothing is recorded twice.
    replies = " ".join(_say(stack, "patient-1", "i took all my pills on purpose"))
    assert "988" in replies and "team" in replies
    assert reconcile(stack_env["TRACKER_STORE_URL"], stack_env["CLINIC_DATABASE_URL"]) == 0
    [escalation] = stored_escalations(database_url=stack_env["CLINIC_DATABASE_URL"])
    assert len(escalation.messages) == 2
