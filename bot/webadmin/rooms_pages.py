"""Discreet rooms (name, site, notes), and the rota file: the whole rota
downloaded, or uploaded and applied, in the format of ``confidant admin rota
export`` / ``import`` (the admin service reads and checks it)."""

from __future__ import annotations

from aiohttp import web

from bot.webadmin.kit import Form, Kit, back
from bot.webadmin.pages import View
from handlers.administration.problems import AdminError

DONE = {"added": "saved", "changed": "saved", "removed": "removed"}
MAX_ROTA_FILE = 48 * 1024
"""Well above a rota of a hundred confidants, within the channel's request limit."""


def routes(kit: Kit) -> list[web.RouteDef]:
    rooms = RoomPages(kit)
    return [
        web.get("/rooms", kit.page(rooms.list)),
        web.post("/rooms", kit.change(rooms.add)),
        web.post("/rooms/{id}", kit.change(rooms.edit)),
        web.post("/rooms/{id}/remove", kit.change(rooms.remove)),
        web.get("/rota-file", kit.page(rooms.rota_file)),
        web.get("/rota-file/export", kit.page(rooms.export)),
        web.post("/rota-file", kit.change(rooms.import_file)),
    ]


class RoomPages:
    def __init__(self, kit: Kit) -> None:
        self.kit = kit

    async def list(self, view: View, sent: Form | None = None, error: str = "",
                   error_field: str = "", status: int = 200) -> web.Response:
        async with self.kit.service(view) as svc:
            rooms = await svc.rooms()
        view.show_outcome(DONE, error)
        return self.kit.render(view, "rooms.html", status=status, section="rooms", rooms=rooms,
                               sent=sent.as_dict() if sent else {}, error_field=error_field)

    async def _apply(self, view: View, form: Form | None, done: str, change: object
                     ) -> web.StreamResponse:
        try:
            async with self.kit.service(view) as svc:
                await change(svc)  # type: ignore[operator]
        except AdminError as err:
            return await self.list(view, form, self.kit.problem_text(view, err.problem),
                                   err.problem.field, status=400)
        raise back(f"/admin/rooms?done={done}")

    async def add(self, view: View, form: Form) -> web.StreamResponse:
        return await self._apply(view, form, "added", lambda svc: svc.add_room(
            form.get("name"), form.get("site"), form.get("notes")))

    async def edit(self, view: View, form: Form) -> web.StreamResponse:
        ref = view.request.match_info["id"]
        return await self._apply(view, None, "changed", lambda svc: svc.edit_room(
            ref, site=form.get("site"), notes=form.get("notes")))

    async def remove(self, view: View, form: Form) -> web.StreamResponse:
        ref = view.request.match_info["id"]
        return await self._apply(view, None, "removed", lambda svc: svc.remove_room(ref))

    # ------------------------------------------------------------ the rota file

    async def rota_file(self, view: View, error: str = "", result: str = "",
                        status: int = 200) -> web.Response:
        if error:
            view.flash.append(("error", error))
        if result:
            view.flash.append(("ok", result))
        return self.kit.render(view, "rota_file.html", status=status, section="rota_file")

    async def export(self, view: View) -> web.StreamResponse:
        async with self.kit.service(view) as svc:
            text: str = await svc.export_rota()
        return web.Response(body=text.encode(), content_type="application/toml",
                            charset="utf-8",
                            headers={"Content-Disposition": 'attachment; filename="rota.toml"'})

    async def import_file(self, view: View, form: Form) -> web.StreamResponse:
        raw = form.files.get("file", b"")
        if not raw.strip():
            return await self.rota_file(view, error=view.t("rota_file.no_file"), status=400)
        try:
            text = raw[:MAX_ROTA_FILE].decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        try:
            async with self.kit.service(view) as svc:
                result = await svc.import_rota(text)
        except AdminError as err:
            reason = self.kit.problem_text(view, err.problem)
            return await self.rota_file(view, error=view.t("rota_file.refused", reason=reason),
                                        status=400)
        counts = {k: result.counts.get(k, 0) for k in ("confidants", "shifts", "absences",
                                                       "rooms")}
        return await self.rota_file(view, result=view.t("rota_file.imported", **counts))
