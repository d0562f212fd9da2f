"""Charts as inline SVG geometry computed on the server (no JavaScript, no CDN): the plot's
frame, its rectangles and ticks, shared by the consumption dashboard (``monitoring.charts``)
and the backtest report (``strategies.backtest.charts``); each builds its own bars."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

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
class Chart:
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


def fill_percent(part: Decimal, whole: Decimal) -> Decimal:
    """How full a bar of ``part`` out of ``whole`` is drawn, 0 to 100: a cap lowered below
    what was already used is full, never above (the figures say by how much)."""
    if whole <= 0 or part <= 0:
        return Decimal("0.00")
    return min(part * 100 / whole, Decimal(100)).quantize(Decimal("0.01"))


def nice_max(value: Decimal) -> Decimal:
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return Decimal(step) * magnitude
    return value  # pragma: no cover
