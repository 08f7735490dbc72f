"""The anonymous figures: charts and a table for a chosen period, and the
same figures as CSV and as a one-page PDF.

Every number comes from the admin service's report (`ReportData`), hidden
exactly as ``confidant report`` prints it; the page, the charts, the CSV and
the PDF only lay out those cells, so none of them can show a count the
report hides.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from markupsafe import Markup

from bot.webadmin import charts
from bot.webadmin.figures_pdf import figures_pdf
from bot.webadmin.kit import Kit
from bot.webadmin.pages import View
from domain.parsing import month_label
from handlers.administration.problems import AdminError
from handlers.administration.report import ReportData
from handlers.administration.service import report_csv

CHANNEL_NAMES = {"telegram": "Telegram", "matrix": "Matrix", "web": "Web"}
"""Channels by their own names, the same in every language."""


@dataclass(frozen=True)
class Period:
    start: str
    end: str


def routes(kit: Kit) -> list[web.RouteDef]:
    pages = FiguresPages(kit)
    return [
        web.get("/figures", kit.page(pages.figures)),
        web.get("/figures.csv", kit.page(pages.csv)),
        web.get("/figures.pdf", kit.page(pages.pdf)),
    ]


def row_labels(view: View, data: ReportData) -> dict[tuple[str, str], str]:
    """Each row of the report in the admin's words."""
    labels: dict[tuple[str, str], str] = {}
    for dimension, value in data.rows:
        if dimension == "cases":
            labels[(dimension, value)] = view.t("figures.row_cases")
        elif dimension == "theme":
            key = f"theme.{value}"
            labels[(dimension, value)] = view.tt(key) if view.tr.has(view.lang, key) else value
        elif dimension == "channel":
            labels[(dimension, value)] = CHANNEL_NAMES.get(value, value)
        else:
            labels[(dimension, value)] = view.t(f"figures.row_{value}")
    return labels


class FiguresPages:
    def __init__(self, kit: Kit) -> None:
        self.kit = kit

    def period(self, view: View) -> Period:
        """``?from=2026-01&to=2026-12``; by default this year up to this month."""
        today = self.kit.today()
        return Period(start=view.request.query.get("from") or f"{today.year}-01",
                      end=view.request.query.get("to") or month_label(today))

    async def _data(self, view: View, period: Period) -> ReportData | None:
        try:
            async with self.kit.service(view) as svc:
                data: ReportData = await svc.report(period.start, period.end)
                return data
        except AdminError as err:
            view.flash.append(("error", self.kit.problem_text(view, err.problem)))
            return None

    async def figures(self, view: View) -> web.StreamResponse:
        period = self.period(view)
        data = await self._data(view, period)
        if data is None:
            period = Period(start=f"{self.kit.today().year}-01", end=month_label(self.kit.today()))
            data = await self._data(view, period)
        assert data is not None
        labels = row_labels(view, data)
        pages = self.kit.pages

        def by(dimension: str) -> dict[str, str]:
            return {v: labels[(d, v)] for d, v in data.rows if d == dimension}

        drawn = [
            charts.months_chart(view, data),
            charts.shares_chart(view, data, "theme", "chart-themes",
                                view.t("figures.per_theme"), by("theme")),
            charts.shares_chart(view, data, "channel", "chart-channels",
                                view.t("figures.per_channel"), by("channel")),
            charts.shares_chart(view, data, "heard", "chart-heard",
                                view.t("figures.heard"), by("heard")),
        ]
        svgs = [(chart.title, Markup(charts.render(pages, chart)))  # noqa: S704 - autoescaped
                for chart in drawn]
        months = [(m, charts.month_name(view, m)) for m in data.months]
        return self.kit.render(
            view, "figures.html", section="figures", data=data, period=period, svgs=svgs,
            labels=labels, months=months, query=f"from={data.months[0]}&to={data.months[-1]}")

    async def csv(self, view: View) -> web.StreamResponse:
        """The same cells as the page, as ``confidant report --format csv`` writes them."""
        period = self.period(view)
        data = await self._data(view, period)
        if data is None:
            raise web.HTTPBadRequest(text=view.flash[-1][1])
        return _download(report_csv(data).encode(), "text/csv", _name(data, "csv"))

    async def pdf(self, view: View) -> web.StreamResponse:
        """One page for the yearly report: the month chart, shares and the table."""
        period = self.period(view)
        data = await self._data(view, period)
        if data is None:
            raise web.HTTPBadRequest(text=view.flash[-1][1])
        body = figures_pdf(view, data, row_labels(view, data), self.kit.pages.org_name)
        return _download(body, "application/pdf", _name(data, "pdf"))


def _name(data: ReportData, suffix: str) -> str:
    return f"figures-{data.months[0]}-{data.months[-1]}.{suffix}"


def _download(body: bytes, mime: str, filename: str) -> web.Response:
    return web.Response(body=body, content_type=mime, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})

