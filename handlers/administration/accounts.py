"""Admin accounts of the web admin console, their login links and sessions.

An admin is either added with ``confidant admin admin add NAME`` (stored,
``source = "cli"``) or named in the config (``[[admins]] name = "…"``,
``source = "config"``; stored the first time a link is made for them, and
only valid while the config still names them).  ``confidant admin token
--admin NAME`` prints a one-time link (24 hours); the web console trades it
for a session (`login`) that ends after `store.admin.ADMIN_SESSION_LIFETIME`,
at logout, or when the account is removed.
"""

from __future__ import annotations

from handlers.administration.base import ServiceBase
from handlers.administration.problems import AdminError
from handlers.administration.validation import check_name
from handlers.administration.views import AdminInfo
from store.models import AdminAccount


def web_actor(name: str) -> str:
    """How an admin of the web console is named in the audit trail."""
    return f"admin:web:{name}"


class AccountOps(ServiceBase):
    """Who may use the web admin console."""

    def _configured(self, name: str) -> str | None:
        """The config's spelling of an ``[[admins]]`` name, if it has it."""
        return next((n for n in self.settings.configured_admins
                     if n.casefold() == name.strip().casefold()), None)

    def _valid(self, account: AdminAccount) -> bool:
        """A config admin's account lasts as long as the config names them."""
        return account.source != "config" or self._configured(account.name) is not None

    @staticmethod
    def _admin_info(account: AdminAccount) -> AdminInfo:
        return AdminInfo(account.name, account.source, account.created_by, account.created_at)

    async def admins(self) -> list[AdminInfo]:
        """Every account that may log in: stored ones and named ``[[admins]]``."""
        stored = [a for a in await self.tx.admins() if self._valid(a)]
        names = {a.name.casefold() for a in stored}
        out = [self._admin_info(a) for a in stored]
        out += [AdminInfo(n, "config", stored=False) for n in self.settings.configured_admins
                if n.casefold() not in names]
        return sorted(out, key=lambda a: a.name.casefold())

    async def add_admin(self, name: str) -> AdminInfo:
        name = check_name(name)
        existing = await self.tx.admin_by_name(name)
        if self._configured(name) is not None or (existing is not None and self._valid(existing)):
            raise AdminError("adm.error.admin_exists", f"admin '{name}' already exists",
                             "name", name=name)
        if existing is not None:  # a config admin no longer configured: start afresh
            await self.tx.remove_admin(existing)
        account = await self.tx.add_admin(name, source="cli", created_by=self.actor,
                                          now=self.now)
        await self.audit("admin.added", account.name)
        return self._admin_info(account)

    async def remove_admin(self, name: str) -> AdminInfo:
        """The account goes with its links and sessions (a config admin is
        removed from the config file instead)."""
        configured = self._configured(name)
        if configured is not None:
            raise AdminError("adm.error.admin_in_config", f"admin '{configured}' is named "
                             "under [[admins]] in the config file; remove it there", "name",
                             name=configured)
        account = await self.tx.admin_by_name(name.strip())
        if account is None:
            raise AdminError("adm.error.unknown_admin", f"no admin named '{name}' (see: "
                             "confidant admin admin list)", "name", name=name)
        info = self._admin_info(account)
        await self.tx.remove_admin(account)
        await self.audit("admin.removed", info.name)
        return info

    async def admin_token(self, name: str) -> tuple[AdminInfo, str]:
        """A one-time web admin console login link's secret for an admin."""
        account = await self.tx.admin_by_name(name.strip())
        configured = self._configured(name)
        if account is not None and not self._valid(account):
            account = None
        if account is None and configured is not None:
            account = await self.tx.add_admin(configured, source="config",
                                              created_by="config", now=self.now)
        if account is None:
            raise AdminError("adm.error.unknown_admin", f"no admin named '{name}' (see: "
                             "confidant admin admin list)", "name", name=name)
        secret = await self.tx.admin_token(account, self.now)
        await self.audit("admin.token_issued", account.name)
        return self._admin_info(account), secret

    async def login(self, secret: str) -> tuple[AdminInfo, str] | None:
        """Trade a login link's secret for a session: (admin, session secret),
        or None for a link that is unknown, used, expired or of a removed admin."""
        if not 0 < len(secret) <= 200:
            return None
        account = await self.tx.redeem_admin_token(secret, self.now)
        if account is None or not self._valid(account):
            return None
        sid = await self.tx.open_admin_session(account, self.now)
        await self.tx.record(web_actor(account.name), "admin.login", account.name)
        return self._admin_info(account), sid

    async def session(self, sid: str) -> AdminInfo | None:
        """The admin of a live session (None once expired or removed)."""
        if not 0 < len(sid) <= 200:
            return None
        account = await self.tx.admin_session(sid, self.now)
        return self._admin_info(account) if account is not None and self._valid(account) else None

    async def logout(self, sid: str) -> None:
        account = await self.tx.admin_session(sid, self.now) if 0 < len(sid) <= 200 else None
        await self.tx.end_admin_session(sid)
        if account is not None:
            await self.tx.record(web_actor(account.name), "admin.logout", account.name)
