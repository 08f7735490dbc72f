"""Confidants: register one (only with the eligibility attestation, the
exclusions listed beside the tick box in the admin's language), change the
introduction and languages, give a console login link, deactivate.

The admin service decides everything (refuses without the attestation,
keeps who attested and when, audits every change); this page only asks
and shows.  A confidant's channel addresses are never shown: only which
channels they are reached on.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from bot.webadmin.kit import Form, Kit, back
from bot.webadmin.pages import View
from domain.vocabulary import SUPPORTED_LANGUAGES
from handlers.administration.problems import AdminError
from handlers.administration.service import EXCLUSION_KEYS
from handlers.i18n import LANGUAGE_NAMES

DONE = {"added": "confidants.added", "updated": "saved", "deactivated": "confidants.deactivated"}


def routes(kit: Kit, console_link: Callable[[str], str]) -> list[web.RouteDef]:
    pages = ConfidantPages(kit, console_link)
    return [
        web.get("/confidants", kit.page(pages.list)),
        web.post("/confidants", kit.change(pages.add)),
        web.post("/confidants/{id}", kit.change(pages.edit)),
        web.post("/confidants/{id}/link", kit.change(pages.link)),
        web.post("/confidants/{id}/deactivate", kit.change(pages.deactivate)),
    ]


class ConfidantPages:
    def __init__(self, kit: Kit, console_link: Callable[[str], str]) -> None:
        self.kit = kit
        self.console_link = console_link

    async def list(self, view: View, sent: Form | None = None, error: str = "",
                   error_field: str = "", link: tuple[str, str] | None = None,
                   status: int = 200, editing_id: str = "") -> web.Response:
        query = view.request.query
        async with self.kit.service(view) as svc:
            people = await svc.confidants()
        view.show_outcome(DONE, error)
        editing_id = editing_id or query.get("edit", "")
        editing = next((c for c in people if c.id == editing_id), None)
        return self.kit.render(
            view, "confidants.html", status=status, section="confidants", people=people,
            editing=editing, sent=sent.as_dict() if sent else {},
            sent_languages=sent.all("languages") if sent else [],
            error_field=error_field, link=link, exclusions=[view.tt(k) for k in EXCLUSION_KEYS],
            all_languages=[(code, LANGUAGE_NAMES[code]) for code in SUPPORTED_LANGUAGES])

    async def add(self, view: View, form: Form) -> web.StreamResponse:
        assert view.admin is not None
        try:
            async with self.kit.service(view) as svc:
                await svc.add_confidant(
                    form.get("name"), attest_eligible=form.checked("attest"),
                    attested_by=view.admin.name, languages=form.all("languages") or None,
                    bio=form.get("bio"), telegram=form.get("telegram") or None,
                    matrix=form.get("matrix") or None, web=form.checked("web"))
        except AdminError as err:
            return await self._refused(view, form, err)
        raise back("/admin/confidants?done=added")

    async def edit(self, view: View, form: Form) -> web.StreamResponse:
        ref = view.request.match_info["id"]
        try:
            async with self.kit.service(view) as svc:
                await svc.edit_confidant(ref, bio=form.get("bio"),
                                         languages=form.all("languages") or "",
                                         web=form.checked("web"))
        except AdminError as err:
            return await self._refused(view, form, err)
        raise back("/admin/confidants?done=updated")

    async def link(self, view: View, form: Form) -> web.StreamResponse:
        """A one-time console login link for the confidant, shown once, here."""
        try:
            async with self.kit.service(view) as svc:
                info, secret, _ = await svc.console_token(view.request.match_info["id"])
        except AdminError as err:
            return await self._refused(view, None, err)
        return await self.list(view, link=(info.name, self.console_link(secret)))

    async def deactivate(self, view: View, form: Form) -> web.StreamResponse:
        try:
            async with self.kit.service(view) as svc:
                await svc.deactivate_confidant(view.request.match_info["id"])
        except AdminError as err:
            return await self._refused(view, None, err)
        raise back("/admin/confidants?done=deactivated")

    async def _refused(self, view: View, form: Form | None, err: AdminError) -> web.Response:
        reason = self.kit.problem_text(view, err.problem)
        if err.problem.key == "adm.error.attestation":
            reason = view.t("confidants.attest_required")
        return await self.list(view, form, reason, err.problem.field, status=400,
                               editing_id=view.request.match_info.get("id", ""))
