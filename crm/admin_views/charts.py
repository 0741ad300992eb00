"""Bar charts drawn on the server as SVG: the geometry here, the markup in
``templates/admin/_charts.html``. No script and no library: a chart is a picture with a
title, links on its bars and a table beside it for screen readers.

Coordinates are in the SVG's own units (``WIDTH`` x ``HEIGHT``); the browser scales the
``viewBox`` to the card's width.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from crm.formatting import compact_money, money

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 24, 40  # room for the axis labels and the bar labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: Decimal
    label: str  # under the bar (a bucket, a month)
    title: str  # what a pointer or a screen reader is told
    series: str  # CSS class: the bar's colour
    url: str | None = None
    value_label: str = ""  # printed above the bar (single-series charts)


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[tuple[float, str]]  # (x centre, text) under each group
    baseline: float
    left: int
    right: int


def nice_step(value: Decimal) -> Decimal:
    """The smallest of 1, 2, 2.5, 5 x 10^n at or above ``value`` (a gridline step)."""
    if value <= 0:
        return Decimal(1)
    exponent = Decimal(10) ** (value.adjusted())
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if value <= step * exponent:
            return Decimal(step) * exponent
    raise AssertionError(value)


def axis(largest: Decimal, lines: int = 4) -> tuple[Decimal, Decimal]:
    """(top, step) of an axis from 0 whose gridlines fall on round amounts: at most
    ``lines`` steps of a round size, the top a whole number of steps above the largest."""
    step = nice_step(Decimal(largest) / lines)
    count = max(1, (Decimal(largest) / step).to_integral_value(rounding=ROUND_CEILING))
    return step * count, step


def _scale(top: Decimal):
    plot = HEIGHT - TOP - BOTTOM

    def y(value: Decimal) -> float:
        return TOP + plot - float(max(value, Decimal(0)) / top) * plot

    return y


def _ticks(top: Decimal, step: Decimal, y) -> list[Tick]:
    count = int(top / step)
    return [Tick(y(step * i), compact_money(step * i)) for i in range(count + 1)]


def bar_chart(items: list[tuple[str, Decimal, str, str | None]]) -> Chart:
    """One bar per item: (label, value, series, url)."""
    top, step = axis(max((value for _, value, _, _ in items), default=Decimal(0)))
    y = _scale(top)
    slot = (WIDTH - LEFT - RIGHT) / max(len(items), 1)
    width = slot * 0.62
    bars, labels = [], []
    for i, (label, value, series, url) in enumerate(items):
        x = LEFT + slot * i + (slot - width) / 2
        bars.append(Bar(x, y(value), width, y(Decimal(0)) - y(value), value, label,
                        f"{label}: {money(value)}", series, url, compact_money(value)))
        labels.append((x + width / 2, label))
    return Chart(WIDTH, HEIGHT, bars, _ticks(top, step, y), labels, y(Decimal(0)), LEFT, WIDTH - RIGHT)


def grouped_bar_chart(groups: list[tuple[str, str, list[tuple[str, Decimal, str]]]]) -> Chart:
    """Bars side by side per group: (label, long label, [(series name, value, series)])."""
    values = [value for _, _, series in groups for _, value, _ in series]
    top, step = axis(max(values, default=Decimal(0)))
    y = _scale(top)
    slot = (WIDTH - LEFT - RIGHT) / max(len(groups), 1)
    per_group = max((len(series) for _, _, series in groups), default=1)
    width = slot * 0.8 / per_group
    bars, labels = [], []
    for i, (label, long_label, series) in enumerate(groups):
        start = LEFT + slot * i + slot * 0.1
        for j, (name, value, css) in enumerate(series):
            x = start + width * j
            bars.append(Bar(x, y(value), width, y(Decimal(0)) - y(value), value, label,
                            f"{long_label}, {name}: {money(value)}", css))
        labels.append((LEFT + slot * i + slot / 2, label))
    return Chart(WIDTH, HEIGHT, bars, _ticks(top, step, y), labels, y(Decimal(0)), LEFT, WIDTH - RIGHT)
