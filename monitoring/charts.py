"""Bar charts as inline SVG geometry, computed on the server: no JavaScript, no CDN.

``bar_chart`` turns per-day series into rectangles a template draws inside ``<svg>``; stacked
when there are several series (one colour per strategy, with a legend).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from strategies.charts import HEIGHT, LEFT, RIGHT, TOP, WIDTH, Chart, Rect, Tick, nice_max

PALETTE = (
    "#1e88e5",
    "#43a047",
    "#fb8c00",
    "#8e24aa",
    "#00acc1",
    "#e53935",
    "#6d4c41",
    "#3949ab",
    "#c0ca33",
    "#d81b60",
)

BarChart = Chart
# Past the palette, hues a golden angle apart: no two series of one chart share a colour.
GOLDEN_ANGLE = 137.508


def series_colour(index: int) -> str:
    """The colour of the ``index``-th series of a chart; distinct for every index."""
    if index < len(PALETTE):
        return PALETTE[index]
    hue = (index - len(PALETTE)) * GOLDEN_ANGLE % 360
    lightness = 38 + (index - len(PALETTE)) % 3 * 10  # and a step of lightness for neighbours
    return f"hsl({hue:.1f}, 70%, {lightness}%)"


def bar_chart(
    *,
    days: list[dt.date],
    series: list[tuple[str, list[int] | list[Decimal]]],
    unit: str = "",
) -> BarChart:
    """Stacked bars, one per day; ``series`` is [(label, value per day)], bottom first."""
    chart = BarChart()
    totals = [
        sum((Decimal(values[i]) for _, values in series), Decimal(0)) for i in range(len(days))
    ]
    top: Decimal = max(totals, default=Decimal(0))
    chart.maximum = top
    scale_max = nice_max(top)
    plot_height = chart.plot_bottom - TOP
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    bar_width = max(slot * 0.7, 1)
    for index, (label, _values) in enumerate(series):
        chart.legend.append((label, series_colour(index)))
    for day_index, day in enumerate(days):
        x = LEFT + day_index * slot + (slot - bar_width) / 2
        base = chart.plot_bottom
        for index, (label, values) in enumerate(series):
            value = Decimal(values[day_index])
            if value <= 0:
                continue
            height = float(value / scale_max) * plot_height
            base -= height
            chart.rects.append(
                Rect(
                    x=round(x, 2),
                    y=round(base, 2),
                    width=round(bar_width, 2),
                    height=round(height, 2),
                    colour=series_colour(index),
                    title=f"{day.isoformat()} · {label}: {value:,}{unit}",  # 12,345.60
                )
            )
        if day_index % 5 == 0 or day_index == len(days) - 1:
            chart.x_ticks.append(
                Tick(x=round(x + bar_width / 2, 2), y=HEIGHT - 6, label=day.strftime("%m-%d"))
            )
    for fraction in (0, Decimal("0.5"), 1):
        y = chart.plot_bottom - float(fraction) * plot_height
        value = scale_max * fraction
        label = f"{value:,.0f}" if value == value.to_integral() else f"{value:,.2f}"
        chart.y_ticks.append(Tick(x=LEFT - 6, y=round(y, 2), label=label))
    return chart
