"""Load benchmark (``make bench``): the clinic assistant against a plain ``rasa init`` bot.

In one run, on localhost only:

1. trains the clinic model (``config.yml``, ``domain.yml``, ``data/``) and the reference bot (the
   project ``rasa init`` makes, with its default pipeline and policies) in a temporary folder, each
   with an empty training cache, and times both full trainings;
2. starts the whole clinic stack (action server + Rasa server, ``endpoints.yml``: guard, custom
   NLG, SQL tracker store on a fresh SQLite file, hand-off policy) on free ports, and the reference
   bot with ``rasa run`` (its own endpoints: in-memory tracker store), timing process start to the
   first successful REST reply (cold start);
3. drives each through the REST channel with the same conversation scripts (FAQ questions, a
   booking, an escalation, chit-chat): ``--concurrency`` levels of closed-loop conversations (each
   sends its next message as soon as the reply arrives), ``--duration`` seconds per level after a
   short warm-up, while sampling the Rasa server's memory (RSS of its process tree);
4. prints p50/p95/p99 latency per turn type, throughput, errors, peak memory, cold start, training
   time, the clinic/reference ratios and the performance targets; writes ``bench.json`` and
   ``bench.png`` into ``--out`` (and the chart to ``docs/bench.png`` after a full run).

The reference bot answers differently (it is a mood bot): turns are compared by type, with the
same message texts. ``--profile`` then records the clinic server with py-spy during one more
single conversation (not part of the measurements) and prints where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clinic.settings import PROJECT_DIR

TURN_TYPES = ("faq", "booking", "escalation", "chitchat")

# Conversation scripts: (turn type, message). Each closed-loop conversation plays them in turn,
# each script as a new conversation (new sender id). The booking follows the clinic's form to a
# confirmed booking; "1" picks the first offered time. The escalation is a personal medical
# question, then a message sent while staff hold the conversation.
SCRIPTS: dict[str, list[tuple[str, str]]] = {
    "faq_cost": [
        ("chitchat", "hi there"),
        ("faq", "how much does a single infusion cost"),
        ("faq", "do you accept insurance"),
        ("faq", "what side effects are common"),
        ("chitchat", "thanks a lot"),
    ],
    "faq_visit": [
        ("faq", "what is ketamine therapy"),
        ("faq", "do I need to fast before my appointment"),
        ("faq", "can I drive home after a treatment"),
        ("faq", "where are you located"),
        ("chitchat", "goodbye"),
    ],
    "chitchat": [
        ("chitchat", "hello"),
        ("chitchat", "are you a real person or a bot"),
        ("chitchat", "ok thank you"),
        ("chitchat", "bye"),
    ],
    "escalation": [
        ("faq", "how long does an infusion take"),
        ("escalation", "I take lithium and sertraline, is ketamine safe for me?"),
        ("escalation", "ok I will wait for the nurse to reply"),
    ],
    "booking": [
        ("booking", "I'd like to book a consultation"),
        ("booking", "Maria Lopez"),
        ("booking", "312-555-0123"),
        ("booking", "skip"),
        ("booking", "anxiety"),
        ("booking", "yes"),
        ("booking", "no"),
        ("booking", "next Tuesday at 10am"),
        ("booking", "1"),
        ("booking", "yes"),
    ],
}
SCRIPT_ORDER = ("faq_cost", "chitchat", "escalation", "faq_visit", "booking")

# Targets of the performance issue (2-core machine).
TARGETS = {
    "faq_p50_single_ms": 15.0,
    "throughput_ratio": 3.0,
    "p95_at_20_ms": 250.0,
    "peak_rss_mb": 800.0,
    "cold_start_s": 15.0,
    "training_s": 180.0,
}

# Where a py-spy sample of the clinic server is counted: the innermost frame that matches a marker
# decides. Markers: "file.py:function", "file.py:" (any function in it) or "folder/".
PROFILE_CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("custom action reply validation (jsonschema)", ("action.py:_validate_action_result", "jsonschema/")),
    ("custom action HTTP call", ("endpoints.py:request", "aiohttp/")),
    ("tracker store: retrieve", ("tracker_store.py:_retrieve", "tracker_store.py:retrieve")),
    ("tracker store: save", ("tracker_store.py:save", "tracker_store.py:_save", "tracker_store.py:_additional_events")),
    ("events: parse and replay", ("trackers.py:from_dict", "events.py:deserialise_events", "events.py:from_parameters",
                                  "trackers.py:update", "trackers.py:update_with_events")),
    ("safety guard", ("guard.py:", "safety_guard.py:")),
    ("risk model and sentence reader", ("sentence_reader.py:", "risk.py:", "ngrams.py:", "sentences.py:")),
    ("NLU: tokenizer, featurizers, classifier", ("count_vectors_featurizer.py:", "featurizers.py:",
                                                 "logistic_regression_classifier.py:",
                                                 "intent_classifier.py:", "whitespace_tokenizer.py:", "tokenizer.py:",
                                                 "fallback_classifier.py:", "input_check.py:")),
    ("policies: state building", ("trackers.py:past_states", "domain.py:states_for_tracker_history",
                                  "dialogue_states.py:_states_for_tracker_history", "dialogue_states.py:_copy_states",
                                  "trackers.py:generate_all_prior_trackers", "tracker_featurizers.py:")),
    ("policies: rule lookup, memoization, ensemble", ("rule_policy.py:", "memoization.py:", "handoff_policy.py:",
                                                      "checkin_policy.py:", "ensemble.py:")),
    ("NLG", ("clinic_nlg.py:", "response.py:", "interpolator.py:")),
    ("graph runner", ("dask/", "graph.py:", "graph_runner.py:_run_graph", "graph_runner.py:compute")),
    ("fair turns (who works next)", ("fair_turns.py:acquire", "fair_turns.py:release", "fair_turns.py:_dispatch")),
    ("Rasa's message processor: actions, forms, tracker copies", ("processor.py:", "forms.py:", "loops.py:",
                                                                  "action.py:")),
    ("HTTP server + REST channel", ("sanic/", "rest.py:", "rest_channel.py:", "patient_input.py:", "channel.py:")),
]
_IDLE_FRAMES = ("runners.py:serve", "selectors.py:select", "base_events.py:run_forever", "base_events.py:_run_once")


# ---------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(latencies_ms: Sequence[float]) -> dict[str, float | int | None]:
    """Count, mean and p50/p95/p99/max of latencies (None when there are none)."""
    if not latencies_ms:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    return {
        "n": len(latencies_ms),
        "mean": sum(latencies_ms) / len(latencies_ms),
        "p50": percentile(latencies_ms, 50),
        "p95": percentile(latencies_ms, 95),
        "p99": percentile(latencies_ms, 99),
        "max": max(latencies_ms),
    }


@dataclass(frozen=True)
class Turn:
    """One message sent and its reply (times from ``time.perf_counter``, seconds)."""

    kind: str
    started: float
    ended: float
    ok: bool
    error: str | None = None

    @property
    def latency_ms(self) -> float:
        return (self.ended - self.started) * 1000


def summarize_level(turns: Iterable[Turn], window: tuple[float, float], concurrency: int) -> dict[str, Any]:
    """Latency per turn type, throughput and errors of the turns that ended inside ``window``."""
    start, end = window
    inside = [t for t in turns if start <= t.ended <= end]
    ok = [t for t in inside if t.ok]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for turn in ok:
        by_kind[turn.kind].append(turn.latency_ms)
    errors = Counter(t.error or "error" for t in inside if not t.ok)
    duration = end - start
    return {
        "concurrency": concurrency,
        "duration_s": duration,
        "messages": len(ok),
        "throughput_mps": len(ok) / duration if duration > 0 else 0.0,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "all": summarize([t.latency_ms for t in ok]),
        "turns": {kind: summarize(by_kind.get(kind, [])) for kind in TURN_TYPES},
    }


def level(system: dict[str, Any], concurrency: int) -> dict[str, Any] | None:
    """A system's results at one concurrency level, if measured."""
    return next((lv for lv in system.get("levels") or [] if lv["concurrency"] == concurrency), None)


def saturated(system: dict[str, Any]) -> tuple[float | None, int | None]:
    """The highest throughput over the measured levels and the concurrency it was reached at."""
    levels = system.get("levels") or []
    if not levels:
        return None, None
    best = max(levels, key=lambda lv: lv["throughput_mps"])
    return best["throughput_mps"], best["concurrency"]


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def _faq_p50_single(system: dict[str, Any]) -> float | None:
    single = level(system, 1)
    return single["turns"]["faq"]["p50"] if single else None


def ratios(clinic: dict[str, Any], reference: dict[str, Any] | None) -> dict[str, float | None]:
    """Clinic relative to the reference: >1 means the clinic is better for the ``*_speedup`` and
    ``throughput`` ratios; for memory, cold start and training time it is clinic / reference
    (<1 means the clinic needs less)."""
    if not reference:
        return {}
    return {
        "throughput": _ratio(saturated(clinic)[0], saturated(reference)[0]),
        "faq_p50_single_speedup": _ratio(_faq_p50_single(reference), _faq_p50_single(clinic)),
        "peak_rss": _ratio(clinic.get("peak_rss_mb"), reference.get("peak_rss_mb")),
        "cold_start": _ratio(clinic.get("cold_start_s"), reference.get("cold_start_s")),
        "training": _ratio(clinic.get("training_s"), reference.get("training_s")),
    }


def check_targets(clinic: dict[str, Any], ratio: dict[str, float | None]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it is met (None: not measured)."""
    at_20 = level(clinic, 20)
    measured = {
        "faq_p50_single_ms": _faq_p50_single(clinic),
        "throughput_ratio": ratio.get("throughput"),
        "p95_at_20_ms": at_20["all"]["p95"] if at_20 else None,
        "peak_rss_mb": clinic.get("peak_rss_mb"),
        "cold_start_s": clinic.get("cold_start_s"),
        "training_s": clinic.get("training_s"),
    }
    results = []
    for name, target in TARGETS.items():
        value = measured[name]
        met = None if value is None else (value >= target if name == "throughput_ratio" else value <= target)
        results.append({"name": name, "target": target, "value": value, "met": met})
    return results


# ---------------------------------------------------------------------------- report


def _fmt(value: float | int | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


_TARGET_LABELS = {
    "faq_p50_single_ms": ("FAQ turn p50, one conversation", "ms", "<="),
    "throughput_ratio": ("saturated throughput vs plain Rasa", "x", ">="),
    "p95_at_20_ms": ("p95, 20 concurrent conversations", "ms", "<="),
    "peak_rss_mb": ("Rasa server peak memory", "MB", "<="),
    "cold_start_s": ("cold start to first answer", "s", "<="),
    "training_s": ("full training", "s", "<="),
}


def format_report(result: dict[str, Any]) -> str:
    """The human-readable summary printed at the end of a run."""
    lines = []
    machine = result.get("machine") or {}
    lines.append(
        f"Machine: {machine.get('cpus')} CPUs, load average before {machine.get('loadavg_before')}, "
        f"after {machine.get('loadavg_after')}"
    )
    for name, system in result["systems"].items():
        if not system:
            continue
        lines.append("")
        action_server = system.get("action_server_peak_rss_mb")
        lines.append(
            f"== {name}: training {_fmt(system.get('training_s'))} s, cold start {_fmt(system.get('cold_start_s'))} s, "
            f"peak RSS {_fmt(system.get('peak_rss_mb'), 0)} MB"
            + (f" (action server {action_server:.0f} MB)" if action_server else "")
        )
        lines.append(f"{'conc':>4} {'turn':10} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
                     f"{'msg/s':>7} {'errors':>6}")
        for lv in system.get("levels") or []:
            rows = [(kind, lv["turns"][kind]) for kind in TURN_TYPES] + [("all", lv["all"])]
            for kind, stats in rows:
                tail = f" {lv['throughput_mps']:>7.1f} {lv['errors']:>6}" if kind == "all" else ""
                lines.append(
                    f"{lv['concurrency']:>4} {kind:10} {stats['n']:>6} {_fmt(stats['p50']):>8} {_fmt(stats['p95']):>8} "
                    f"{_fmt(stats['p99']):>8}{tail}"
                )
        best, at = saturated(system)
        if best is not None:
            lines.append(f"saturated throughput: {best:.1f} messages/s (at {at} conversations)")
    ratio = result.get("ratios") or {}
    if ratio:
        lines.append("")
        lines.append("Ratios (clinic vs plain Rasa):")
        lines.append(f"  saturated throughput      {_fmt(ratio.get('throughput'), 2)}x")
        lines.append(f"  FAQ p50 (one conversation) {_fmt(ratio.get('faq_p50_single_speedup'), 2)}x faster")
        lines.append(f"  peak memory               {_fmt(ratio.get('peak_rss'), 2)}x")
        lines.append(f"  cold start                {_fmt(ratio.get('cold_start'), 2)}x")
        lines.append(f"  full training             {_fmt(ratio.get('training'), 2)}x")
    lines.append("")
    lines.append("Targets (clinic assistant):")
    for target in result.get("targets") or []:
        label, unit, op = _TARGET_LABELS[target["name"]]
        verdict = {True: "met", False: "NOT MET", None: "not measured"}[target["met"]]
        lines.append(f"  {label:38} {_fmt(target['value']):>8} {unit:2} (target {op} {target['target']:g})  {verdict}")
    return "\n".join(lines)


_CHART_COLOURS = {"clinic": ("#0b5e55", "#3f9a8f", "#9fd3cc"), "reference": ("#555555", "#8c8c8c", "#c8c8c8")}
_CHART_LABELS = {"clinic": "clinic assistant", "reference": "plain Rasa (rasa init)"}
_PERCENTILES = ("p50", "p95", "p99")


def _colours(name: str) -> tuple[str, str, str]:
    return _CHART_COLOURS.get(name, _CHART_COLOURS["reference"])


def draw_chart(result: dict[str, Any], path: Path) -> None:
    """Latency percentiles per turn type (one conversation; 20 conversations) and throughput."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = {name: s for name, s in result["systems"].items() if s}
    panels = [c for c in (1, 20) if any(level(s, c) for s in systems.values())]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5.2 * (len(panels) + 1), 4.8), squeeze=False)
    axes = list(axes[0])
    for ax, concurrency in zip(axes, panels):
        _draw_latencies(ax, systems, concurrency)
    _draw_throughput(axes[-1], systems)
    machine = result.get("machine") or {}
    fig.suptitle(f"make bench: REST round trip on {machine.get('cpus')} CPUs, shared "
                 f"(load average {machine.get('loadavg_before', ['?'])[0]} before the run)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw_latencies(ax: Any, systems: dict[str, dict[str, Any]], concurrency: int) -> None:
    """One panel: p50 / p95 / p99 per turn type of each system at one concurrency, with the target."""
    targets = {
        1: ("FAQ p50 target 15 ms", TARGETS["faq_p50_single_ms"]),
        20: ("p95 target 250 ms", TARGETS["p95_at_20_ms"]),
    }
    width = 0.8 / (3 * len(systems))
    for s_index, (name, system) in enumerate(systems.items()):
        lv = level(system, concurrency)
        if not lv:
            continue
        for p_index, pct in enumerate(_PERCENTILES):
            offset = (s_index * 3 + p_index) * width - 0.4 + width / 2
            values = [lv["turns"][k][pct] for k in TURN_TYPES]
            ax.bar([i + offset for i in range(len(TURN_TYPES))], [v or float("nan") for v in values], width,
                   color=_colours(name)[p_index], label=f"{_CHART_LABELS.get(name, name)} {pct}")
    tallest = max((lv["turns"][k][pct] or 0 for s in systems.values() if (lv := level(s, concurrency))
                   for k in TURN_TYPES for pct in _PERCENTILES), default=0)
    ax.set_ylim(0, max(tallest, targets[concurrency][1]) * 1.5)  # room for the legend
    label, value = targets[concurrency]
    ax.axhline(value, color="#b03a2e", linestyle="--", linewidth=1, label=label)
    ax.set_xticks(range(len(TURN_TYPES)))
    ax.set_xticklabels(TURN_TYPES)
    ax.set_ylabel("latency per turn, ms")
    ax.set_title(f"{concurrency} conversation{'s' if concurrency > 1 else ''} (closed loop): p50 / p95 / p99")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def _draw_throughput(ax: Any, systems: dict[str, dict[str, Any]]) -> None:
    """The last panel: messages per second against concurrent conversations, per system."""
    for name, system in systems.items():
        levels = system.get("levels") or []
        ax.plot([lv["concurrency"] for lv in levels], [lv["throughput_mps"] for lv in levels], marker="o",
                color=_colours(name)[0], label=_CHART_LABELS.get(name, name))
    ax.set_xlabel("concurrent conversations (closed loop)")
    ax.set_ylabel("messages / second")
    ax.set_title("throughput")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")


def summarize_profile(collapsed: Iterable[str]) -> dict[str, float]:
    """Share of py-spy samples per :data:`PROFILE_CATEGORIES` category, from ``--format raw``
    output (one ``frame;frame;... count`` line per stack, outermost frame first, each frame
    ``function (path/file.py:line)``). Samples of the idle event loop are left out."""
    counts: Counter[str] = Counter()
    for line in collapsed:
        stack, _, number = line.rstrip("\n").rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        if _matches_any(_IDLE_FRAMES, *frames[-1]):
            continue
        counts[_categorize(frames)] += int(number)
    total = sum(counts.values())
    return {name: n / total for name, n in counts.most_common()} if total else {}


def _frame(text: str) -> tuple[str, str]:
    """("path/file.py", "function") of a py-spy frame."""
    function, _, where = text.partition(" (")
    return where.rstrip(")").rsplit(":", 1)[0], function


def _matches_any(markers: Iterable[str], path: str, function: str) -> bool:
    for marker in markers:
        if marker.endswith("/"):
            if f"/{marker}" in f"/{path}":
                return True
            continue
        file_part, _, function_part = marker.partition(":")
        if (path == file_part or path.endswith("/" + file_part)) and function_part in ("", function):
            return True
    return False


def _categorize(frames: list[tuple[str, str]]) -> str:
    for path, function in reversed(frames):  # innermost first
        for name, markers in PROFILE_CATEGORIES:
            if _matches_any(markers, path, function):
                return name
    return "other"


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants (from /proc)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(pid: int) -> float:
    return sum(_status_kb(p, "VmRSS") for p in process_tree(pid)) / 1024


class MemorySampler:
    """Samples the RSS of a process tree every ``interval`` seconds; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval = pid, interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> float:
        current = tree_rss_mb(self.pid)
        self.peak_mb = max(self.peak_mb, current)
        return current

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> float:
        """Stops sampling; the peak is at least the main process's kernel high-water mark."""
        self.sample()
        self.peak_mb = max(self.peak_mb, _status_kb(self.pid, "VmHWM") / 1024)
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak_mb


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def base_env(cache_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(PROJECT_DIR),
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        # an empty training cache: the full training is timed, never a cached one
        "RASA_CACHE_DIRECTORY": str(cache_dir),
    }


def timed_run(command: list[str], cwd: Path, env: dict[str, str], log: Path, timeout: float = 3600) -> float:
    """Runs a command to completion (output to ``log``); returns its wall time in seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "ab") as output:
        done = subprocess.run(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, timeout=timeout)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed (exit {done.returncode}); see {log}")
    return elapsed


def train_clinic(work: Path) -> tuple[Path, float]:
    out = work / "clinic-model"
    seconds = timed_run(
        [_bin("rasa"), "train", "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
         "--out", str(out), "--fixed-model-name", "clinic-bench"],
        PROJECT_DIR, base_env(work / "cache-clinic"), work / "logs" / "train-clinic.log",
    )
    return out / "clinic-bench.tar.gz", seconds


def create_reference_project(directory: Path) -> None:
    """The project ``rasa init --no-prompt`` creates (its own scaffold), without training it."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-c", "import sys; from rasa.cli.scaffold import create_initial_project; "
                               "create_initial_project(sys.argv[1])", str(directory)],
        check=True, env=base_env(directory / ".cache"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def train_reference(work: Path) -> tuple[Path, Path, float]:
    project = work / "reference"
    create_reference_project(project)
    seconds = timed_run(
        [_bin("rasa"), "train", "--out", "models", "--fixed-model-name", "reference"],
        project, base_env(work / "cache-reference"), work / "logs" / "train-reference.log",
    )
    return project, project / "models" / "reference.tar.gz", seconds


# ---------------------------------------------------------------------------- load


async def _post(session: Any, url: str, sender: str, text: str, timeout: float) -> tuple[bool, str | None, list]:
    import aiohttp

    try:
        async with session.post(url, json={"sender": sender, "message": text},
                                timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.read()
            if response.status != 200:
                return False, f"HTTP {response.status}", []
        replies = json.loads(body)
        if not isinstance(replies, list):
            return False, "not a list of replies", []
        return True, None, replies
    except asyncio.TimeoutError:
        return False, "timeout", []
    except (aiohttp.ClientError, ValueError, OSError) as exc:
        return False, type(exc).__name__, []


async def wait_for_first_answer(url: str, alive: Callable[[], bool], timeout: float = 600) -> float:
    """Polls the REST channel until a message gets replies; returns the perf_counter time then."""
    import aiohttp

    deadline = time.perf_counter() + timeout
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            if not alive():
                raise RuntimeError("the server stopped before answering")
            ok, _, replies = await _post(session, url, f"bench-coldstart-{uuid.uuid4().hex[:8]}", "hello", 30)
            if ok and replies:
                return time.perf_counter()
            await asyncio.sleep(0.05)
    raise RuntimeError(f"no answer from {url} within {timeout:.0f} s")


async def play_scripts_once(url: str, tag: str) -> dict[str, list[str]]:
    """Plays every script once (warm-up); returns the replies' texts per script."""
    import aiohttp

    shown: dict[str, list[str]] = {}
    async with aiohttp.ClientSession() as session:
        for name in SCRIPT_ORDER:
            sender = f"bench-{tag}-warmup-{name}-{uuid.uuid4().hex[:8]}"
            for _, text in SCRIPTS[name]:
                ok, error, replies = await _post(session, url, sender, text, 60)
                shown.setdefault(name, []).append(
                    f"{text!r} -> "
                    + (" | ".join((r.get("text") or "")[:60] for r in replies) if ok else f"ERROR {error}")
                )
    return shown


async def closed_loop(url: str, tag: str, concurrency: int, warmup: float, duration: float,
                      timeout: float = 30) -> tuple[list[Turn], tuple[float, float]]:
    """``concurrency`` conversations, each sending its next message as soon as the reply arrives,
    for ``warmup`` + ``duration`` seconds. Returns every turn and the measured window."""
    import aiohttp

    turns: list[Turn] = []
    begin = time.perf_counter()
    window = (begin + warmup, begin + warmup + duration)
    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def conversation(index: int) -> None:
            played = 0
            while time.perf_counter() < window[1]:
                script = SCRIPT_ORDER[(index + played) % len(SCRIPT_ORDER)]
                played += 1
                sender = f"bench-{tag}-c{concurrency}-{index}-{played}-{uuid.uuid4().hex[:8]}"
                for kind, text in SCRIPTS[script]:
                    if time.perf_counter() >= window[1]:
                        return
                    started = time.perf_counter()
                    ok, error, _ = await _post(session, url, sender, text, timeout)
                    turns.append(Turn(kind, started, time.perf_counter(), ok, error))
                    if not ok:
                        break  # the conversation's state is unknown: start a new one

        await asyncio.gather(*(conversation(i) for i in range(concurrency)))
    return turns, window


def run_levels(url: str, tag: str, levels: Sequence[int], warmup: float, duration: float) -> list[dict[str, Any]]:
    results = []
    for concurrency in levels:
        turns, window = asyncio.run(closed_loop(url, tag, concurrency, warmup, duration))
        summary = summarize_level(turns, window, concurrency)
        summary["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        results.append(summary)
        print(f"  {tag}: {concurrency:>3} conversations: {summary['messages']} messages, "
              f"{summary['throughput_mps']:.1f} msg/s, p50 {_fmt(summary['all']['p50'])} ms, "
              f"p95 {_fmt(summary['all']['p95'])} ms, errors {summary['errors']} "
              f"(load average {summary['loadavg_after'][0]})", flush=True)
    return results


@dataclass
class SystemRun:
    """What is measured for one system."""

    training_s: float | None = None
    cold_start_s: float | None = None
    peak_rss_mb: float | None = None
    action_server_peak_rss_mb: float | None = None
    levels: list[dict[str, Any]] = field(default_factory=list)
    sample_replies: dict[str, list[str]] = field(default_factory=dict)
    profile: dict[str, float] = field(default_factory=dict)


def profile_server(pid: int, url: str, out: Path, duration: float) -> dict[str, float]:
    """One closed-loop conversation for ``duration`` s (not measured) while py-spy samples the
    server; returns :func:`summarize_profile` of it (empty without py-spy)."""
    spy = shutil.which("py-spy") or _bin("py-spy")
    if not Path(spy).exists():
        print("  (py-spy is not installed: no profile; `.venv/bin/pip install py-spy`)", flush=True)
        return {}
    out.parent.mkdir(parents=True, exist_ok=True)
    recorder = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        asyncio.run(closed_loop(url, "profile", 1, 1, duration))
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes the profile and exits
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
    if not out.exists():
        print("  (py-spy could not attach: no profile)", flush=True)
        return {}
    return summarize_profile(out.read_text(encoding="utf-8").splitlines())


def bench_clinic(work: Path, model: Path, levels: Sequence[int], warmup: float, duration: float,
                 profile_out: Path | None) -> SystemRun:
    from clinic.db import migrate
    from clinic.launcher import Stack

    run = SystemRun()
    var = work / "clinic-var"
    var.mkdir(parents=True, exist_ok=True)
    env = {
        "CLINIC_VAR_DIR": str(var),
        "CLINIC_DATABASE_URL": f"sqlite:///{var}/clinic.db",
        "TRACKER_STORE_URL": f"sqlite:///{var}/tracker.db",
        "REDIS_URL": "",  # the embedded default: conversation locks in memory, one Rasa server
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("CLINIC_")})
    migrate(env["CLINIC_DATABASE_URL"])
    stack = Stack(str(model), free_port(), free_port(), env=env, log_dir=work / "logs" / "clinic")
    url = f"http://127.0.0.1:{stack.rasa_port}/webhooks/rest/webhook"
    try:
        started = time.perf_counter()
        stack.start_actions()
        actions = stack.processes[-1]
        stack.start_rasa()
        rasa = stack.processes[-1]
        memory = MemorySampler(rasa.pid).start()
        action_memory = MemorySampler(actions.pid).start()
        alive = lambda: all(p.poll() is None for p in stack.processes)  # noqa: E731
        run.cold_start_s = asyncio.run(wait_for_first_answer(url, alive)) - started
        print(f"  clinic: first answer {run.cold_start_s:.1f} s after start", flush=True)
        from clinic.launcher import wait_until_up

        if not wait_until_up(f"http://127.0.0.1:{stack.action_port}/health", 120, stack.processes):
            raise RuntimeError("the action server did not start")
        run.sample_replies = asyncio.run(play_scripts_once(url, "clinic"))
        run.levels = run_levels(url, "clinic", levels, warmup, duration)
        if profile_out:
            print("  clinic: profiling one conversation with py-spy (not measured)...", flush=True)
            run.profile = profile_server(rasa.pid, url, profile_out, duration)
        if not alive():
            raise RuntimeError("a clinic server stopped during the run")
        run.peak_rss_mb = memory.stop()
        run.action_server_peak_rss_mb = action_memory.stop()
    finally:
        stack.stop()
    return run


def bench_reference(work: Path, project: Path, model: Path, levels: Sequence[int], warmup: float,
                    duration: float) -> SystemRun:
    run = SystemRun()
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
    log = work / "logs" / "reference" / "rasa.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = base_env(work / "cache-reference")
    with open(log, "ab") as output:
        started = time.perf_counter()
        server = subprocess.Popen(
            [_bin("rasa"), "run", "--model", str(model), "--port", str(port), "--interface", "127.0.0.1"],
            cwd=project, env=env, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        memory = MemorySampler(server.pid).start()
        run.cold_start_s = asyncio.run(wait_for_first_answer(url, lambda: server.poll() is None)) - started
        print(f"  reference: first answer {run.cold_start_s:.1f} s after start", flush=True)
        run.sample_replies = asyncio.run(play_scripts_once(url, "reference"))
        run.levels = run_levels(url, "reference", levels, warmup, duration)
        if server.poll() is not None:
            raise RuntimeError(f"the reference server stopped during the run; see {log}")
        run.peak_rss_mb = memory.stop()
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    return run


# ---------------------------------------------------------------------------- main


def _levels(text: str) -> list[int]:
    try:
        values = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of numbers, e.g. 1,20,50") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be 1 or more")
    return values


def build_result(args: argparse.Namespace, clinic: SystemRun, reference: SystemRun | None,
                 loadavg_before: Sequence[float]) -> dict[str, Any]:
    systems = {"clinic": asdict(clinic), "reference": asdict(reference) if reference else None}
    ratio = ratios(systems["clinic"], systems["reference"])
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in loadavg_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "concurrency": args.concurrency,
                     "scripts": {name: SCRIPTS[name] for name in SCRIPT_ORDER}},
        "systems": systems,
        "ratios": ratio,
        "targets": check_targets(systems["clinic"], ratio),
    }


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30, help="measured seconds per concurrency level (30)")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds before each level (3)")
    parser.add_argument("--concurrency", type=_levels, default=[1, 20, 50],
                        help="closed-loop conversations per level, comma-separated (1,20,50)")
    parser.add_argument("--skip-reference", action="store_true", help="measure the clinic assistant only")
    parser.add_argument("--model", help="use this clinic model instead of training one (training is not timed)")
    parser.add_argument("--reference-project", help="use this trained `rasa init` project (models/*.tar.gz) "
                                                    "instead of training one (training is not timed)")
    parser.add_argument("--out", default=str(PROJECT_DIR / "results" / "bench"),
                        help="folder for bench.json, bench.png")
    parser.add_argument("--docs-chart", default=str(PROJECT_DIR / "docs" / "bench.png"),
                        help="copy of the chart for the README after a full run ('' for none)")
    parser.add_argument("--profile", action="store_true",
                        help="after the levels, profile the clinic server with py-spy "
                             "for one more (unmeasured) conversation")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (models, logs)")
    return parser.parse_args(argv)


def _clinic_model(args: argparse.Namespace, work: Path) -> tuple[Path, float | None]:
    """The clinic model to measure and its full training time (None: given with ``--model``, not timed)."""
    if args.model:
        return Path(args.model).resolve(), None
    print("Training the clinic model (empty cache)...", flush=True)
    model, training = train_clinic(work)
    print(f"  clinic: full training {training:.0f} s", flush=True)
    return model, training


def _reference_model(args: argparse.Namespace, work: Path) -> tuple[Path, Path, float | None]:
    """The reference project, its model and its full training time (None: given with ``--reference-project``)."""
    if args.reference_project:
        project = Path(args.reference_project).resolve()
        return project, sorted((project / "models").glob("*.tar.gz"))[-1], None
    print("Training the reference bot (`rasa init` project, empty cache)...", flush=True)
    project, model, training = train_reference(work)
    print(f"  reference: full training {training:.0f} s", flush=True)
    return project, model, training


def _measure(args: argparse.Namespace, work: Path, out: Path) -> tuple[SystemRun, SystemRun | None]:
    """Trains (or takes) both models, then measures the clinic assistant and, unless skipped, plain Rasa."""
    model, training = _clinic_model(args, work)
    reference_model = None if args.skip_reference else _reference_model(args, work)
    print("Clinic assistant (full stack):", flush=True)
    clinic = bench_clinic(work, model, args.concurrency, args.warmup, args.duration,
                          out / "profile-clinic.txt" if args.profile else None)
    clinic.training_s = training
    if reference_model is None:
        return clinic, None
    project, ref_model, ref_training = reference_model
    print("Reference bot (plain Rasa):", flush=True)
    reference = bench_reference(work, project, ref_model, args.concurrency, args.warmup, args.duration)
    reference.training_s = ref_training
    return clinic, reference


def _print_log_tails(work: Path) -> None:
    """The last lines of every server log of a failed run."""
    for log in sorted((work / "logs").rglob("*.log")):
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        print(f"--- {log.relative_to(work)} (last lines)\n" + "\n".join(tail), file=sys.stderr)


def _print_profile(profile: dict[str, float]) -> None:
    print("\nWhere the clinic server's time goes "
          "(py-spy samples of its event loop, idle left out; one conversation):")
    for name, share in profile.items():
        print(f"  {share:6.1%}  {name}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    loadavg_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="clinic-bench-"))
    print(f"Benchmark: {args.duration:g} s per level at {args.concurrency} conversations; work folder {work}",
          flush=True)
    try:
        clinic, reference = _measure(args, work, out)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"Benchmark failed: {exc}", file=sys.stderr)
        _print_log_tails(work)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    result = build_result(args, clinic, reference, loadavg_before)
    (out / "bench.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    draw_chart(result, out / "bench.png")
    if reference is not None and args.docs_chart:
        Path(args.docs_chart).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "bench.png", args.docs_chart)
    print()
    print(format_report(result))
    if clinic.profile:
        _print_profile(clinic.profile)
    print(f"\nWrote {out / 'bench.json'} and {out / 'bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
