"""tools.bench: the statistics and report parts (no servers are started)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tools import bench
from tools.bench import (
    SCRIPTS,
    TURN_TYPES,
    Turn,
    check_targets,
    format_report,
    percentile,
    process_tree,
    ratios,
    saturated,
    summarize,
    summarize_level,
    summarize_profile,
)

# ------------------------------------------------------------------ percentiles


def test_percentile_interpolates_between_ranks_like_numpy() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == 25.0
    assert percentile(values, 95) == pytest.approx(38.5)  # numpy.percentile gives 38.5
    assert percentile([7.0], 99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input


def test_percentile_refuses_no_values_and_bad_q() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_gives_the_percentiles_and_none_without_values() -> None:
    stats = summarize([float(v) for v in range(1, 101)])
    assert stats["n"] == 100 and stats["mean"] == 50.5 and stats["max"] == 100.0
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p95"] == pytest.approx(95.05)
    assert stats["p99"] == pytest.approx(99.01)
    assert summarize([]) == {"n": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}


# ------------------------------------------------------------------ one level


def test_a_level_counts_only_turns_ending_inside_the_window() -> None:
    turns = [
        Turn("faq", 0.5, 0.9, True),  # warm-up: ended before the window
        Turn("faq", 1.0, 1.010, True),
        Turn("faq", 1.1, 1.130, True),
        Turn("booking", 1.2, 1.300, True),
        Turn("chitchat", 2.0, 2.020, False, "HTTP 500"),
        Turn("escalation", 2.9, 3.5, True),  # ended after the window
    ]

    summary = summarize_level(turns, (1.0, 3.0), concurrency=4)

    assert summary["concurrency"] == 4 and summary["duration_s"] == 2.0
    assert summary["messages"] == 3  # successful turns only
    assert summary["throughput_mps"] == 1.5
    assert summary["errors"] == 1 and summary["error_kinds"] == {"HTTP 500": 1}
    assert summary["turns"]["faq"]["n"] == 2
    assert summary["turns"]["faq"]["p50"] == pytest.approx(20.0)
    assert summary["turns"]["booking"]["p50"] == pytest.approx(100.0)
    assert summary["turns"]["escalation"]["n"] == 0 and summary["turns"]["escalation"]["p50"] is None
    assert summary["turns"]["chitchat"]["n"] == 0  # its only turn failed
    assert set(summary["turns"]) == set(TURN_TYPES)
    json.dumps(summary)  # written to bench.json as is


def level_result(concurrency: int, throughput: float, faq_p50: float | None = None, p95: float = 100.0) -> dict:
    turns = {kind: summarize([]) for kind in TURN_TYPES}
    if faq_p50 is not None:
        turns["faq"] = {"n": 10, "mean": faq_p50, "p50": faq_p50, "p95": faq_p50, "p99": faq_p50, "max": faq_p50}
    return {"concurrency": concurrency, "throughput_mps": throughput, "errors": 0, "turns": turns,
            "all": {"n": 10, "mean": p95, "p50": p95 / 2, "p95": p95, "p99": p95, "max": p95}}


def clinic_system(**overrides) -> dict:
    system = {
        "training_s": 60.0, "cold_start_s": 10.0, "peak_rss_mb": 600.0,
        "levels": [level_result(1, 70.0, faq_p50=12.0), level_result(20, 120.0, p95=200.0),
                   level_result(50, 110.0, p95=500.0)],
    }
    return system | overrides


def reference_system() -> dict:
    return {
        "training_s": 120.0, "cold_start_s": 20.0, "peak_rss_mb": 1000.0,
        "levels": [level_result(1, 20.0, faq_p50=48.0), level_result(20, 30.0), level_result(50, 40.0)],
    }


# ------------------------------------------------------------------ ratios and targets


def test_saturated_throughput_is_the_best_level() -> None:
    assert saturated(clinic_system()) == (120.0, 20)
    assert saturated({"levels": []}) == (None, None)


def test_ratios_compare_the_clinic_with_the_reference() -> None:
    result = ratios(clinic_system(), reference_system())
    assert result["throughput"] == pytest.approx(3.0)  # 120 / 40 (both saturated)
    assert result["faq_p50_single_speedup"] == pytest.approx(4.0)  # 48 ms / 12 ms
    assert result["peak_rss"] == pytest.approx(0.6)
    assert result["cold_start"] == pytest.approx(0.5)
    assert result["training"] == pytest.approx(0.5)
    assert ratios(clinic_system(), None) == {}
    assert ratios(clinic_system(training_s=None), reference_system())["training"] is None


def test_targets_are_met_or_not_or_not_measured() -> None:
    clinic = clinic_system()
    targets = {t["name"]: t for t in check_targets(clinic, ratios(clinic, reference_system()))}
    assert set(targets) == set(bench.TARGETS)
    assert all(t["met"] for t in targets.values())
    assert targets["p95_at_20_ms"]["value"] == 200.0

    slow = clinic_system(cold_start_s=16.0,
                         levels=[level_result(1, 50.0, faq_p50=15.5), level_result(20, 60.0, p95=251.0)])
    targets = {t["name"]: t for t in check_targets(slow, ratios(slow, reference_system()))}
    assert targets["faq_p50_single_ms"]["met"] is False
    assert targets["p95_at_20_ms"]["met"] is False
    assert targets["cold_start_s"]["met"] is False
    assert targets["throughput_ratio"]["met"] is False  # 60 / 40 = 1.5x
    assert targets["peak_rss_mb"]["met"] is True

    alone = {t["name"]: t for t in check_targets(clinic_system(training_s=None, levels=[]), {})}
    assert alone["throughput_ratio"]["met"] is None and alone["throughput_ratio"]["value"] is None
    assert alone["training_s"]["met"] is None and alone["p95_at_20_ms"]["met"] is None


def result_for_report() -> dict:
    clinic, reference = clinic_system(), reference_system()
    ratio = ratios(clinic, reference)
    return {
        "machine": {"cpus": 2, "loadavg_before": [1.5, 1.2, 1.0], "loadavg_after": [2.0, 1.5, 1.1]},
        "systems": {"clinic": clinic, "reference": reference},
        "ratios": ratio,
        "targets": check_targets(clinic, ratio),
    }


def test_the_report_prints_levels_ratios_and_targets() -> None:
    text = format_report(result_for_report())
    assert "== clinic: training 60.0 s, cold start 10.0 s, peak RSS 600 MB" in text
    assert "== reference:" in text
    assert "saturated throughput: 120.0 messages/s (at 20 conversations)" in text
    assert "saturated throughput      3.00x" in text
    assert "FAQ p50 (one conversation) 4.00x faster" in text
    assert "FAQ turn p50, one conversation" in text and "NOT MET" not in text
    lines = [line for line in text.splitlines() if line.strip().startswith("1 faq")]
    assert lines and "12.0" in lines[0]


def test_the_chart_is_written(tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    bench.draw_chart(result_for_report(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    only_clinic = result_for_report() | {"systems": {"clinic": clinic_system(), "reference": None}}
    bench.draw_chart(only_clinic, tmp_path / "alone.png")
    assert (tmp_path / "alone.png").exists()


# ------------------------------------------------------------------ scripts, profile, processes


def test_every_script_turn_has_a_known_type_and_every_type_is_played() -> None:
    played = {kind for name in bench.SCRIPT_ORDER for kind, _ in SCRIPTS[name]}
    assert played == set(TURN_TYPES)
    assert set(bench.SCRIPT_ORDER) == set(SCRIPTS)


def test_profile_samples_are_counted_by_category_and_idle_is_left_out() -> None:
    root = "<module> (rasa:8);run (sanic/app.py:1204)"
    raw = [
        f"{root};_retrieve (rasa/core/tracker_store.py:1264);all (sqlalchemy/orm/query.py:2773) 30",
        f"{root};save (rasa/core/tracker_store.py:1333);commit (sqlalchemy/orm/session.py:1404) 20",
        f"{root};_validate_action_result (rasa/core/actions/action.py:704);validate (jsonschema/validators.py:1) 40",
        f"{root};check (clinic/safety/guard.py:400) 10",
        f"{root};select (selectors.py:469) 500",
        "<module> (rasa:8);serve (sanic/server/runners.py:155) 300",
        "garbage line",
    ]
    shares = summarize_profile(raw)
    assert shares["tracker store: retrieve"] == pytest.approx(0.3)
    assert shares["tracker store: save"] == pytest.approx(0.2)
    assert shares["custom action reply validation (jsonschema)"] == pytest.approx(0.4)
    assert shares["safety guard"] == pytest.approx(0.1)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert summarize_profile([]) == {}


def test_the_process_tree_includes_this_process() -> None:
    assert process_tree(os.getpid())[0] == os.getpid()
    assert bench.tree_rss_mb(os.getpid()) > 1
