"""The report's per-day charts, drawn like the consumption dashboard's (``strategies.charts``):
for each day, the baseline's bar beside the candidate's."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from strategies.charts import HEIGHT, LEFT, RIGHT, TOP, WIDTH, Chart, Rect, Tick, nice_max

BASELINE_COLOUR = "#9e9e9e"
CANDIDATE_COLOUR = "#1e88e5"
PairedChart = Chart


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
    scale = nice_max(Decimal(top))
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
                    title=f"{day.isoformat()} · {label}: {value:,}",  # 12,345.60
                )
            )
        if index % 5 == 0 or index == len(days) - 1:
            chart.x_ticks.append(
                Tick(x=round(x + bar, 2), y=HEIGHT - 6, label=day.strftime("%m-%d"))
            )
    for fraction in (Decimal(0), Decimal("0.5"), Decimal(1)):
        value = scale * fraction
        label = f"{value:,.0f}" if value == value.to_integral() else f"{value:,.2f}"
        chart.y_ticks.append(
            Tick(
                x=LEFT - 6,
                y=round(chart.plot_bottom - float(fraction) * plot_height, 2),
                label=label,
            )
        )
    return chart
