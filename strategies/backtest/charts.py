"""The report's per-day charts as SVG geometry computed on the server (no JavaScript, no CDN),
drawn like the consumption dashboard's: for each day, the baseline's bar beside the
candidate's. (The dashboard's own module lives in ``monitoring``, which the core never
imports.)"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

BASELINE_COLOUR = "#9e9e9e"
CANDIDATE_COLOUR = "#1e88e5"
WIDTH = 720
HEIGHT = 200
LEFT = 56
RIGHT = 20
BOTTOM = 24
TOP = 10


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass
class PairedChart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_bottom: float = HEIGHT - BOTTOM
    plot_right: int = WIDTH - RIGHT
    rects: list[Rect] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    maximum: Decimal = Decimal(0)

    @property
    def empty(self) -> bool:
        return self.maximum == 0


def _nice_max(value: Decimal) -> Decimal:
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return Decimal(step) * magnitude
    return value  # pragma: no cover


def paired_chart(
    *,
    days: list[dt.date],
    baseline: list[Decimal],
    candidate: list[Decimal],
    labels: tuple[str, str],
) -> PairedChart:
    """Two bars a day: ``baseline`` (grey) then ``candidate`` (blue)."""
    chart = PairedChart()
    top = max([*baseline, *candidate], default=Decimal(0))
    chart.maximum = Decimal(top)
    scale = _nice_max(Decimal(top))
    plot_height = chart.plot_bottom - TOP
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    bar = max(slot * 0.38, 1)
    chart.legend = [(labels[0], BASELINE_COLOUR), (labels[1], CANDIDATE_COLOUR)]
    for index, day in enumerate(days):
        x = LEFT + index * slot + (slot - 2 * bar) / 2
        for offset, (values, colour, label) in enumerate(
            ((baseline, BASELINE_COLOUR, labels[0]), (candidate, CANDIDATE_COLOUR, labels[1]))
        ):
            value = Decimal(values[index])
            if value <= 0:
                continue
            height = float(value / scale) * plot_height
            chart.rects.append(
                Rect(
                    x=round(x + offset * bar, 2),
                    y=round(chart.plot_bottom - height, 2),
                    width=round(bar, 2),
                    height=round(height, 2),
                    colour=colour,
                    title=f"{day.isoformat()} · {label}: {value}",
                )
            )
        if index % 5 == 0 or index == len(days) - 1:
            chart.x_ticks.append(
                Tick(x=round(x + bar, 2), y=HEIGHT - 6, label=day.strftime("%m-%d"))
            )
    for fraction in (Decimal(0), Decimal("0.5"), Decimal(1)):
        value = scale * fraction
        label = f"{value:.0f}" if value == value.to_integral() else f"{value:.2f}"
        chart.y_ticks.append(
            Tick(
                x=LEFT - 6,
                y=round(chart.plot_bottom - float(fraction) * plot_height, 2),
                label=label,
            )
        )
    return chart
