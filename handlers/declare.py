"""Guided intake for the register of acts by third parties.

What happened, when, where; identity only with explicit agreement.  The
entry is sealed under its own key (kept five years, apart from the case),
and the confidants are told an entry exists, never what it says.
"""

from __future__ import annotations

from handlers.context import MAX_TEXT, Ctx

STEPS = ("what", "when", "where")


async def start(ctx: Ctx, arg: str = "") -> None:
    assert ctx.contact is not None
    await ctx.tx.contacts.set_pending(ctx.contact, "declare:what", {})
    await ctx.reply(ctx.t("declare.intro") + "\n\n" + ctx.t("declare.ask.what"),
                    [[(ctx.t("declare.cancel"), "decl:cancel")]])


async def answer(ctx: Ctx, text: str) -> None:
    """One answer of the intake; the next question follows."""
    assert ctx.contact is not None and ctx.contact.pending is not None
    step = ctx.contact.pending.split(":", 1)[1]
    if step not in STEPS:
        await ctx.reply(ctx.t("declare.use_buttons"))
        return
    if not text.strip():
        await ctx.reply(ctx.t(f"declare.ask.{step}"))
        return
    if len(text) > MAX_TEXT:
        await ctx.reply(ctx.t("message.too_long", limit=MAX_TEXT))
        return
    data = await ctx.tx.contacts.pending_data(ctx.contact)
    data[step] = text.strip()
    nxt = STEPS.index(step) + 1
    if nxt < len(STEPS):
        await ctx.tx.contacts.set_pending(ctx.contact, f"declare:{STEPS[nxt]}", data)
        await ctx.reply(ctx.t(f"declare.ask.{STEPS[nxt]}"),
                        [[(ctx.t("declare.cancel"), "decl:cancel")]])
        return
    await ctx.tx.contacts.set_pending(ctx.contact, "declare:identity", data)
    await ctx.reply(ctx.t("declare.ask.identity"),
                    [[(ctx.t("declare.identity_no"), "decl:anonymous")],
                     [(ctx.t("declare.identity_yes"), "decl:named")],
                     [(ctx.t("declare.cancel"), "decl:cancel")]])


async def button(ctx: Ctx, arg: str) -> None:
    assert ctx.contact is not None
    pending = ctx.contact.pending or ""
    if arg == "cancel":
        await ctx.tx.contacts.set_pending(ctx.contact, None)
        await ctx.reply(ctx.t("declare.cancelled"))
        return
    if pending != "declare:identity" or arg not in ("anonymous", "named"):
        await ctx.reply(ctx.t("button.stale"))
        return
    data = await ctx.tx.contacts.pending_data(ctx.contact)
    if arg == "named":
        data["identity"] = "named"
        await ctx.tx.contacts.set_pending(ctx.contact, "declare:name", data)
        await ctx.reply(ctx.t("declare.ask.name"), [[(ctx.t("declare.cancel"), "decl:cancel")]])
        return
    await _save(ctx, data, identity_agreed=False)


async def name_answer(ctx: Ctx, text: str) -> None:
    assert ctx.contact is not None
    data = await ctx.tx.contacts.pending_data(ctx.contact)
    data["identity"] = text.strip()[:200]
    await _save(ctx, data, identity_agreed=True)


async def _save(ctx: Ctx, data: dict[str, str], identity_agreed: bool) -> None:
    assert ctx.contact is not None
    if not identity_agreed:
        data.pop("identity", None)
    await ctx.tx.register.add({**data, "language": ctx.lang}, identity_agreed, ctx.now)
    await ctx.tx.contacts.set_pending(ctx.contact, None)
    await ctx.tx.audit.record("employee", "register.declared", "", "named" if identity_agreed
                              else "anonymous")
    for c in await ctx.tx.confidants.all():
        await ctx.to_confidant(c, ctx.t("declare.to_confidant", lang=ctx.confidant_lang(c)))
    await ctx.reply(ctx.t("declare.saved"))
