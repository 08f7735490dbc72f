"""Confidants: registration with the eligibility attestation, changes, deactivation."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from handlers.administration.base import ServiceBase
from handlers.administration.problems import AdminError
from handlers.administration.validation import (
    check_languages,
    check_matrix,
    check_name,
    check_telegram,
)
from handlers.administration.views import ConfidantInfo
from store.models import Confidant

EXCLUSIONS = (
    "a delegate (employer or worker side) in the works council or the CPBW/CPPT",
    "a member of the union delegation",
    "a candidate in the social elections",
    "managerial staff (day-to-day management that can bind the employer, "
    "and their direct subordinates with day-to-day management tasks)",
    "the occupational physician",
)
"""Who may not be an internal confidant (Codex over het welzijn op het werk, Book I Title 3)."""
EXCLUSION_KEYS = tuple(f"adm.exclusion.{i}" for i in range(1, len(EXCLUSIONS) + 1))
"""The same exclusions as content keys, for a tick box in the admin's language."""


def new_web_id() -> str:
    """The confidant's web-console identity: random, never derived from the name."""
    return "console-" + secrets.token_urlsafe(18)


class PeopleOps(ServiceBase):
    """Who the confidants are and how they are reached."""

    async def _info(self, c: Confidant) -> ConfidantInfo:
        return ConfidantInfo(
            id=c.id, name=c.name, bio=c.bio,
            languages=tuple(x for x in c.languages.split(",") if x),
            channels=tuple(await self.tx.channels(c)), active=c.active,
            attested_by=c.attested_by, attested_at=c.attested_at,
            shifts=len(await self.tx.shifts(c.id)))

    async def confidants(self, include_inactive: bool = False) -> list[ConfidantInfo]:
        return [await self._info(c)
                for c in await self.tx.confidants(active_only=not include_inactive)]

    async def confidant(self, ref: str) -> ConfidantInfo:
        return await self._info(await self._confidant(ref))

    async def _set_channel(self, c: Confidant, channel: str, address: str | None) -> None:
        """Give a confidant an address, refusing one already used by another confidant."""
        if address is not None:
            other = await self.tx.address_owner(channel, address)
            if other is not None and other.id != c.id:
                raise AdminError("adm.error.address_taken", f"that {channel} address already "
                                 f"belongs to confidant '{other.name}'", channel,
                                 channel=channel, name=other.name)
        await self.tx.set_address(c, channel, address)

    async def add_confidant(self, name: str, *, attest_eligible: bool, attested_by: str,
                            languages: str | Sequence[str] | None = None, bio: str = "",
                            telegram: str | None = None, matrix: str | None = None,
                            web: bool = False) -> ConfidantInfo:
        """Register a confidant; the law allows it only after the attestation
        that the person is none of `EXCLUSIONS` (who attested, and when, is kept).
        A removed confidant of that name is registered again, with a new attestation."""
        name = check_name(name)
        if not attest_eligible:
            raise AdminError("adm.error.attestation",
                             f"refused: confirm with --attest-eligible that {name} is none "
                             "of: " + "; ".join(EXCLUSIONS), "attest_eligible", name=name)
        tg = check_telegram(telegram) if telegram else None
        mx = check_matrix(matrix) if matrix else None
        attested_by = attested_by.strip()[:80]
        if not attested_by:
            raise AdminError("adm.error.name_empty", "--attested-by: must not be empty",
                             "attested_by")
        langs = (check_languages(languages) if languages
                 else [self.settings.default_language])
        existing = await self.tx.confidant_by_name(name)
        if existing is not None and existing.active:
            raise AdminError("adm.error.confidant_exists",
                             f"confidant '{existing.name}' is already registered", "name",
                             name=existing.name)
        if existing is not None:
            c = existing
            c.active, c.bio, c.languages = True, bio, ",".join(langs)
            c.attested_by, c.attested_at = attested_by, self.now
        else:
            c = await self.tx.add_confidant(name, bio=bio, languages=langs,
                                            attested_by=attested_by, now=self.now)
        for channel, address in (("telegram", tg), ("matrix", mx),
                                 ("web", new_web_id() if web else None)):
            if address is not None:
                await self._set_channel(c, channel, address)
        channels = await self.tx.channels(c)
        await self.audit("confidant.added", c.name,
                         f"attested_by={attested_by};channels={','.join(channels)}")
        return await self._info(c)

    async def edit_confidant(self, ref: str, *, bio: str | None = None,
                             languages: str | Sequence[str] | None = None,
                             telegram: str | None = None, forget_telegram: bool = False,
                             matrix: str | None = None, forget_matrix: bool = False,
                             web: bool | None = None) -> tuple[ConfidantInfo, list[str]]:
        """Change what is given (bio, languages, addresses, web console access);
        returns the confidant and what changed."""
        c = await self._confidant(ref)
        changed: list[str] = []
        if bio is not None:
            c.bio = bio
            changed.append("bio")
        if languages is not None:
            c.languages = ",".join(check_languages(languages))
            changed.append("languages")
        if telegram is not None or forget_telegram:
            await self._set_channel(c, "telegram",
                                    None if forget_telegram else check_telegram(telegram or ""))
            changed.append("telegram")
        if matrix is not None or forget_matrix:
            await self._set_channel(c, "matrix",
                                    None if forget_matrix else check_matrix(matrix or ""))
            changed.append("matrix")
        if web is not None:
            has_web = "web" in await self.tx.channels(c)
            if web != has_web:
                await self._set_channel(c, "web", new_web_id() if web else None)
                changed.append("web")
        if not changed:
            raise AdminError("adm.error.nothing_to_change", "nothing to change (give --bio, "
                             "--languages, --telegram, --matrix or --web/--no-web)")
        await self.audit("confidant.changed", c.name, ",".join(changed))
        return await self._info(c), changed

    async def deactivate_confidant(self, ref: str) -> tuple[ConfidantInfo, int]:
        """No more cases or shifts (closed cases keep their history); returns
        how many shifts were dropped."""
        c = await self._confidant(ref)
        shifts = await self.tx.shifts(c.id)
        for s in shifts:
            await self.tx.remove_shift(s)
        for a in await self.tx.absences(c.id):
            await self.tx.remove_absence(a)
        await self.tx.deactivate(c)
        await self.tx.flush()
        await self.audit("confidant.removed", c.name)
        return await self._info(c), len(shifts)

    async def console_token(self, ref: str) -> tuple[ConfidantInfo, str, bool]:
        """A one-time confidant console login link's secret; gives the confidant
        a console identity first if they had none (the bool says so)."""
        c = await self._confidant(ref)
        added = "web" not in await self.tx.channels(c)
        if added:
            await self._set_channel(c, "web", new_web_id())
        secret = await self.tx.console_token(c, self.now)
        await self.audit("console.token_issued", c.name, "web address added" if added else "")
        return await self._info(c), secret, added
