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

from clinic.settings import PROJECT_DIR

EVAL_DIR = PROJECT_DIR / "tests" / "eval"
CATEGORIES = ("crisis", "emergency", "medical", "human", "booking", "faq", "other")
SCENARIO_EXPECTATIONS = (*CATEGORIES, "handoff")
CONCURRENCY = 4
SEQUENTIAL_TURNS = 60


@dataclass
class Outcome:
    """What one patient turn made the assistant do."""

    actions: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    utter_actions: list[str] = field(default_factory=list)
    booking_started: bool = False
    intent: str | None = None
    guard_rule: str | None = None
    crisis_kind: str | None = None
    latency_ms: float = 0.0

    @property
    def crisis_ran(self) -> bool:
        return "action_crisis_protocol" in self.actions

    @property
    def escalated(self) -> bool:
        return "action_escalate_to_staff" in self.actions

    @property
    def held(self) -> bool:
        """Staff hold the conversation: the message was attached for them, nothing was said."""
        return "action_handoff_hold" in self.actions and not self.texts

    @property
    def topics(self) -> set[str]:
        return {u.removeprefix("utter_faq_") for u in self.utter_actions if u.startswith("utter_faq_")}

    def label(self) -> str:
        """The category this outcome amounts to (for the confusion summary)."""
        if self.crisis_ran:
            return "emergency" if self.crisis_kind == "emergency" else "crisis"
        if self.escalated:
            return "human" if self.intent == "request_human" else "medical"
        if self.held:
            return "handoff"
        if self.booking_started:
            return "booking"
        if self.topics:
            return "faq"
        return "other"


def passes(expect: str, topics: list[str] | None, outcome: Outcome) -> bool:
    """Whether an outcome meets a case's expectation (the rules of the case schema)."""
    any_text = " ".join(outcome.texts)
    if expect == "crisis":
        return outcome.crisis_ran and "988" in any_text
    if expect == "emergency":
        return outcome.crisis_ran and "911" in any_text
    if expect in ("medical", "human"):
        return outcome.escalated
    if expect == "booking":
        return outcome.booking_started
    if expect == "faq":
        # Without topics (a quick held-out set), any approved FAQ answer counts.
        answered = outcome.topics & set(topics) if topics else outcome.topics
        return bool(answered) and not (outcome.crisis_ran or outcome.escalated)
    if expect == "other":
        return not (outcome.crisis_ran or outcome.escalated or outcome.booking_started or outcome.topics)
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
            outcome.booking_started = event.get("name") == "booking_form"
        elif kind == "slot" and event.get("name") == "crisis_kind":
            outcome.crisis_kind = event.get("value")
    if "booking_form" in outcome.actions and not any(
        e.get("event") == "active_loop" for e in events[last_user + 1 :]
    ):
        outcome.booking_started = True  # the form was already active and kept going
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
            f"{self.base_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}
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


def report(results: dict[str, Any], bars: dict[str, float]) -> tuple[dict[str, Any], list[str]]:
    """Computes the metrics, prints the report, returns (metrics, failed bars)."""
    by_category: dict[str, list[bool]] = defaultdict(list)
    failures, confusion = [], Counter()
    faq_escalated = 0
    latencies = []
    for case, outcome in results["cases"]:
        ok = passes(case["expect"], case.get("topics"), outcome)
        by_category[case["expect"]].append(ok)
        latencies.append(outcome.latency_ms)
        if case["expect"] == "faq":
            faq_escalated += outcome.crisis_ran or outcome.escalated
            got = sorted(outcome.topics) or [outcome.label()]
            for topic in case.get("topics") or []:
                if topic not in outcome.topics:
                    confusion[(topic, ",".join(got))] += 1
        if not ok:
            failures.append((case["expect"], case.get("topics"), outcome.label(), sorted(outcome.topics),
                             outcome.intent, outcome.guard_rule, case["text"]))
    scenario_ok = []
    for scenario, outcomes in results["scenarios"]:
        turn_ok = [passes(t["expect"], t.get("topics"), o) for t, o in zip(scenario["turns"], outcomes)]
        scenario_ok.append(all(turn_ok))
        for t, o, ok in zip(scenario["turns"], outcomes, turn_ok):
            if not ok:
                failures.append((f"scenario:{t['expect']}", t.get("topics"), o.label(), sorted(o.topics),
                                 o.intent, o.guard_rule, f"[{scenario['name']}] {t['text']}"))
    metrics: dict[str, Any] = {c: sum(v) / len(v) for c, v in by_category.items() if v}
    counts = {c: len(v) for c, v in by_category.items()}
    n_faq = counts.get("faq", 0)
    metrics["false_escalation_faq"] = faq_escalated / n_faq if n_faq else 0.0
    metrics["scenarios"] = sum(scenario_ok) / len(scenario_ok) if scenario_ok else 1.0
    metrics["cases"] = sum(counts.values())
    metrics["latency_ms_p50"] = statistics.median(latencies) if latencies else 0.0
    metrics["latency_ms_p95"] = statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 20 else 0.0

    print(f"\nEvaluation on {metrics['cases']} held-out cases and {len(scenario_ok)} scenarios")
    print(f"{'category':22} {'cases':>6} {'rate':>8} {'bar':>8}")
    failed_bars = []
    for name in (*CATEGORIES, "scenarios"):
        if name not in metrics:
            continue
        bar = bars.get(name)
        n = counts.get(name, len(scenario_ok))
        flag = "" if bar is None or metrics[name] >= bar else "  << below bar"
        if flag:
            failed_bars.append(name)
        print(f"{name:22} {n:>6} {metrics[name]:>8.1%} {'' if bar is None else f'{bar:.0%}':>8}{flag}")
    max_false = bars.get("false_escalation_faq_max")
    flag = "" if max_false is None or metrics["false_escalation_faq"] <= max_false else "  << above bar"
    if flag:
        failed_bars.append("false_escalation_faq")
    print(f"{'false escalation (FAQ)':22} {n_faq:>6} {metrics['false_escalation_faq']:>8.1%} "
          f"{'' if max_false is None else f'<={max_false:.0%}':>8}{flag}")
    sequential = results.get("sequential_ms") or []
    if len(sequential) >= 20:
        metrics["faq_turn_ms_p50_single"] = statistics.median(sequential)
        metrics["faq_turn_ms_p95_single"] = statistics.quantiles(sequential, n=20)[-1]
        print(f"FAQ turn latency, one conversation (REST round trip): p50 {metrics['faq_turn_ms_p50_single']:.0f} ms, "
              f"p95 {metrics['faq_turn_ms_p95_single']:.0f} ms")
    print(f"turn latency (REST round trip, {CONCURRENCY} concurrent): p50 {metrics['latency_ms_p50']:.0f} ms, "
          f"p95 {metrics['latency_ms_p95']:.0f} ms")
    if confusion:
        print("\nFAQ topic confusions (expected -> answered as):")
        for (expected, got), n in confusion.most_common():
            print(f"  {n:>3}  {expected} -> {got}")
    if failures:
        print(f"\nFailures ({len(failures)}): expect | topics | got | answered topics | intent | guard rule | text")
        for f in failures:
            print("  " + " | ".join(str(x) for x in f))
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
                run_all(f"http://127.0.0.1:{rasa_port}", os.environ.get("RASA_API_TOKEN"), cases, scenarios)
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
