"""Bad input through the REST channel: a polite answer, never an error; nothing lost. A message
over the channel's limit (4,000 characters) is refused with a clear answer instead."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

BAD_INPUTS = {
    "empty": "",
    "whitespace": "   \n\t  ",
    "huge": ("how much does it cost? " * 900)[:4_000],  # the REST channel's limit (MAX_MESSAGE_CHARS)
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
    text = "so I was reading about infusions. " * 115 + "honestly I just want to kill myself"
    assert len(text) <= 4_000
    message = {"sender": f"huge-{uuid.uuid4().hex[:8]}", "message": text}
    _, replies = _post(running_stack, "/webhooks/rest/webhook", message)
    assert "988" in " ".join(r.get("text") or "" for r in replies)


def test_a_message_over_the_limit_is_refused_with_a_clear_answer_and_not_kept(running_stack):
    sender = f"bad-toolong-{uuid.uuid4().hex[:8]}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post(running_stack, "/webhooks/rest/webhook", {"sender": sender, "message": "how much? " * 401})
    assert refused.value.code == 413
    assert "Please send a shorter message" in json.load(refused.value)["error"]

    _, tracker = _post(running_stack, f"/conversations/{sender}/tracker")
    assert [e for e in tracker["events"] if e["event"] == "user"] == []
