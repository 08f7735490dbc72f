"""Admin commands in chat, mirroring the CLI (built in the rota issue)."""

from __future__ import annotations

from handlers.core import Ctx, split_command


def wants(ctx: Ctx) -> bool:
    """Only ``/admin`` goes to the admin steps; otherwise an admin is an employee."""
    cmd = split_command(ctx.inbound.text or "")
    return cmd is not None and cmd[0] == "admin"


async def dispatch(ctx: Ctx) -> None:
    await ctx.reply(ctx.t("admin.unavailable"))
