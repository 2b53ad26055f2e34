"""Evaluation harness (``make eval``): the running assistant on held-out labelled cases.

Starts the trained assistant and its action server on free ports with fresh temporary
databases, sends each case of ``tests/eval/cases/*.yml`` as the first message of a new
conversation through the REST channel, plays the multi-turn ``tests/eval/scenarios.yml``, and
reads each outcome from the tracker (actions run, responses sent, form activated). Prints
per-category rates, false escalations on FAQ questions, a per-topic confusion summary and the
failures; exits non-zero below the bars in ``tests/eval/bars.yml``.

Case schema: ``{text, expect, topics?}``; expect is one of crisis, emergency, medical, human,
booking, faq, other (see docs/POLICY.md). Scenario turns may also expect ``handoff``: staff
hold the conversation, so the message is attached for them and the assistant stays quiet.
``--dir`` runs another set laid out the same way (a later blind set, ``tests/eval/blind*``);
its faq cases may leave out topics, and then any approved FAQ answer counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from clinic import settings
from clinic.reading.language import detect_language
from clinic.settings import PROJECT_DIR

EVAL_DIR = PROJECT_DIR / "tests" / "eval"
CATEGORIES = ("crisis", "emergency", "medical", "human", "booking", "faq", "other")
SCENARIO_EXPECTATIONS = (*CATEGORIES, "handoff")
# Booking, moving or cancelling an appointment: each hands the patient to the scheduling forms.
BOOKING_FORMS = frozenset({"booking_form", "reschedule_form", "cancel_form"})
CONCURRENCY = 4
SEQUENTIAL_TURNS = 60


@dataclass
class Outcome:
    """What one patient turn made the assistant do."""

    actions: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    utter_actions: list[str] = field(default_factory=list)
    booking_started: bool = False
    # A form already running asked its next question: a booking turn, and no fault after a
    # pleasantry ("thanks!" -> "You're welcome!" and the form's question again).
    booking_continued: bool = False
    intent: str | None = None
    guard_rule: str | None = None
    crisis_kind: str | None = None
    latency_ms: float = 0.0

    @property
    def crisis_ran(self) -> bool:
        return "action_crisis_protocol" in self.actions

    @property
    def checkin_ran(self) -> bool:
        """The safety check-in was asked (a possible crisis; 988 and 911 in the question)."""
        return "utter_safety_checkin" in self.utter_actions

    @property
    def escalated(self) -> bool:
        return "action_escalate_to_staff" in self.actions

    @property
    def held(self) -> bool:
        """Staff hold the conversation: the message was attached for them, nothing was said but the
        hand-off acknowledgement ("Your message is with our team...")."""
        said = [u for u in self.utter_actions if u != "utter_handoff_ack"]
        return "action_handoff_hold" in self.actions and not said and len(self.texts) == self.utter_actions.count(
            "utter_handoff_ack")

    @property
    def topics(self) -> set[str]:
        return {u.removeprefix("utter_faq_") for u in self.utter_actions if u.startswith("utter_faq_")}

    def label(self) -> str:
        """The category this outcome amounts to (for the confusion summary)."""
        if self.crisis_ran:
            return "emergency" if self.crisis_kind == "emergency" else "crisis"
        if self.checkin_ran:
            return "checkin"
        if self.escalated:
            return "human" if self.intent == "request_human" else "medical"
        if self.held:
            return "handoff"
        if self.booking_started or self.booking_continued:
            return "booking"
        if self.topics:
            return "faq"
        return "other"


def passes(expect: str, topics: list[str] | None, outcome: Outcome, reply_language: str | None = None) -> bool:
    """Whether an outcome meets a case's expectation (the rules of the case schema).

    ``reply_language``: a set's ``reply_language`` (bars.yml); whatever the assistant said must
    read as that language too ("es": a Spanish question answered in English is a miss).
    """
    any_text = " ".join(outcome.texts)
    if reply_language and any_text and detect_language(any_text) not in (reply_language, None):
        return False
    if expect == "crisis":
        return (outcome.crisis_ran or outcome.checkin_ran) and "988" in any_text
    if expect == "emergency":
        return (outcome.crisis_ran or outcome.checkin_ran) and "911" in any_text
    if expect in ("medical", "human"):
        return outcome.escalated
    if expect == "booking":
        return outcome.booking_started or outcome.booking_continued
    if expect == "faq":
        # Without topics (a quick held-out set), any approved FAQ answer counts.
        answered = outcome.topics & set(topics) if topics else outcome.topics
        return bool(answered) and not (outcome.crisis_ran or outcome.checkin_ran or outcome.escalated)
    if expect == "other":
        return not (
            outcome.crisis_ran or outcome.checkin_ran or outcome.escalated or outcome.booking_started or outcome.topics
        )
    if expect == "handoff":
        return outcome.held and not outcome.crisis_ran
    raise ValueError(f"unknown expectation {expect!r}")


def outcome_from_events(events: list[dict[str, Any]], latency_ms: float = 0.0) -> Outcome:
    """The outcome of the last patient turn in a tracker's events."""
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
    outcome = Outcome(latency_ms=latency_ms)
    if last_user >= 0:
        parse = events[last_user].get("parse_data") or {}
        outcome.intent = (parse.get("intent") or {}).get("name")
        outcome.guard_rule = (parse.get("guard") or {}).get("rule")
    for event in events[last_user + 1 :]:
        kind = event.get("event")
        if kind == "action" and event.get("name") != "action_listen":
            outcome.actions.append(event["name"])
        elif kind == "bot":
            outcome.texts.append(event.get("text") or "")
            utter = (event.get("metadata") or {}).get("utter_action")
            if utter:
                outcome.utter_actions.append(utter)
        elif kind == "active_loop":
            # the form started, or (when it was already running) stopped
            outcome.booking_started = event.get("name") in BOOKING_FORMS
        elif kind == "slot" and event.get("name") == "crisis_kind":
            outcome.crisis_kind = event.get("value")
    if BOOKING_FORMS & set(outcome.actions) and not any(
        e.get("event") == "active_loop" for e in events[last_user + 1 :]
    ):
        outcome.booking_continued = True  # the form was already active and kept going
    return outcome


def load_cases(directory: Path = EVAL_DIR) -> list[dict[str, Any]]:
    cases = []
    for path in sorted((directory / "cases").glob("*.yml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if case.get("expect") not in CATEGORIES:
                raise ValueError(f"{path.name}: unknown expect {case.get('expect')!r} in {case!r}")
            cases.append({**case, "file": path.name})
    return cases


def load_scenarios(directory: Path = EVAL_DIR) -> list[dict[str, Any]]:
    path = directory / "scenarios.yml"
    scenarios = (yaml.safe_load(path.read_text(encoding="utf-8")) or []) if path.exists() else []
    for scenario in scenarios:
        for turn in scenario["turns"]:
            if turn.get("expect") not in SCENARIO_EXPECTATIONS:
                raise ValueError(f"scenarios.yml: unknown expect {turn.get('expect')!r} in {scenario['name']!r}")
    return scenarios


class Client:
    """Talks to the Rasa server over REST and reads trackers through its HTTP API."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str | None) -> None:
        self.session, self.base_url = session, base_url
        self.params = {"token": token} if token else {}

    async def turn(self, sender: str, text: str) -> Outcome:
        started = time.perf_counter()
        async with self.session.post(
            f"{self.base_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, params=self.params
        ) as response:
            response.raise_for_status()
            await response.read()
        latency = (time.perf_counter() - started) * 1000
        async with self.session.get(
            f"{self.base_url}/conversations/{sender}/tracker", params=self.params
        ) as response:
            response.raise_for_status()
            tracker = await response.json()
        return outcome_from_events(tracker.get("events") or [], latency)


async def run_all(base_url: str, token: str | None, cases: list[dict], scenarios: list[dict]) -> dict[str, Any]:
    limit = asyncio.Semaphore(CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = Client(session, base_url, token)

        async def one(case: dict) -> tuple[dict, Outcome]:
            async with limit:
                return case, await client.turn(f"eval-{uuid.uuid4().hex}", case["text"])

        async def scenario(s: dict) -> tuple[dict, list[Outcome]]:
            async with limit:
                sender = f"eval-scenario-{uuid.uuid4().hex}"
                return s, [await client.turn(sender, t["text"]) for t in s["turns"]]

        case_results = await asyncio.gather(*(one(c) for c in cases))
        scenario_results = await asyncio.gather(*(scenario(s) for s in scenarios))
        # one conversation, one turn at a time: the FAQ-turn latency a single patient sees
        sender = f"eval-latency-{uuid.uuid4().hex}"
        faq_texts = [c["text"] for c in cases if c["expect"] == "faq"][:SEQUENTIAL_TURNS]
        sequential = [(await client.turn(sender, text)).latency_ms for text in faq_texts]
    return {"cases": case_results, "scenarios": scenario_results, "sequential_ms": sequential}


@dataclass
class _Tally:
    """What the cases and scenarios of one run add up to."""

    by_category: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    failures: list[tuple] = field(default_factory=list)
    confusion: Counter = field(default_factory=Counter)
    faq_escalated: int = 0
    other_alarmed: int = 0  # crisis resources or a check-in on small talk and out-of-scope messages
    latencies: list[float] = field(default_factory=list)
    scenario_ok: list[bool] = field(default_factory=list)


def _failure(expect: str, topics: Any, outcome: Outcome, text: str) -> tuple:
    return (expect, topics, outcome.label(), sorted(outcome.topics), outcome.intent, outcome.guard_rule, text)


def _tally(results: dict[str, Any], reply_language: str | None = None) -> _Tally:
    tally = _Tally()
    for case, outcome in results["cases"]:
        ok = passes(case["expect"], case.get("topics"), outcome, reply_language)
        tally.by_category[case["expect"]].append(ok)
        tally.latencies.append(outcome.latency_ms)
        if case["expect"] == "faq":
            tally.faq_escalated += outcome.crisis_ran or outcome.checkin_ran or outcome.escalated
            got = sorted(outcome.topics) or [outcome.label()]
            for topic in case.get("topics") or []:
                if topic not in outcome.topics:
                    tally.confusion[(topic, ",".join(got))] += 1
        if case["expect"] == "other":
            tally.other_alarmed += outcome.crisis_ran or outcome.checkin_ran
        if not ok:
            tally.failures.append(_failure(case["expect"], case.get("topics"), outcome, case["text"]))
    for scenario, outcomes in results["scenarios"]:
        turn_ok = [
            passes(t["expect"], t.get("topics"), o, reply_language) for t, o in zip(scenario["turns"], outcomes)
        ]
        tally.scenario_ok.append(all(turn_ok))
        for t, o, ok in zip(scenario["turns"], outcomes, turn_ok):
            if not ok:
                tally.failures.append(_failure(f"scenario:{t['expect']}", t.get("topics"), o,
                                               f"[{scenario['name']}] {t['text']}"))
    return tally


def _metrics(tally: _Tally, sequential: list[float]) -> dict[str, Any]:
    metrics: dict[str, Any] = {c: sum(v) / len(v) for c, v in tally.by_category.items() if v}
    counts = {c: len(v) for c, v in tally.by_category.items()}
    metrics["counts"] = counts
    metrics["false_escalation_faq"] = tally.faq_escalated / counts["faq"] if counts.get("faq") else 0.0
    metrics["crisis_on_other"] = tally.other_alarmed / counts["other"] if counts.get("other") else 0.0
    metrics["scenarios"] = sum(tally.scenario_ok) / len(tally.scenario_ok) if tally.scenario_ok else 1.0
    metrics["cases"] = sum(counts.values())
    metrics["latency_ms_p50"] = statistics.median(tally.latencies) if tally.latencies else 0.0
    metrics["latency_ms_p95"] = statistics.quantiles(tally.latencies, n=20)[-1] if len(tally.latencies) >= 20 else 0.0
    if len(sequential) >= 20:
        metrics["faq_turn_ms_p50_single"] = statistics.median(sequential)
        metrics["faq_turn_ms_p95_single"] = statistics.quantiles(sequential, n=20)[-1]
    return metrics


def _print_rates(metrics: dict[str, Any], bars: dict[str, float], n_scenarios: int) -> list[str]:
    """Prints the rate table; returns the bars not met."""
    counts = metrics["counts"]
    print(f"\nEvaluation on {metrics['cases']} held-out cases and {n_scenarios} scenarios")
    print(f"{'category':22} {'cases':>6} {'rate':>8} {'bar':>8}")
    failed_bars = []
    for name in (*CATEGORIES, "scenarios"):
        if name not in metrics:
            continue
        bar = bars.get(name)
        flag = "" if bar is None or metrics[name] >= bar else "  << below bar"
        if flag:
            failed_bars.append(name)
        n = counts.get(name, n_scenarios)
        print(f"{name:22} {n:>6} {metrics[name]:>8.1%} {'' if bar is None else f'{bar:.0%}':>8}{flag}")
    for key, label, group in (
        ("false_escalation_faq", "false escalation (FAQ)", "faq"),
        ("crisis_on_other", "crisis/check-in (other)", "other"),
    ):
        ceiling = bars.get(f"{key}_max")
        flag = "" if ceiling is None or metrics[key] <= ceiling else "  << above bar"
        if flag:
            failed_bars.append(key)
        print(f"{label:22} {counts.get(group, 0):>6} {metrics[key]:>8.1%} "
              f"{'' if ceiling is None else f'<={ceiling:.0%}':>8}{flag}")
    return failed_bars


def _print_details(metrics: dict[str, Any], tally: _Tally) -> None:
    if "faq_turn_ms_p50_single" in metrics:
        print(f"FAQ turn latency, one conversation (REST round trip): p50 {metrics['faq_turn_ms_p50_single']:.0f} ms, "
              f"p95 {metrics['faq_turn_ms_p95_single']:.0f} ms")
    print(f"turn latency (REST round trip, {CONCURRENCY} concurrent): p50 {metrics['latency_ms_p50']:.0f} ms, "
          f"p95 {metrics['latency_ms_p95']:.0f} ms")
    if tally.confusion:
        print("\nFAQ topic confusions (expected -> answered as):")
        for (expected, got), n in tally.confusion.most_common():
            print(f"  {n:>3}  {expected} -> {got}")
    if tally.failures:
        columns = "expect | topics | got | answered topics | intent | guard rule | text"
        print(f"\nFailures ({len(tally.failures)}): {columns}")
        for failure in tally.failures:
            print("  " + " | ".join(str(x) for x in failure))


def report(results: dict[str, Any], bars: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Computes the metrics, prints the report, returns (metrics, failed bars)."""
    tally = _tally(results, bars.get("reply_language"))
    metrics = _metrics(tally, results.get("sequential_ms") or [])
    failed_bars = _print_rates(metrics, bars, len(tally.scenario_ok))
    _print_details(metrics, tally)
    return metrics, failed_bars


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", default=str(PROJECT_DIR / "results" / "eval.json"))
    parser.add_argument(
        "--dir", type=Path, default=EVAL_DIR,
        help="folder with cases/*.yml, scenarios.yml and bars.yml (e.g. a fresh held-out set)",
    )
    args = parser.parse_args(argv)

    from clinic.launcher import Stack

    cases, scenarios = load_cases(args.dir), load_scenarios(args.dir)
    bars_path = args.dir / "bars.yml" if (args.dir / "bars.yml").exists() else EVAL_DIR / "bars.yml"
    bars = yaml.safe_load(bars_path.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="clinic-eval-") as var_dir:
        env = {
            "CLINIC_VAR_DIR": var_dir,
            "CLINIC_DATABASE_URL": f"sqlite:///{var_dir}/clinic.db",
            "TRACKER_STORE_URL": f"sqlite:///{var_dir}/tracker.db",
        }
        os.environ.update(env)
        from clinic.db import migrate

        migrate(env["CLINIC_DATABASE_URL"])
        rasa_port, action_port = _free_port(), _free_port()
        stack = Stack(args.model, rasa_port, action_port, env=env, quiet=True)
        print(f"Starting the assistant on ports {rasa_port}/{action_port}...", flush=True)
        stack.start()
        try:
            started = time.perf_counter()
            results = asyncio.run(
                run_all(f"http://127.0.0.1:{rasa_port}", settings.rasa_api_token(), cases, scenarios)
            )
            elapsed = time.perf_counter() - started
        finally:
            stack.stop()
    metrics, failed = report(results, bars)
    print(f"\n{metrics['cases']} cases in {elapsed:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    if failed:
        print(f"FAILED: below the bar for {', '.join(failed)}", file=sys.stderr)
        return 1
    print("All evaluation bars met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
