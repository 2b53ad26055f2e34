"""Bad input through the REST channel: a polite answer, never an error; nothing lost."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest

BAD_INPUTS = {
    "empty": "",
    "whitespace": "   \n\t  ",
    "huge": ("how much does it cost? " * 900)[:20_000],
    "emoji": "🙂🙂🙏",
    "binary": "\x00\x01\x02\x7f\x1b[0m\ufffd\ufffd\x03",
    "spanish": "¿Cuánto cuesta una consulta?",
    "chinese": "氯胺酮治疗多少钱",
    "markup": "<script>alert(1)</script>",
}


def _post(stack, path: str, payload: dict | None = None):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.rasa_port}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.load(response)


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_gets_a_polite_answer_and_is_kept(running_stack, kind):
    sender, text = f"bad-{kind}-{uuid.uuid4().hex[:8]}", BAD_INPUTS[kind]
    status, replies = _post(running_stack, "/webhooks/rest/webhook", {"sender": sender, "message": text})
    assert status == 200
    assert replies and all(r.get("text") for r in replies), replies
    assert not any("error" in r["text"].lower() for r in replies)

    _, tracker = _post(running_stack, f"/conversations/{sender}/tracker")
    users = [e for e in tracker["events"] if e["event"] == "user"]
    # stored whole, not truncated or dropped (Rasa's UserMessage strips surrounding whitespace)
    assert [u["text"] for u in users] == [text.strip()]


def test_huge_message_still_sees_a_crisis_at_its_end(running_stack):
    text = "so I was reading about infusions. " * 580 + "honestly I just want to kill myself"
    message = {"sender": f"huge-{uuid.uuid4().hex[:8]}", "message": text}
    _, replies = _post(running_stack, "/webhooks/rest/webhook", message)
    assert "988" in " ".join(r.get("text") or "" for r in replies)
