"""The anonymous figures as charts, drawn on the server as SVG (no script):
bars per month, and bars with shares for themes, channels and "heard within
10 days".

A chart draws only what the report shows.  A hidden cell (``<3``, ``x``,
``?``) carries no count at all (`ReportCell.count` is None), so it gets no
bar: only the word "hidden" and its mark, exactly as the table and
``confidant report`` print it.  Shares are worked out only from shown
counts over a shown total.
"""

from __future__ import annotations

from dataclasses import dataclass

from babel.dates import format_date
from babel.numbers import format_decimal

from bot.webadmin.pages import Pages, View
from domain.parsing import parse_month
from handlers.administration.report import ReportCell, ReportData

MONTHS_HEIGHT = 220
BAR_AREA = 160
"""Pixels of the tallest bar in the month chart."""
ROW_HEIGHT = 26
LABEL_WIDTH = 230
SHARE_WIDTH = 470
LABEL_CHARS = 32
"""Longer row names are cut with "…" in the chart (the table and the tooltip have them whole)."""


@dataclass(frozen=True)
class Bar:
    """One bar as drawn; ``length`` is 0 and ``hidden`` set for a hidden cell."""

    key: str
    """``month|dimension|value``: which report cell it draws (for tests and tools)."""
    label: str
    shown: str
    """The count, or the mark it hides behind."""
    hidden: bool
    x: float
    y: float
    length: float
    figure: str
    """The count beside the bar (with its share), or the mark."""
    text: str
    """What a screen reader hears, and the tooltip."""


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    width: int
    height: int
    bars: list[Bar]
    vertical: bool
    baseline: float
    hidden_word: str


def cell_key(cell: ReportCell) -> str:
    return f"{cell.month}|{cell.dimension}|{cell.value}"


def month_name(view: View, month: str) -> str:
    """``2026-03`` → ``Mar 2026`` in the admin's language."""
    return format_date(parse_month(month), "MMM y", locale=view.lang)


def months_chart(view: View, data: ReportData) -> Chart:
    """Conversations per month of first contact, one vertical bar each."""
    cells = [data.cell(m, "cases", "all") for m in data.months]
    top = max([c.count for c in cells if c.count is not None] + [1])
    slot = max(28.0, min(60.0, 700 / max(len(cells), 1)))
    width = int(40 + slot * len(cells))
    baseline = 20 + BAR_AREA
    bars = []
    for i, cell in enumerate(cells):
        label = month_name(view, cell.month)
        length = 0.0 if cell.count is None else BAR_AREA * cell.count / top
        bars.append(Bar(
            key=cell_key(cell), label=label, shown=str(cell.shown), hidden=cell.hidden,
            x=40 + slot * i + slot * 0.15, y=baseline - length, length=length,
            figure=str(cell.shown), text=_spoken(view, label, cell)))
    return Chart(id="chart-months", title=view.t("figures.per_month"), width=width,
                 height=MONTHS_HEIGHT, bars=bars, vertical=True, baseline=baseline,
                 hidden_word=view.t("figures.hidden"))


def shares_chart(view: View, data: ReportData, dimension: str, chart_id: str,
                 title: str, labels: dict[str, str]) -> Chart:
    """One horizontal bar per value of ``dimension`` over the whole period,
    with its share of the conversations when both are shown."""
    total = data.cell("all", "cases", "all")
    cells = [data.cell("all", d, v) for d, v in data.rows if d == dimension]
    top = max([c.count for c in cells if c.count is not None] + [1])
    bars = []
    for i, cell in enumerate(cells):
        label = labels.get(cell.value, cell.value)
        length = 0.0 if cell.count is None else (SHARE_WIDTH - LABEL_WIDTH - 90) * cell.count / top
        figure = str(cell.shown)
        if cell.count is not None and total.count:
            share = format_decimal(round(100 * cell.count / total.count), locale=view.lang)
            figure = view.t("figures.share", count=cell.count, share=share)
        text = (view.t("figures.bar", label=label, value=figure) if cell.count is not None
                else _spoken(view, label, cell))
        short = label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1].rstrip() + "…"
        bars.append(Bar(key=cell_key(cell), label=short, shown=str(cell.shown),
                        hidden=cell.hidden, x=LABEL_WIDTH, y=10 + ROW_HEIGHT * i,
                        length=length, figure=figure, text=text))
    return Chart(id=chart_id, title=title, width=SHARE_WIDTH,
                 height=20 + ROW_HEIGHT * len(cells), bars=bars, vertical=False,
                 baseline=LABEL_WIDTH, hidden_word=view.t("figures.hidden"))


def _spoken(view: View, label: str, cell: ReportCell) -> str:
    if cell.count is None:
        return view.t("figures.hidden_bar", label=label, mark=cell.mark)
    return view.t("figures.bar", label=label, value=cell.count)


def render(pages: Pages, chart: Chart) -> str:
    """The chart as inline SVG markup."""
    return pages.fragment("chart.svg", chart=chart)
