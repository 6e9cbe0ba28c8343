"""The 12-month chart, drawn on the server as SVG (no JavaScript needed).

Only geometry here: the amounts come from services/reports.py. The template
(templates/dashboard/_chart.html) escapes every label.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..services.reports import MonthTotals

WIDTH, HEIGHT = 720, 240
TOP, BOTTOM, LEFT = 16, 40, 8


@dataclass
class Bar:
    x: int
    y: int
    width: int
    height: int
    kind: str  # given | received
    month: MonthTotals


def month_chart(months: list[MonthTotals]) -> dict:
    peak = max([m.given for m in months] + [m.received for m in months] + [1])
    slot = (WIDTH - LEFT * 2) // max(12, len(months))  # a new person's few months keep the bars' width
    bar_w = max(4, slot // 2 - 4)
    plot_h = HEIGHT - TOP - BOTTOM
    bars, labels = [], []
    for i, m in enumerate(months):
        x0 = LEFT + i * slot + 2
        for j, (kind, value) in enumerate((("given", m.given), ("received", m.received))):
            h = round(plot_h * value / peak) if value else 0
            bars.append(Bar(x0 + j * (bar_w + 2), TOP + plot_h - h, bar_w, h, kind, m))
        labels.append((x0 + bar_w, HEIGHT - BOTTOM + 16, m.period))
    return {"width": WIDTH, "height": HEIGHT, "bars": bars, "labels": labels, "baseline": TOP + plot_h, "peak": peak}
