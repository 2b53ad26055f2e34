"""The report's aggregates as CSV (``python -m clinic.cli insights export-csv``): numbers only.

One row per number: ``metric, date, key, value``. ``date`` is empty for totals of the period;
``key`` names the part (``web``, ``p90``, ``medical_question``...). No patient text and no
conversation ids are in the report, so none can reach the file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

HEADER = ("metric", "date", "key", "value")


def _rows(metric: str, value: Any) -> Iterator[tuple[str, str, str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "per_day":
                for day in item:
                    for name, number in day.items():
                        if name != "date":
                            yield metric, day["date"], name, number
            elif isinstance(item, dict):
                yield from _rows(f"{metric}.{key}", item)
            else:
                yield metric, "", key, item
    elif isinstance(value, list):  # FAQ topics
        for item in value:
            yield metric, "", item["intent"], item["count"]
    else:
        yield metric, "", "", value


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV text (the period's bounds first)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for key in ("from", "to", "timezone"):
        writer.writerow(("period", "", key, report[key]))
    for metric, value in report.items():
        if metric not in ("from", "to", "timezone"):
            for row in _rows(metric, value):
                writer.writerow(["" if cell is None else cell for cell in row])
    return out.getvalue()
