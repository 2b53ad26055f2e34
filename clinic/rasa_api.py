"""Staff to patient through Rasa's HTTP API: replies, holding the conversation for staff, and
handing it back.

A staff reply is a ``bot`` event appended to the conversation with
``output_channel=latest&execute_side_effects=true``: Rasa records it in the tracker (so the
transcript is complete) and sends it on the channel the patient last wrote from, which works
while the bot is holding the conversation for staff. Handing back triggers the
``EXTERNAL_handoff_resolved`` intent, whose rule tells the patient the assistant is back.

Nothing here raises for a delivery problem: the result says what went wrong, for the console.
"""

from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass
from typing import Any

import requests

from clinic.channels import SMS_CHANNEL
from clinic.settings import rasa_api_token, rasa_url
from clinic.staff.transcript import STAFF_METADATA_KEY

logger = logging.getLogger(__name__)

HANDBACK_INTENT = "EXTERNAL_handoff_resolved"
HANDOFF_SLOT = "handoff"
# Channels whose Rasa connector can send a message the patient did not just ask for.
PUSH_CHANNELS = frozenset({"socketio", SMS_CHANNEL})
TIMEOUT = 10.0


@dataclass(frozen=True)
class Delivery:
    """Whether a message reached the patient's channel, and if not, why."""

    ok: bool
    error: str | None = None


def send_staff_reply(
    conversation_id: str,
    text: str,
    *,
    staff_name: str,
    base_url: str | None = None,
    token: str | None = None,
    database_url: str | None = None,
) -> Delivery:
    """Sends a staff member's reply to the patient on their own channel.

    The web widget labels it as from the clinic team (the ``clinic_staff`` metadata reaches
    the socket.io connector). A reply to a number that texted STOP is refused, with the
    reason, before anything is recorded or sent.

    Args:
        conversation_id: Rasa sender id (the phone number on SMS).
        text: the reply (already checked by the caller: not empty, not too long).
        staff_name: shown to staff in the transcript (stored in the event's metadata).
        base_url: Rasa's address (default ``RASA_URL``).
        token: Rasa's API token (default ``RASA_API_TOKEN``).
        database_url: the clinic database with the SMS opt-outs (default ``CLINIC_DATABASE_URL``).
    """
    api = _Api(base_url or rasa_url(), token if token is not None else rasa_api_token())
    channel, problem = api.latest_channel(conversation_id)
    if problem:
        return Delivery(False, problem)
    if channel not in PUSH_CHANNELS:
        return Delivery(
            False, f"the patient's channel ({channel or 'none'}) cannot receive messages sent by staff"
        )
    if channel == SMS_CHANNEL:
        refusal = _sms_refusal(conversation_id, database_url)
        if refusal:
            return Delivery(False, refusal)
    event = {"event": "bot", "text": text, "metadata": {STAFF_METADATA_KEY: staff_name}}
    _, problem = api.post(
        f"/conversations/{_quote(conversation_id)}/tracker/events",
        event,
        {"output_channel": "latest", "execute_side_effects": "true"},
    )
    if problem:
        return Delivery(False, problem)
    logger.info("staff reply delivered (channel=%s)", channel)
    return Delivery(True)


def hand_back(conversation_id: str, *, base_url: str | None = None, token: str | None = None) -> Delivery:
    """Returns the conversation to the assistant, which tells the patient so.

    The state changes even when the patient's channel cannot be pushed to (the REST test
    channel); only an unreachable or refusing Rasa is a failure.
    """
    api = _Api(base_url or rasa_url(), token if token is not None else rasa_api_token())
    _, problem = api.post(
        f"/conversations/{_quote(conversation_id)}/trigger_intent",
        {"name": HANDBACK_INTENT},
        {"output_channel": "latest"},
    )
    return Delivery(problem is None, problem)


def hold_for_staff(conversation_id: str, *, base_url: str | None = None, token: str | None = None) -> Delivery:
    """Puts the conversation into hand-off (its ``handoff`` slot), as an escalating action does.

    Nothing is sent to the patient; from the next message on, the assistant holds the
    conversation for staff until they hand it back.
    """
    api = _Api(base_url or rasa_url(), token if token is not None else rasa_api_token())
    _, problem = api.post(
        f"/conversations/{_quote(conversation_id)}/tracker/events",
        {"event": "slot", "name": HANDOFF_SLOT, "value": True},
        {"include_events": "NONE"},
    )
    return Delivery(problem is None, problem)


def _sms_refusal(phone: str, database_url: str | None) -> str | None:
    """Why a text to ``phone`` must not be sent (it opted out), or None."""
    from clinic.channels.sms import opted_out_since

    try:
        since = opted_out_since(phone, database_url)
    except Exception:  # noqa: BLE001 - unknown state: do not text a number that may have opted out
        logger.exception("cannot read the SMS opt-out state; the staff reply is not sent")
        return "the patient's SMS opt-out state could not be checked (clinic database unavailable); not sent"
    if since is None:
        return None
    return (
        f"the patient opted out of texts (replied STOP on {since:%Y-%m-%d %H:%M} UTC); nothing can be "
        "sent to this number until they text START"
    )


def _quote(conversation_id: str) -> str:
    """The id as a URL path for Rasa's ``<conversation_id:path>`` routes.

    Rasa's Sanic router does not percent-decode path parameters: ``%2B15550100000`` would address
    a different (empty) conversation than the SMS sender ``+15550100000``. So every character
    allowed in a path stays as it is; only what must be encoded (spaces, ``?``, ``#``, ``%``,
    non-ASCII), which none of the channels' ids contain, is encoded.
    """
    return urllib.parse.quote(conversation_id, safe="/+@:=,;!$&'()*~")


class _Api:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def _params(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        params = dict(extra or {})
        if self.token:
            params["token"] = self.token
        return params

    def latest_channel(self, conversation_id: str) -> tuple[str | None, str | None]:
        body, problem = self._call(
            "GET", f"/conversations/{_quote(conversation_id)}/tracker", None, {"include_events": "NONE"}
        )
        if problem:
            return None, problem
        return (body or {}).get("latest_input_channel"), None

    def post(self, path: str, payload: Any, params: dict[str, str]) -> tuple[Any, str | None]:
        return self._call("POST", path, payload, params)

    def _call(self, method: str, path: str, payload: Any, params: dict[str, str] | None) -> tuple[Any, str | None]:
        try:
            response = requests.request(
                method, self.base_url + path, json=payload, params=self._params(params), timeout=TIMEOUT
            )
        except requests.Timeout:
            return None, "the assistant server did not answer in time"
        except requests.RequestException as exc:
            return None, f"the assistant server is unreachable ({type(exc).__name__})"
        if response.status_code in (401, 403):
            return None, "the assistant server refused the request (check RASA_API_TOKEN)"
        if response.status_code >= 400:
            return None, f"the assistant server answered {response.status_code}: {_reason(response)}"
        try:
            return response.json(), None
        except ValueError:
            return None, "the assistant server sent an unreadable answer"


def _reason(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or "error"
    return str(body.get("message") or body.get("reason") or response.reason)[:200]
