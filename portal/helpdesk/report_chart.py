"""The report's bar chart, laid out here and drawn as SVG by the template
(``helpdesk/_report_chart.html``): no script, the numbers also in a table beside it.

Pure: the geometry of a chart of weekly counts in a fixed ``viewBox``; CSS scales it to the
width available, so it never makes the page scroll sideways.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from portal import paging

WIDTH = 640
HEIGHT = 240
#: Room for the axis labels: left (counts) and bottom (dates).
LEFT = 56
BOTTOM = 28
TOP = 12
RIGHT = 8
GAP = 0.25  # of each bar's slot


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str
    #: Shown under the bar (every few bars when there are many).
    tick: str | None


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    #: (y, label) of the horizontal grid lines.
    grid: list[tuple[float, str]]
    left: int
    right: int
    baseline: float


def _nice_top(peak: int) -> int:
    """A round axis maximum at or above ``peak`` (1, 2, 5 × a power of ten)."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if step * top >= peak:
                return step * top
        top *= 10


def weekly(weeks: list[tuple[date, int]]) -> Chart:
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_h
    top = _nice_top(max((count for _day, count in weeks), default=0))
    slot = plot_w / max(1, len(weeks))
    every = paging.page_count(len(weeks), 8)  # at most eight date labels
    bars = []
    for i, (day, count) in enumerate(weeks):
        height = plot_h * count / top if top else 0
        bars.append(
            Bar(
                x=round(LEFT + i * slot + slot * GAP / 2, 1),
                y=round(baseline - height, 1),
                width=round(slot * (1 - GAP), 1),
                height=round(height, 1),
                count=count,
                label=f"Week from {day:%-d %b %Y}: {count}",
                tick=f"{day:%-d %b}" if i % every == 0 else None,
            )
        )
    steps = 4 if top % 4 == 0 else 2 if top % 2 == 0 else 1
    grid = [
        (round(baseline - plot_h * k / steps, 1), f"{top * k // steps:,}") for k in range(steps + 1)
    ]
    return Chart(WIDTH, HEIGHT, bars, grid, LEFT, WIDTH - RIGHT, baseline)
