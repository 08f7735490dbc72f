"""The privacy notice, computed for one conversation from the channels it
really uses.

"End-to-end encrypted" is a promise only the whole route can keep: the
employee's side and every confidant who can read the case.  So the notice is
not a fixed text per channel: `route_of` looks up who can read the case
(the assigned confidant, else the chosen one, else everyone who may claim it)
and over which channels the bot reaches them, and `compose` says, in the
reader's language, only what that route makes true:

* end-to-end encrypted only when the employee writes on Matrix and every
  confidant who can read the case is reached on Matrix alone;
* the web chat is "encrypted on the way" only when it is served over HTTPS
  (``web.public_url``), and never end-to-end: the bot reads what passes;
* what the employer or the platform may still see on the employee's channel,
  and the advice to use an own device and account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from handlers.context import Ctx
from handlers.notifications import candidates
from store.models import Case, Confidant

MATRIX, TELEGRAM, WEB = "matrix", "telegram", "web"

Words = Callable[..., str]
"""``t(key, **values)``: a UI string in the reader's language."""

YOUR_SIDE = {
    MATRIX: "privacy.you.matrix",
    TELEGRAM: "privacy.you.telegram",
}
"""How the employee's own channel carries their words to the bot (web: see `_your_side`)."""

READER_SIDE = {
    TELEGRAM: "privacy.readers.telegram",
}
"""A confidant's channel that is not end-to-end, and what to say about it."""

SEEN_BY = {
    MATRIX: "privacy.seen.matrix",
    TELEGRAM: "privacy.seen.telegram",
    WEB: "privacy.seen.web",
}
"""Who may still see that the employee talks to the bot, per employee channel."""


@dataclass(frozen=True)
class Route:
    """The channels one conversation travels over."""

    employee: str
    """The channel the employee writes on."""
    readers: frozenset[str]
    """Channels over which a confidant who can read the case receives it."""
    web_https: bool
    """Whether the web channel (chat and console) is served over HTTPS."""
    matrix_offered: bool = False
    """Whether the organisation runs the Matrix channel (so it can be suggested)."""
    end_to_end_channels: frozenset[str] = frozenset({MATRIX})
    """Channels that declare themselves end-to-end (`CoreSettings.end_to_end_channels`)."""

    @property
    def end_to_end(self) -> bool:
        """True only when nothing on the way is readable by a platform: the
        employee and every confidant who can read the case are on a channel
        that declares itself end-to-end (of the shipped ones, Matrix alone)."""
        e2e = self.end_to_end_channels
        return self.employee in e2e and bool(self.readers) and self.readers <= e2e


async def readers_of(ctx: Ctx, case: Case | None) -> list[Confidant]:
    """Who can read the conversation: the assigned confidant; before a claim,
    everyone who may claim it (the chosen confidant, or all); with no case
    yet, every confidant a new case could reach."""
    if case is not None and case.confidant_id:
        assigned = await ctx.tx.confidants.by_id(case.confidant_id)
        return [assigned] if assigned is not None else []
    if case is not None:
        return await candidates(ctx, case)
    return await ctx.tx.confidants.all()


async def route_of(ctx: Ctx, case: Case | None) -> Route:
    """The route of the employee's conversation, from the channels the bot
    really runs (a confidant's address on a channel that is not running
    receives nothing)."""
    running = ctx.settings.channels
    readers: set[str] = set()
    for confidant in await readers_of(ctx, case):
        readers.update(ch for ch in await ctx.tx.confidants.channels(confidant) if ch in running)
    return Route(employee=ctx.inbound.channel, readers=frozenset(readers),
                 web_https=ctx.settings.web_https, matrix_offered=MATRIX in running,
                 end_to_end_channels=ctx.settings.end_to_end_channels)


def _your_side(route: Route) -> str | None:
    if route.employee == WEB:
        return "privacy.you.web_https" if route.web_https else "privacy.you.web_http"
    return YOUR_SIDE.get(route.employee)


def _reader_sides(route: Route) -> list[str]:
    """One sentence per kind of confidant channel that is not end-to-end."""
    if not route.readers:
        return ["privacy.readers.none"]
    if route.readers <= {MATRIX}:
        return ["privacy.readers.matrix"]
    keys = []
    for channel in sorted(route.readers - {MATRIX}):
        if channel == WEB:
            keys.append("privacy.readers.web_https" if route.web_https
                        else "privacy.readers.web_http")
        else:
            keys.append(READER_SIDE.get(channel, "privacy.readers.other"))
    return keys


def encryption_keys(route: Route) -> list[str]:
    """The sentences about encryption, in order: the employee's side, the
    confidants' side, the verdict for the whole conversation."""
    keys = [key for key in (_your_side(route),) if key]
    keys += _reader_sides(route)
    keys.append("privacy.e2e_yes" if route.end_to_end else "privacy.e2e_no")
    if (route.employee != MATRIX and route.matrix_offered and route.readers
            and route.readers <= {MATRIX}):
        keys.append("privacy.try_matrix")
    return keys


def compose(route: Route, t: Words, *, retention_days: int, idle_days: int) -> str:
    """The whole notice for one route, as the employee reads it."""
    lines = [t("privacy.title"), t("privacy.code"), t("privacy.identify")]
    lines += [t(key) for key in encryption_keys(route)]
    lines.append(t("privacy.may_change"))
    lines.append(t("privacy.operator"))
    if route.employee in SEEN_BY:
        lines.append(t(SEEN_BY[route.employee]))
    lines.append(t("privacy.own_device"))
    lines.append(t("privacy.kept"))
    if route.employee == WEB:
        lines.append(t("privacy.kept_web", retention_days=retention_days))
    lines.append(t("privacy.erased", retention_days=retention_days, idle_days=idle_days))
    lines.append(t("privacy.forget"))
    lines.append(t("privacy.in_person"))
    return "\n".join(lines)


async def privacy_notice(ctx: Ctx, case: Case | None) -> str:
    """The notice for the employee speaking now, about ``case`` (or about a
    conversation they would start)."""
    route = await route_of(ctx, case)
    return compose(route, lambda key, **values: ctx.t(key, **values),
                   retention_days=ctx.settings.retention_days,
                   idle_days=ctx.settings.idle_close_days)
