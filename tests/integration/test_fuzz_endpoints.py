"""Fuzz tests of every public endpoint's request bodies: no answer is a server error (5xx), and a
refused request writes nothing.

Hypothesis generates the bodies: random JSON (objects, arrays, null, numbers, deep nesting),
long strings, wrong content types, binary junk, invalid UTF-8, form fields with odd names and
values, and patient texts with ``/intent{...}`` and ``EXTERNAL_`` syntax. Runs are derandomized
(the same examples on every run, so CI is reproducible), bounded (the module takes about 40 s on
two cores, 10 s of it starting the assistant; each example has a deadline) and keep no example
database.

- Rasa, the real assistant started once for the module (``RASA_API_TOKEN`` set, the SMS line
  pointed at a local stand-in for Twilio's Messages API): the REST webhook, the Twilio webhook
  (unsigned or forged requests, and forms signed with the test auth token), the socket.io
  channel's long-polling endpoint.
- The staff console, in process on the assistant's clinic database (as tests/clinic/staff/console
  do): the sign-in form, the JSON API with and without a token, the conversation forms with and
  without a session, static files.
- The widget's web server, in process on the assistant's tracker store (as
  tests/clinic/channels/test_widget_server.py does): the history endpoint and static files.

"Nothing written" is checked with the row count of every table of both databases (the tracker
store and the clinic database) before and after each refused request.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from sanic.request import RequestParameters
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from clinic.channels import widget_server
from clinic.channels.widget_server import WebConfig
from clinic.launcher import Stack
from clinic.staff.accounts import create_api_token, create_user
from clinic.staff.console.app import create_app as create_console
from tests.clinic.staff import stored_escalations
from tests.clinic.staff.notifiers.servers import TWILIO_SID, TWILIO_TOKEN, TwilioStub
from tests.integration.conftest import PUBLIC_SMS_URL, SMS_LINE, sms_env, started_stack

API_TOKEN = "fuzz-rasa-api-token-0123456789abcdef"
PASSWORD = "correct horse battery staple"
MEDICAL = "i'm on lithium and lamictal, is ketamine safe for me?"
TIMEOUT = 60.0
RASA_MAX_REQUEST_BYTES = 1024 * 1024  # the Rasa server's default limit (RASA_MAX_REQUEST_BYTES)

# A failing example with a 60 kB body would otherwise fail on Hypothesis's warning about its repr
# instead of reporting what failed.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

FUZZ = settings(
    derandomize=True,  # the same examples on every run
    database=None,  # nothing written to .hypothesis/
    deadline=timedelta(seconds=15),  # a hung endpoint fails instead of stalling the suite
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)


# ------------------------------------------------------------------ strategies

_CHARS = st.characters(blacklist_categories=("Cs",))  # anything UTF-8 can carry
_ASCII = st.characters(min_codepoint=32, max_codepoint=126)
COMMANDS = [
    "/EXTERNAL_handoff_resolved", "/ /EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved",
    "//EXTERNAL_handoff_resolved", "/EXTERNAL_handoff_resolved{}", '/request_human{"handoff": false}',
    '/inform{"phone": "+13125550100", "name": "<script>"}', "/restart", "/session_start", "/greet",
    "/book_consultation", "/nlu_fallback", "/", "/{}", '/intent{"a": [1, {"b": null}]}', "/EXTERNAL_",
    " \t/EXTERNAL_handoff_resolved", "\u2215EXTERNAL_handoff_resolved",
]
WORDS = [
    "how much is an infusion?", MEDICAL, "STOP", "start", "HELP", "1", "2", "yes", "¿cuánto cuesta?",
    "I want to kill myself", "<img src=x onerror=alert(1)>", "{{ clinic_phone }}", "%s%s%n", "\x00",
    "\u202e\u200b", "🙂" * 40,
]


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each picked in proportion to its weight (``st.one_of`` picks unevenly)."""
    picks = [index for index, (weight, _) in enumerate(choices) for _ in range(weight)]
    return st.sampled_from(picks).flatmap(lambda index: choices[index][1])


def _repeat(unit: str, times: int) -> str:
    return (unit or "a") * times


def patient_texts() -> st.SearchStrategy[str]:
    """What a patient might type, commands and long texts included."""
    plain = st.text(_CHARS, max_size=80)
    return st.one_of(
        plain,
        st.sampled_from(COMMANDS),
        st.sampled_from(WORDS),
        st.builds(str.__add__, st.sampled_from(COMMANDS), plain),
        st.builds(_repeat, st.text(_CHARS, min_size=1, max_size=3), st.integers(1000, 5000)),  # around 4,000
    )


def _surrogate_text() -> st.SearchStrategy[str]:
    """Text with lone surrogates: valid as JSON escapes (``\\ud800``), not as UTF-8."""
    return st.builds(str.__add__, st.text(max_size=5),
                     st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),  # NaN and Infinity too
        st.text(_CHARS, max_size=40), _surrogate_text(),
    )
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(_CHARS, max_size=12), children,
                                                                        max_size=5),
        max_leaves=max_leaves,
    )


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # ASCII: NaN, Infinity and lone surrogates as escapes


def deeply_nested(max_depth: int) -> st.SearchStrategy[bytes]:
    """Arrays or objects nested far beyond Python's recursion limit."""
    openers = st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'{"session_id":', b"}"), (b'{"message":[', b"]}")])
    # beyond about 950 levels Python's json module gives up (RecursionError)
    depths = weighted((1, st.sampled_from([d for d in (1_500, 5_000, 30_000, 200_000) if d <= max_depth])),
                      (1, st.integers(500, max_depth)))
    return st.builds(lambda pair, depth: pair[0] * depth + b"1" + pair[1] * depth, openers, depths)


def junk() -> st.SearchStrategy[bytes]:
    """Binary junk and invalid UTF-8, alone or inside otherwise valid JSON."""
    invalid = st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf"])
    return st.one_of(
        st.binary(max_size=300),
        st.builds(lambda bad: b'{"sender": "fuzz-junk", "message": "hi ' + bad + b'"}', invalid),
        st.builds(lambda bad: b'{"session_id": "' + bad + b'"}', invalid),
        st.builds(lambda bad: b"From=%2B13125550150&Body=" + bad, invalid),
        st.sampled_from([b"", b" ", b"null", b"[]", b"{}", b"0", b"-1e999", b'"x"', b"true", b"\x00", b"{", b'{"a":}']),
    )


CONTENT_TYPES = [
    "application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=fuzz", "application/octet-stream", "text/xml", "application/json; charset=latin-1",
    "", "*/*", "x/x;;q==1",
]


def content_types() -> st.SearchStrategy[str | None]:
    # HTTP allows no spaces around a header value (an empty one is sent as is)
    return st.one_of(st.none(), st.sampled_from(CONTENT_TYPES), st.text(_ASCII, max_size=30).map(str.strip))


def _phone(n: int) -> str:
    return f"+1312555{n:04d}"  # 555-01XX: reserved for fiction


def widget_tokens() -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("ABCdef0189_-"), min_size=43, max_size=43)


def rest_ids() -> st.SearchStrategy[str]:
    """Ids the REST channel accepts (random ones may still look like another channel's)."""
    return st.one_of(st.builds(lambda n: f"fuzz-{n}", st.integers(0, 9)),
                     st.text(st.sampled_from("abcXYZ019_.:@+-"), min_size=1, max_size=40))


def conversation_ids() -> st.SearchStrategy[Any]:
    """Ids of every channel's form, and things that are no id at all."""
    return st.one_of(
        rest_ids(),
        st.builds(_phone, st.integers(100, 199)),
        st.builds(lambda n: f"whatsapp:{_phone(n)}", st.integers(100, 199)),
        widget_tokens(),
        st.just("5fbd1d68470e49b3b6ac9e47b8da6113"),  # Rasa's id for a socket that asked for none
        st.sampled_from(["default", "", " ", "a" * 129, "fuzz-ok\n", "../../etc/passwd", "x" * 300]),
        st.text(_CHARS, max_size=30),
        json_values(max_leaves=3),
    )


# ------------------------------------------------------------------ the assistant and its databases


@pytest.fixture(scope="module", autouse=True)
def _hypothesis_files_outside_the_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Hypothesis caches (Unicode tables, constants) go to a temp dir, not ./.hypothesis."""
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)


@pytest.fixture(scope="module")
def stack(model: str, twilio: TwilioStub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var = tmp_path_factory.mktemp("fuzz")
    env = sms_env(var, twilio, RASA_API_TOKEN=API_TOKEN, SMS_RETRY_DELAYS="0.2")
    with started_stack(model, env, log_dir=var / "logs") as running:
        yield running


@pytest.fixture
def stack_environment(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The in-process console reaches the assistant's Rasa and databases as the launcher's would."""
    for name in ("CLINIC_DATABASE_URL", "TRACKER_STORE_URL", "RASA_API_TOKEN"):
        monkeypatch.setenv(name, stack.env[name])
    monkeypatch.setenv("RASA_URL", _rasa(stack))
    return stack


def _rasa(stack: Stack, path: str = "") -> str:
    return f"http://127.0.0.1:{stack.rasa_port}{path}"


def _sqlite_path(stack: Stack, variable: str) -> str:
    return stack.env[variable].removeprefix("sqlite:///")


def row_counts(stack: Stack) -> dict[str, int]:
    """The number of rows of every table of the tracker store and the clinic database."""
    counts = {}
    for variable in ("TRACKER_STORE_URL", "CLINIC_DATABASE_URL"):
        with closing(sqlite3.connect(_sqlite_path(stack, variable), timeout=10)) as db:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                [(count,)] = db.execute(f'SELECT count(*) FROM "{table}"').fetchall()
                counts[f"{variable}:{table}"] = count
    return counts


def settled(stack: Stack, quiet: float = 1.0, timeout: float = 30.0) -> dict[str, int]:
    """The row counts once nothing has been written for ``quiet`` seconds (background work done)."""
    deadline = time.monotonic() + timeout
    counts, since = row_counts(stack), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = row_counts(stack)
        if now != counts:
            counts, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return counts


def user_intents(stack: Stack, conversation_id: str) -> list[str | None]:
    """The intents the assistant read in a conversation's patient messages."""
    with closing(sqlite3.connect(_sqlite_path(stack, "TRACKER_STORE_URL"), timeout=10)) as db:
        rows = db.execute("SELECT intent_name FROM events WHERE sender_id = ? AND type_name = 'user'",
                          (conversation_id,)).fetchall()
    return [intent for (intent,) in rows]


def assert_no_typed_commands(stack: Stack, conversation_id: str) -> None:
    intents = user_intents(stack, conversation_id)
    assert not [i for i in intents if (i or "").startswith("EXTERNAL_")], (conversation_id, intents)


def _changed(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int | None, int | None]]:
    return {key: (before.get(key), after.get(key)) for key in set(before) | set(after)
            if before.get(key) != after.get(key)}


def assert_nothing_written(stack: Stack, before: dict[str, int], answer: Any) -> None:
    changed = _changed(before, row_counts(stack))
    assert not changed, f"refused with {answer.status_code} but wrote {changed}"


def assert_no_server_error(answer: Any) -> None:
    assert answer.status_code < 500, f"{answer.status_code}: {answer.text[:300]!r}"


def _headers(content_type: str | None, **extra: str) -> dict[str, str]:
    return {**({"Content-Type": content_type} if content_type is not None else {}), **extra}


# ------------------------------------------------------------------ REST webhook


@dataclass(frozen=True)
class RestRequest:
    body: bytes
    content_type: str | None
    auth: str  # how the token is given: header, query, none, wrong, empty, basic
    stream: bool  # ?stream=true

    def sender(self) -> Any:
        try:
            payload = json.loads(self.body)
        except (ValueError, RecursionError):
            return None
        return payload.get("sender") if isinstance(payload, dict) else None


def _rest_bodies() -> st.SearchStrategy[bytes]:
    metadata = st.one_of(
        json_values(),
        st.dictionaries(st.sampled_from(["client", "source", "language", "locale", "timezone", "handoff", ""]),
                        json_values(max_leaves=3), max_size=6),
        st.builds(lambda n: {"client": "x" * n}, st.integers(1900, 3000)),  # around the 2 KB limit
    )
    extra = {"metadata": metadata, "input_channel": st.sampled_from(["twilio", "socketio", "rest", ""])}
    plausible = st.fixed_dictionaries({"sender": rest_ids(), "message": patient_texts()}, optional=extra).map(_dumps)
    odd = st.fixed_dictionaries(
        {"sender": conversation_ids(), "message": st.one_of(patient_texts(), json_values(4))},
        optional={**extra, "sender_id": conversation_ids(), "text": patient_texts()},
    ).map(_dumps)
    oversize = st.builds(lambda n: b'{"sender": "fuzz-big", "message": "' + b"a" * n + b'"}',
                         st.integers(RASA_MAX_REQUEST_BYTES - 100, RASA_MAX_REQUEST_BYTES + 300_000))
    # most requests could be accepted (they reach the assistant); the rest are refused for their body
    return weighted((6, plausible), (2, odd), (1, json_values().map(_dumps)), (1, deeply_nested(200_000)), (1, junk()),
                    (1, oversize))


def rest_requests() -> st.SearchStrategy[RestRequest]:
    content_type = weighted((3, st.just("application/json")), (1, content_types()))
    auth = st.sampled_from(["header"] * 4 + ["query"] * 2 + ["none", "wrong", "empty", "basic"])
    return st.builds(RestRequest, _rest_bodies(), content_type, auth, st.sampled_from([False, False, False, True]))


def _post_rest(client: httpx.Client, stack: Stack, request: RestRequest) -> httpx.Response:
    params, headers = {"stream": "true"} if request.stream else {}, _headers(request.content_type)
    if request.auth == "header":
        headers["Authorization"] = f"Bearer {API_TOKEN}"
    elif request.auth == "query":
        params["token"] = API_TOKEN
    elif request.auth == "wrong":
        params["token"] = API_TOKEN[:-1]
    elif request.auth == "empty":
        headers["Authorization"] = "Bearer"
    elif request.auth == "basic":
        headers["Authorization"] = f"Basic {API_TOKEN}"
    return client.post(_rasa(stack, "/webhooks/rest/webhook"), content=request.body, params=params, headers=headers)


def test_rest_webhook_bodies(stack: Stack) -> None:
    with httpx.Client(timeout=TIMEOUT) as client:

        @settings(FUZZ, max_examples=200)
        @given(request=rest_requests())
        def fuzz(request: RestRequest) -> None:
            before = row_counts(stack)
            answer = _post_rest(client, stack, request)
            assert_no_server_error(answer)
            if request.auth not in ("header", "query"):
                assert answer.status_code in (401, 413), answer.text[:300]
            if answer.status_code in (400, 401, 403):  # the channel's refusals say what to fix
                assert answer.json()["error"]
            if answer.status_code >= 400:
                assert_nothing_written(stack, before, answer)
            else:
                assert request.stream or isinstance(answer.json(), list)
                assert_no_typed_commands(stack, request.sender())

        fuzz()
    assert user_intents(stack, "default") == []  # no shared conversation for requests without a sender


# ------------------------------------------------------------------ Twilio webhook

FIELD_NAMES = ["From", "Body", "To", "MessageSid", "SmsSid", "AccountSid", "NumMedia", "MediaUrl0",
               "MediaContentType0", "FromCountry", "ApiVersion"]


def _field_values() -> st.SearchStrategy[str]:
    return st.one_of(
        patient_texts(), st.builds(_phone, st.integers(100, 199)), st.text(_CHARS, max_size=30),
        st.integers(-(2**70), 2**70).map(str), st.sampled_from(["", " ", "-1", "NaN", "1e999", "0x10", "+", "%"]),
    )


def odd_forms(names: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Form fields as posted (repeated names allowed): Twilio's names and any others."""
    names = names if names is not None else st.one_of(st.sampled_from(FIELD_NAMES), st.text(_CHARS, max_size=20))
    return st.lists(st.tuples(names, _field_values()), max_size=12)


def _encoded(fields: list[tuple[str, str]]) -> bytes:
    return urlencode(fields).encode()


def _form_as_parsed(body: bytes, content_type: str | None) -> RequestParameters:
    """The fields as the webhook reads them (what Twilio's signature covers)."""
    if (content_type or "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return RequestParameters()
    try:
        return RequestParameters(parse_qs(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return RequestParameters()


def _sign(body: bytes, content_type: str | None, url: str = PUBLIC_SMS_URL, token: str = TWILIO_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, _form_as_parsed(body, content_type))


def _post_twilio(client: httpx.Client, stack: Stack, body: bytes, content_type: str | None,
                 signature: str | None) -> httpx.Response:
    headers = _headers(content_type, **({"X-Twilio-Signature": signature} if signature is not None else {}))
    return client.post(_rasa(stack, "/webhooks/twilio/webhook"), content=body, headers=headers)


FORM = "application/x-www-form-urlencoded"


def _forged_signature(body: bytes, content_type: str | None, forgery: str, random_signature: str) -> str | None:
    local_url = "http://127.0.0.1/webhooks/twilio/webhook"
    return {
        "unsigned": None,
        "empty": "",
        "random": random_signature,
        "other token": _sign(body, content_type, token="not-the-auth-token"),
        "other url": _sign(body, content_type, url=local_url),
        # signed for the form plus a field that was not sent
        "other fields": RequestValidator(TWILIO_TOKEN).compute_signature(
            PUBLIC_SMS_URL, RequestParameters({**_form_as_parsed(body, content_type), "Forged": ["1"]})),
    }[forgery]


def test_twilio_webhook_refuses_unsigned_and_forged_requests(stack: Stack) -> None:
    with httpx.Client(timeout=TIMEOUT) as client:

        @settings(FUZZ, max_examples=150)
        @given(
            body=weighted((3, odd_forms().map(_encoded)), (1, junk()),
                          (1, st.builds(lambda fields: _dumps(dict(fields)), odd_forms()))),
            content_type=weighted((3, st.just(FORM)), (1, content_types())),
            forgery=st.sampled_from(["unsigned", "empty", "random", "other token", "other url", "other fields"]),
            random_signature=st.text(_ASCII, max_size=40).map(str.strip),
        )
        def fuzz(body: bytes, content_type: str | None, forgery: str, random_signature: str) -> None:
            before = row_counts(stack)
            signature = _forged_signature(body, content_type, forgery, random_signature)
            answer = _post_twilio(client, stack, body, content_type, signature)
            assert answer.status_code == 403, (answer.status_code, answer.text[:300])
            assert_nothing_written(stack, before, answer)

        fuzz()


def _without_sender_or_body() -> st.SearchStrategy[list[tuple[str, str]]]:
    """Signed forms Twilio would never send: ``From`` or ``Body`` missing (or ``From`` blank)."""
    other_names = st.one_of(st.sampled_from(FIELD_NAMES[2:]), st.text(_CHARS, max_size=20)).filter(
        lambda name: name not in ("From", "Body"))
    lacking = st.sampled_from([[], [("From", _phone(150))], [("Body", "hi")], [("From", " "), ("Body", "hi")],
                               [("From", ""), ("Body", "")]])
    return st.builds(lambda some, extra: some + extra, lacking, odd_forms(other_names))


def test_twilio_webhook_refuses_signed_forms_without_sender_or_text(stack: Stack) -> None:
    with httpx.Client(timeout=TIMEOUT) as client:

        @settings(FUZZ, max_examples=60)
        @given(fields=_without_sender_or_body(), content_type=weighted((3, st.just(FORM)), (1, content_types())))
        def fuzz(fields: list[tuple[str, str]], content_type: str | None) -> None:
            before = row_counts(stack)
            body = _encoded(fields)
            answer = _post_twilio(client, stack, body, content_type, _sign(body, content_type))
            assert answer.status_code == 400, (answer.status_code, answer.text[:300])
            assert_nothing_written(stack, before, answer)

        fuzz()


# ------------------------------------------------------------------ socket.io long-polling

SOCKETIO = "/socket.io/"


def _socketio_event_packets() -> st.SearchStrategy[str]:
    """Socket.io event packets in an engine.io message ("42..."): never ``session_request``."""
    payload = st.fixed_dictionaries(
        {"message": st.one_of(patient_texts(), json_values(3)), "session_id": conversation_ids()},
        optional={"metadata": st.one_of(json_values(4), st.text(_CHARS, max_size=30)), "customData": json_values(4)},
    )
    name = st.one_of(st.sampled_from(["user_uttered", "bot_uttered", "message", "connect", "disconnect"]),
                     st.text(_CHARS, max_size=20)).filter(lambda text: text != "session_request")
    return st.builds(
        lambda namespace, ack, event, args: f"42{namespace}{ack}{json.dumps([event, *args])}",
        st.sampled_from(["", "/,", "/other,"]), st.one_of(st.just(""), st.integers(0, 10**12).map(str)), name,
        st.lists(weighted((2, payload), (1, json_values(4))), max_size=3),
    )


def socketio_bodies() -> st.SearchStrategy[bytes]:
    packet = weighted(
        (3, _socketio_event_packets()),
        (1, st.sampled_from(["2", "3", "5", "6", "40", "41", "43", "44", "45-", "46", "4", "47", "0", "8", "b4AAA",
                             "bX", "42", "42[", "42[]", '42{"a": 1}', "42/other", "40/nowhere,"])),
        (1, st.builds(lambda depth: "42" + "[" * depth + "]" * depth, st.integers(500, 30_000))),
        (1, st.text(_CHARS, max_size=60)),
    )
    joined = st.lists(packet, min_size=1, max_size=4).map(lambda packets: "\x1e".join(packets).encode())
    return weighted((3, joined), (1, junk()))


def _handshake(client: httpx.Client, stack: Stack) -> str:
    answer = client.get(_rasa(stack, SOCKETIO), params={"EIO": "4", "transport": "polling"})
    answer.raise_for_status()
    return json.loads(answer.text[1:])["sid"]


def test_socketio_polling_bodies_write_nothing_without_a_joined_session(stack: Stack) -> None:
    """A socket that never joined a session (no ``session_request``) writes to no conversation,
    whatever it posts."""
    before = settled(stack)
    with httpx.Client(timeout=TIMEOUT) as client:

        @settings(FUZZ, max_examples=120)
        @given(body=socketio_bodies(), content_type=content_types(),
               session=st.sampled_from(["connected", "connected", "handshake only", "unknown", "none"]))
        def fuzz(body: bytes, content_type: str | None, session: str) -> None:
            params = {"EIO": "4", "transport": "polling"}
            if session != "none":
                params["sid"] = "fuzz-unknown-session" if session == "unknown" else _handshake(client, stack)
            if session == "connected":
                connected = client.post(_rasa(stack, SOCKETIO), params=params, content=b"40")
                assert connected.status_code == 200, connected.text
            answer = client.post(_rasa(stack, SOCKETIO), params=params, content=body,
                                 headers=_headers(content_type))
            assert_no_server_error(answer)
            # the session goes on (or is gone after a close packet or a refusal: 400)
            assert_no_server_error(client.post(_rasa(stack, SOCKETIO), params=params, content=b"3"))

        fuzz()
    after = settled(stack)
    assert not _changed(before, after)


def test_a_socketio_post_without_a_session_id_gets_400(stack: Stack) -> None:
    answer = httpx.post(_rasa(stack, SOCKETIO), params={"EIO": "4", "transport": "polling"}, content=b"40",
                        timeout=TIMEOUT)

    assert (answer.status_code, answer.text) == (400, "Invalid session")


@pytest.mark.parametrize("body", [
    b'42["user_uttered", {"message": "' + b"x" * 70_000 + b'"}]',  # over SOCKETIO_MAX_MESSAGE_BYTES
    b"2",  # a ping: only the server pings
], ids=["oversize", "unknown packet"])
def test_a_refused_socketio_post_is_answered_promptly_and_ends_the_session(stack: Stack, body: bytes) -> None:
    with httpx.Client(timeout=TIMEOUT) as client:
        params = {"EIO": "4", "transport": "polling", "sid": _handshake(client, stack)}
        assert client.post(_rasa(stack, SOCKETIO), params=params, content=b"40").status_code == 200
        started = time.monotonic()

        answer = client.post(_rasa(stack, SOCKETIO), params=params, content=body)

        assert answer.status_code == 400 and time.monotonic() - started < 5
        assert client.post(_rasa(stack, SOCKETIO), params=params, content=b"3").status_code == 400  # session gone


def test_a_socketio_session_closed_by_its_client_is_unknown_afterwards(stack: Stack) -> None:
    with httpx.Client(timeout=TIMEOUT) as client:
        params = {"EIO": "4", "transport": "polling", "sid": _handshake(client, stack)}
        assert client.post(_rasa(stack, SOCKETIO), params=params, content=b"40").status_code == 200
        assert client.post(_rasa(stack, SOCKETIO), params=params, content=b"1").status_code == 200  # close

        assert client.post(_rasa(stack, SOCKETIO), params=params, content=b"3").status_code == 400
        assert client.get(_rasa(stack, SOCKETIO), params=params).status_code == 400


# ------------------------------------------------------------------ staff console

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CONSOLE_URL = "https://testserver"


@dataclass
class Console:
    """The staff console in process, with a signed-in session and an API token."""

    client: TestClient
    signed_in: TestClient
    csrf: str
    api_token: str
    escalation_id: int  # open; the fuzz replies, claims and notes on it
    resolvable_id: int  # the one the fuzz may resolve
    victim: str  # an account whose password the fuzz guesses
    login_user: str  # an account the fuzz signs in with


def _csrf(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def _text_the_line(stack: Stack, phone: str, text: str) -> None:
    fields = {"From": phone, "To": SMS_LINE, "Body": text, "MessageSid": f"SM{secrets.token_hex(16)}",
              "AccountSid": TWILIO_SID, "NumMedia": "0"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_SMS_URL, fields)
    answer = httpx.post(_rasa(stack, "/webhooks/twilio/webhook"), data=fields,
                        headers={"X-Twilio-Signature": signature}, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text


def _escalation_of(stack: Stack, phone: str) -> int:
    database = stack.env["CLINIC_DATABASE_URL"]
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = [e.id for e in stored_escalations(database_url=database) if e.conversation_id == phone]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no escalation for {phone}")


@pytest.fixture(scope="module")
def console(stack: Stack) -> Iterator[Console]:
    database = stack.env["CLINIC_DATABASE_URL"]
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # cheap: tests only
    for username in ("fuzz-staff", "fuzz-victim", "fuzz-login"):
        create_user(username, PASSWORD, database_url=database, hasher=hasher)
    token = create_api_token("fuzz-staff", "fuzz", database_url=database).token
    phones = (_phone(190), _phone(191))
    for phone in phones:
        _text_the_line(stack, phone, MEDICAL)
    escalation_id, resolvable_id = (_escalation_of(stack, phone) for phone in phones)
    # A trusted proxy in front, so each example can come from its own address (X-Forwarded-For):
    # the sign-in throttle then refuses some addresses and lets others try passwords.
    app = create_console(database, password_hasher=hasher, trusted_proxies=[ip_network("127.0.0.1/32")])
    options = {"base_url": CONSOLE_URL, "raise_server_exceptions": False, "client": ("127.0.0.1", 50000),
               "follow_redirects": False}
    with TestClient(app, **options) as client, TestClient(app, **options) as signed_in:
        form = {"csrf_token": _csrf(signed_in.get("/login").text), "username": "fuzz-staff", "password": PASSWORD}
        assert signed_in.post("/login", data=form).status_code == 303
        csrf = _csrf(signed_in.get("/").text)
        settled(stack)
        yield Console(client, signed_in, csrf, token, escalation_id, resolvable_id, "fuzz-victim", "fuzz-login")


def _form_bodies(fields: st.SearchStrategy[list[tuple[str, str]]]) -> st.SearchStrategy[bytes]:
    """URL-encoded forms, and forms no browser sends: raw non-ASCII, bad percent-escapes, too many fields."""
    return weighted(
        (6, fields.map(_encoded)),
        (1, st.builds(lambda f: _encoded(f) + "&naïve=é".encode(), fields)),
        (1, st.builds(lambda f, bad: _encoded(f) + b"&x=" + bad, fields,
                      st.sampled_from([b"%ff", b"%c3%28", b"%", b"%e"]))),
        (1, st.builds(lambda f: _encoded(f + [(f"f{n}", "v") for n in range(25)]), fields)),
        (1, st.builds(lambda f: _dumps(dict(f)), fields)),
        (1, junk()),
    )


def _sign_in_forms(console: Console) -> st.SearchStrategy[tuple[list[tuple[str, str]], str, str]]:
    """(fields without the CSRF token, how the token is given, the fields' username)."""
    next_paths = st.one_of(st.sampled_from(["/", "//evil.example", "/\\evil.example", "https://evil.example",
                                            "/login?next=/", "/escalations/1", "/%0d%0aSet-Cookie:x=1", "\x00/"]),
                           st.text(_CHARS, max_size=40))
    credentials = st.one_of(
        st.just((console.login_user, PASSWORD)),
        st.tuples(st.sampled_from([console.victim, console.victim.upper(), f" {console.victim}"]),
                  st.text(_CHARS, max_size=30)),
        st.tuples(st.text(_CHARS, max_size=300), st.text(_CHARS, max_size=300)),
    )
    return st.builds(
        lambda creds, nxt, extra, csrf: ([("username", creds[0]), ("password", creds[1]), ("next", nxt), *extra],
                                         csrf, creds[0]),
        credentials, next_paths, odd_forms(), st.sampled_from(["right"] * 6 + ["missing", "wrong", "no cookie"]),
    )


def _addresses() -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str),
                     st.sampled_from(["unknown", "1.2.3.4, 127.0.0.1", "", "::ffff:10.0.0.1"]),
                     st.text(_ASCII, max_size=20).map(str.strip))


def test_console_sign_in_form_bodies(stack_environment: Stack, console: Console) -> None:
    stack = stack_environment

    @settings(FUZZ, max_examples=150)
    @given(form=_sign_in_forms(console), address=_addresses(),
           content_type=weighted((6, st.just(FORM)), (1, content_types())),
           mangle=st.sampled_from(["none", "none", "none", "encoding"]))
    def fuzz(form: tuple[list[tuple[str, str]], str, str], address: str | None, content_type: str | None,
             mangle: str) -> None:
        fields, csrf, username = form
        client = console.client
        client.cookies.clear()
        page = client.get("/login")
        token = _csrf(page.text)
        if csrf in ("right", "no cookie"):
            fields = [("csrf_token", token), *fields]
        elif csrf == "wrong":
            fields = [("csrf_token", token[::-1]), *fields]
        if csrf == "no cookie":
            client.cookies.clear()
        body = _encoded(fields)
        if mangle == "encoding":
            body = body + b"&x=%ff\xff"
        headers = _headers(content_type, **({"X-Forwarded-For": address} if address is not None else {}))
        before = row_counts(stack)
        answer = client.post("/login", content=body, headers=headers)
        assert_no_server_error(answer)
        if answer.status_code >= 400:
            assert_nothing_written(stack, before, answer)
        elif answer.status_code == 303:  # signed in: only with the password, and never sent elsewhere
            assert username == console.login_user and "console_session" in answer.cookies
            location = answer.headers["location"]
            assert location.startswith("/") and not location.startswith(("//", "/\\")), location
        else:  # the form again, with an error: no session
            assert answer.status_code == 200 and "console_session" not in answer.cookies
            changed = _changed(before, row_counts(stack))
            assert set(changed) <= {"CLINIC_DATABASE_URL:audit_events", "CLINIC_DATABASE_URL:staff_users"}, changed

    fuzz()


API_ROUTES = ["/api/me", "/api/escalations", "/api/escalations/{id}", "/api/escalations/{id}/claim",
              "/api/escalations/{id}/unassign", "/api/escalations/{id}/reply", "/api/escalations/{id}/notes",
              "/api/escalations/{id}/resolve", "/api", "/api/nowhere"]


def json_api_bodies() -> st.SearchStrategy[bytes]:
    plausible = st.fixed_dictionaries({"text": st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
                                                       max_size=200)},
                                      optional={"take_over": st.booleans()}).map(_dumps)
    shaped = st.fixed_dictionaries({}, optional={"text": st.one_of(patient_texts(), json_values(3)),
                                                 "take_over": json_values(2)}).map(_dumps)
    return weighted((5, plausible), (2, shaped), (1, json_values().map(_dumps)), (1, deeply_nested(30_000)),
                    (1, junk()), (1, st.builds(lambda n: _dumps({"text": "x" * n}), st.integers(60_000, 70_000))))


def test_console_api_without_a_valid_token(stack_environment: Stack, console: Console) -> None:
    stack = stack_environment

    @settings(FUZZ, max_examples=100)
    @given(route=st.sampled_from(API_ROUTES), method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
           body=json_api_bodies(), content_type=content_types(),
           authorization=st.one_of(st.none(), st.sampled_from(["Bearer", "Basic x", "bearer  x"]),
                                   st.text(_ASCII, max_size=40).map(lambda t: f"Bearer {t}".strip()),
                                   st.just(f"Token {console.api_token}"), st.just(f"Bearer {console.api_token}x")))
    def fuzz(route: str, method: str, body: bytes, content_type: str | None, authorization: str | None) -> None:
        before = row_counts(stack)
        headers = _headers(content_type, **({"Authorization": authorization} if authorization is not None else {}))
        answer = console.client.request(method, route.format(id=console.escalation_id), content=body,
                                        headers=headers)
        assert answer.status_code in (401, 413), (answer.status_code, answer.text[:300])
        assert_nothing_written(stack, before, answer)

    fuzz()


def _escalation_ids(console: Console) -> st.SearchStrategy[int]:
    return weighted((4, st.just(console.escalation_id)), (1, st.just(0)), (1, st.integers(1, 2**64)))


def test_console_api_bodies_with_a_token(stack_environment: Stack, console: Console) -> None:
    stack = stack_environment
    headers = {"Authorization": f"Bearer {console.api_token}"}
    actions = ["claim", "unassign", "reply", "reply", "notes", "notes", "resolve"]

    @settings(FUZZ, max_examples=150)
    @given(action=st.sampled_from(actions), escalation_id=_escalation_ids(console), body=json_api_bodies(),
           content_type=weighted((3, st.just("application/json")), (1, content_types())))
    def fuzz(action: str, escalation_id: int, body: bytes, content_type: str | None) -> None:
        if action == "resolve" and escalation_id == console.escalation_id:
            escalation_id = console.resolvable_id  # keep the other one open for replies
        before = row_counts(stack)
        answer = console.client.post(f"/api/escalations/{escalation_id}/{action}", content=body,
                                     headers={**headers, **_headers(content_type)})
        assert_no_server_error(answer)
        if answer.status_code >= 400:
            assert answer.json()["error"]
            assert_nothing_written(stack, before, answer)

    fuzz()


def test_console_api_refuses_json_nested_too_deep_with_400(stack_environment: Stack, console: Console) -> None:
    before = row_counts(stack_environment)

    answer = console.client.post(f"/api/escalations/{console.escalation_id}/notes", content=b"[" * 5000 + b"]" * 5000,
                                 headers={"Authorization": f"Bearer {console.api_token}",
                                          "Content-Type": "application/json"})

    assert answer.status_code == 400 and answer.json()["error"]
    assert_nothing_written(stack_environment, before, answer)


def test_console_api_queries_with_a_token(stack_environment: Stack, console: Console) -> None:
    stack = stack_environment
    names = st.sampled_from(["status", "filter", "cursor", "limit", "conversation_id", "phone", "after", "x"])

    @settings(FUZZ, max_examples=100)
    @given(query=st.lists(st.tuples(names, _field_values()), max_size=4))
    def fuzz(query: list[tuple[str, str]]) -> None:
        before = row_counts(stack)
        answer = console.client.get(f"/api/escalations?{urlencode(query)}",
                                    headers={"Authorization": f"Bearer {console.api_token}"})
        assert_no_server_error(answer)
        if answer.status_code >= 400:
            assert_nothing_written(stack, before, answer)

    fuzz()


def test_console_forms_with_and_without_a_session(stack_environment: Stack, console: Console) -> None:
    stack = stack_environment
    form_fields = odd_forms(st.one_of(st.sampled_from(["text", "take_over", "csrf_token"]),
                                      st.text(_CHARS, max_size=12)))

    @settings(FUZZ, max_examples=150)
    @given(action=st.sampled_from(["claim", "unassign", "reply", "reply", "notes", "notes", "resolve"]),
           escalation_id=_escalation_ids(console), body=_form_bodies(form_fields),
           content_type=weighted((6, st.just(FORM)), (1, content_types())),
           session=st.sampled_from(["signed in"] * 4 + ["none", "forged cookie"]),
           csrf=st.sampled_from(["field", "field", "header", "missing", "wrong"]))
    def fuzz(action: str, escalation_id: int, body: bytes, content_type: str | None, session: str,
             csrf: str) -> None:
        if action == "resolve" and escalation_id == console.escalation_id:
            escalation_id = console.resolvable_id
        headers = _headers(content_type)
        if csrf == "field":
            body = _encoded([("csrf_token", console.csrf)]) + b"&" + body
        elif csrf == "header":
            headers["X-CSRF-Token"] = console.csrf
        elif csrf == "wrong":
            headers["X-CSRF-Token"] = console.csrf[::-1]
        client = console.signed_in if session == "signed in" else console.client
        console.client.cookies.clear()
        if session == "forged cookie":
            console.client.cookies.set("console_session", "forged-session-token-0123456789abcdefghijk")
        before = row_counts(stack)
        answer = client.post(f"/escalations/{escalation_id}/{action}", content=body, headers=headers)
        assert_no_server_error(answer)
        if session != "signed in":  # to the sign-in page (an oversize body is refused before that)
            assert answer.status_code in (303, 413), answer.status_code
            assert answer.status_code == 413 or answer.headers["location"].startswith("/login")
        if session != "signed in" or answer.status_code >= 400:
            assert_nothing_written(stack, before, answer)

    fuzz()


# ------------------------------------------------------------------ widget web server and static files


@pytest.fixture(scope="module")
def web(stack: Stack) -> Iterator[TestClient]:
    config = WebConfig(rasa_port=stack.rasa_port, tracker_url=stack.env["TRACKER_STORE_URL"],
                       allowed_origins=("https://www.example-clinic.org",))
    with TestClient(widget_server.create_app(config), base_url="http://localhost:8000",
                    raise_server_exceptions=False) as client:
        yield client


def history_bodies() -> st.SearchStrategy[bytes]:
    shaped = st.fixed_dictionaries(
        {"session_id": weighted((2, widget_tokens()), (1, conversation_ids()))},
        optional={"after": weighted((2, st.integers(0, 100)), (1, st.integers(-(2**70), 2**70)), (1, json_values(2)),
                                    (1, st.sampled_from([True, False, -1, 2**63 - 1, 2**63, 1.5, "1", None])))},
    ).map(_dumps)
    return weighted((5, shaped), (1, json_values().map(_dumps)), (1, deeply_nested(2_000)), (1, junk()),
                    (1, st.builds(lambda n: _dumps({"session_id": "a" * n}), st.integers(4000, 70_000))))


def test_widget_history_bodies(stack: Stack, web: TestClient) -> None:
    @settings(FUZZ, max_examples=150)
    @given(body=history_bodies(), content_type=content_types(),
           origin=st.one_of(st.none(), st.sampled_from(["https://www.example-clinic.org", "https://evil.example",
                                                        "null"])))
    def fuzz(body: bytes, content_type: str | None, origin: str | None) -> None:
        before = row_counts(stack)
        answer = web.post("/api/history", content=body,
                          headers=_headers(content_type, **({"Origin": origin} if origin else {})))
        assert_no_server_error(answer)
        assert answer.headers.get("cache-control") == "no-store"
        if answer.status_code >= 400:
            assert answer.json()["error"]
        if answer.status_code == 200:
            assert isinstance(answer.json()["entries"], list)
        assert_nothing_written(stack, before, answer)  # reading the history never writes

    fuzz()


@pytest.mark.parametrize("body", [
    b"[" * 2000 + b"]" * 2000,
    b'{"session_id": "' + b"a" * 43 + b'", "after": false}',
    b'{"session_id": "' + b"a" * 43 + b'", "after": true}',
    b'{"session_id": "' + b"a" * 43 + b'", "after": ' + str(2**70).encode() + b"}",
], ids=["nested too deep", "after false", "after true", "after beyond 64 bits"])
def test_widget_history_refuses_malformed_requests_with_400(web: TestClient, body: bytes) -> None:
    answer = web.post("/api/history", content=body, headers={"Content-Type": "application/json"})

    assert answer.status_code == 400 and answer.json()["error"]


def _static_paths() -> st.SearchStrategy[str]:
    segment = st.one_of(
        st.sampled_from(["clinic-chat.js", "clinic-chat.css", "demo.css", "index.html", "..", "%2e%2e", "%2e%2e%2f",
                         "..%2f..%2fclinic.yml", "%00", "a%00.js", "%ff", "vendor", "socket.io.min.js", "", ".",
                         "..\\..\\clinic.yml", "~", "a" * 300, "%c0%ae%c0%ae"]),
        st.text(st.characters(min_codepoint=33, blacklist_categories=("Cc", "Cs"), blacklist_characters="#?/"),
                max_size=20),
    )
    files = st.sampled_from(["/widget/clinic-chat.js", "/widget/clinic-chat.css", "/demo/demo.css",
                             "/widget/vendor/socket.io.min.js", "/static/console.css", "/static/console.js"])
    # (a path starting with "//" would name a host to the client)
    odd = st.builds(lambda root, parts: "/" + (root + "/".join(parts)).lstrip("/"),
                    st.sampled_from(["/widget/", "/demo/", "/widget/vendor/", "/static/", "/"]),
                    st.lists(segment, min_size=1, max_size=4))
    return weighted((1, files), (2, odd))


def _served_files() -> set[bytes]:
    roots = [widget_server.WIDGET_DIR, widget_server.DEMO_DIR, Path(widget_server.SOCKET_IO_CLIENT).parent,
             Path(__file__).resolve().parents[2] / "clinic" / "staff" / "console" / "static"]
    return {path.read_bytes() for root in roots if root.exists() for path in root.rglob("*") if path.is_file()}


def test_static_files_of_the_web_server_and_the_console(stack: Stack, web: TestClient, console: Console) -> None:
    served = _served_files()

    @settings(FUZZ, max_examples=150)
    @given(path=_static_paths(), method=st.sampled_from(["GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
           body=st.one_of(st.just(b""), junk(), json_values().map(_dumps)), content_type=content_types(),
           server=st.sampled_from(["web", "console"]))
    def fuzz(path: str, method: str, body: bytes, content_type: str | None, server: str) -> None:
        client = web if server == "web" else console.client
        console.client.cookies.clear()
        before = row_counts(stack)
        answer = client.request(method, path, content=body, headers=_headers(content_type))
        assert_no_server_error(answer)
        if method == "GET" and answer.status_code == 200 and path.startswith(("/widget/", "/demo/", "/static/")):
            assert answer.content in served, f"{path} served something that is not a static file"
        if answer.status_code >= 400:
            assert_nothing_written(stack, before, answer)

    fuzz()


# ------------------------------------------------------------------ Twilio webhook: messages Twilio signs


def _sms_forms() -> st.SearchStrategy[list[tuple[str, str]]]:
    """Complete signed messages from the line's patients, with odd extra fields."""
    required = st.builds(lambda phone, text: [("From", phone), ("Body", text)],
                         st.builds(_phone, st.integers(150, 159)), st.one_of(patient_texts(), st.just("")))
    sid = st.one_of(st.just([]), st.builds(lambda n: [("MessageSid", f"SMfuzz{n}")], st.integers(0, 30)))
    return st.builds(lambda need, sids, extra: need + sids + extra, required, sid, odd_forms(
        st.one_of(st.sampled_from(["To", "NumMedia", "MediaUrl0", "AccountSid"]), st.text(_CHARS, max_size=12))))


def test_twilio_webhook_answers_every_signed_message_at_once(stack: Stack) -> None:
    """Runs last: the messages are processed in the background after the answer."""
    phones: set[str] = set()
    with httpx.Client(timeout=TIMEOUT) as client:

        @settings(FUZZ, max_examples=50)
        @given(fields=_sms_forms())
        def fuzz(fields: list[tuple[str, str]]) -> None:
            body = _encoded(fields)
            started = time.monotonic()
            answer = _post_twilio(client, stack, body, FORM, _sign(body, FORM))
            assert answer.status_code == 200, (answer.status_code, answer.text[:300])
            assert answer.headers["content-type"].startswith("text/xml")
            assert time.monotonic() - started < 2.0
            phones.add(fields[0][1])  # From

        fuzz()
    settled(stack, quiet=2.0)
    for phone in phones:
        assert_no_typed_commands(stack, phone)
    log = (Path(stack.log_dir or ".") / "rasa.log").read_text(encoding="utf-8", errors="replace")
    assert "could not be processed" not in log
