"""Charts of the insights page as SVG drawn on the server.

The console's Content-Security-Policy allows no inline script or style, so the charts are plain
SVG elements with presentation attributes (positions, sizes) and classes (``series-N``) that
console.css colours; every bar carries a ``<title>`` with its number, and the page prints the
numbers beside each chart. Text is escaped here; the result is safe to insert as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 220
MARGIN_LEFT = 44
MARGIN_BOTTOM = 24
MARGIN_TOP = 8
BAR_ROW = 22  # height of a horizontal bar's row


@dataclass(frozen=True)
class Series:
    """One stacked series of a per-day chart: its key in each day's numbers and its label."""

    key: str
    label: str


def _nice_max(value: float) -> float:
    """The axis maximum: ``value`` rounded up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value  # pragma: no cover - the loop always returns


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _open(chart_id: str, label: str, height: int) -> list[str]:
    return [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{escape(chart_id)}-title">{escape(label)}</title>',
    ]


def _axis(top: float, plot_height: float, maximum: float, percent: bool) -> list[str]:
    parts = []
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_height * (1 - fraction)
        text = f"{fraction * 100:.0f}%" if percent else _number(maximum * fraction)
        parts.append(f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
    return parts


def daily_bars(chart_id: str, label: str, days: Sequence[dict], series: Sequence[Series],
               *, percent: bool = False) -> Markup:
    """Columns per day, one stacked segment per series (``percent``: values are shares 0-1).

    Args:
        chart_id: the element id (tests and the page's links find the chart by it).
        label: what the chart shows, read by screen readers.
        days: one dict per day with ``date`` and a number per series key (None counts as 0).
        series: the stacked series, bottom first.
        percent: the values are shares from 0 to 1 (the axis reads 0% to 100%).
    """
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    totals = [sum(day.get(s.key) or 0 for s in series) for day in days]
    maximum = 1.0 if percent else _nice_max(max(totals, default=0))
    parts = _open(chart_id, label, HEIGHT) + _axis(MARGIN_TOP, plot_height, maximum, percent)
    slot = (WIDTH - MARGIN_LEFT) / max(len(days), 1)
    bar = max(slot * 0.8, 1.0)
    for index, day in enumerate(days):
        x = MARGIN_LEFT + index * slot + (slot - bar) / 2
        bottom = float(MARGIN_TOP + plot_height)
        for number, item in enumerate(series, start=1):
            value = day.get(item.key) or 0
            if value <= 0:
                continue
            height = plot_height * value / maximum
            bottom -= height
            shown = f"{value * 100:.0f}%" if percent else _number(value)
            parts.append(
                f'<rect class="bar series-{number}" x="{x:.1f}" y="{bottom:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" data-date="{escape(day["date"])}" data-value="{escape(shown)}">'
                f'<title>{escape(day["date"])}: {escape(item.label)} {escape(shown)}</title></rect>')
    if days:
        baseline = HEIGHT - 6
        parts.append(f'<text class="axis" x="{MARGIN_LEFT}" y="{baseline}">{escape(days[0]["date"])}</text>')
        parts.append(f'<text class="axis" x="{WIDTH}" y="{baseline}" text-anchor="end">'
                     f'{escape(days[-1]["date"])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bars(chart_id: str, label: str, items: Sequence[tuple[str, float]]) -> Markup:
    """One labelled bar per item, in the given order (FAQ topics, the booking funnel)."""
    label_width = 200
    height = max(len(items), 1) * BAR_ROW + 8
    maximum = _nice_max(max((value for _name, value in items), default=0))
    parts = _open(chart_id, label, height)
    for index, (name, value) in enumerate(items):
        y = 4 + index * BAR_ROW
        length = (WIDTH - label_width - 60) * value / maximum
        parts.append(f'<text class="axis" x="{label_width - 8}" y="{y + 14}" text-anchor="end">{escape(name)}</text>')
        parts.append(
            f'<rect class="bar series-1" x="{label_width}" y="{y + 2}" width="{max(length, 0):.1f}" '
            f'height="{BAR_ROW - 6}" data-label="{escape(name)}" data-value="{escape(_number(value))}">'
            f'<title>{escape(name)}: {escape(_number(value))}</title></rect>')
        parts.append(f'<text class="value" x="{label_width + length + 6:.1f}" y="{y + 14}">'
                     f'{escape(_number(value))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
