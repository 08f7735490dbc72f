"""Administration in chat: role on the server, confirm before change, audit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, time
from pathlib import Path

import pytest_asyncio
from sqlalchemy import select

from handlers.core import Core
from handlers.info import InfoLibrary
from store.models import Absence, AuditEvent, CaseStatistic, Room, Shift
from tests.support.memory_channel import Harness, Person, make_harness

ADMIN = "admin-1"


@pytest_asyncio.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(f"sqlite+aiosqlite:///{tmp_path / 'core.db'}", tmp_path,
                                 admins=frozenset({("memory", ADMIN)}))
    yield harness
    await harness.store.close()


async def _audit(h: Harness) -> list[AuditEvent]:
    async with h.store.tx() as tx:
        return list((await tx.session.scalars(select(AuditEvent)
                                              .order_by(AuditEvent.at))).all())


async def _count(h: Harness, model: type) -> int:
    async with h.store.tx() as tx:
        return len((await tx.session.scalars(select(model))).all())


async def _admin(h: Harness) -> Person:
    await h.add_confidant("Sara", "conf-sara", always_on_duty=False)
    return h.person(ADMIN, "en")


async def test_non_admin_is_refused_and_forged_buttons_do_nothing(h: Harness) -> None:
    admin = await _admin(h)
    emp = h.person("emp-1")
    await emp.say("/start")
    await emp.say("/admin shift add Sara mon 09:00 12:00 talks")
    assert emp.last.startswith("That command is for administrators only")
    await admin.say("/admin shift add Sara mon 09:00 12:00 talks")
    assert "Add for Sara: Monday 09:00–12:00 (talk hours)?" in admin.last
    yes = next(b.token for b in admin.inbox[-1].menu.buttons()  # type: ignore[union-attr]
               if "apply" in b.label)
    await emp.press_token(yes)
    assert emp.last.startswith("That button is no longer valid")
    # an admin taken out of the config loses the role at once, for old buttons too
    h.core = Core(h.store, h.core.settings.__class__(org_name="Acme",
                                                     numbered_channels=frozenset()),
                  InfoLibrary.load(), h.clock)
    h.worker.core = h.core
    await admin.press_token(yes)  # no language hint on a press: the default language
    assert admin.last == h.core.tr.t(h.core.settings.default_language, "button.stale")
    assert await _count(h, Shift) == 0
    assert not [e for e in await _audit(h) if e.kind.startswith("rota.")]


async def test_every_change_asks_then_applies_and_is_audited(h: Harness) -> None:
    admin = await _admin(h)
    await admin.say("/admin")
    assert "Administration" in admin.last
    await admin.press("Confidants")
    assert "Sara" in admin.last and "memory" in admin.last

    await admin.say("/admin shift add Sara mon 09:00 12:00 talks")
    assert await _count(h, Shift) == 0  # asked, not applied
    await admin.press("Yes, apply")
    assert "applied" in admin.last
    await admin.say("/admin shift add sara tue 13:00 17:00")
    await admin.press("No")
    assert "Not applied" in admin.last
    async with h.store.tx() as tx:
        [shift] = (await tx.session.scalars(select(Shift))).all()
    assert (shift.weekday, shift.start, shift.end, shift.kind) == (0, time(9), time(12), "talks")

    await admin.say(f"/admin shift remove {shift.id[:8]}")
    assert "Remove from Sara's rota: Monday 09:00–12:00" in admin.last
    await admin.press("Yes, apply")
    assert await _count(h, Shift) == 0

    await admin.say("/admin absence add Sara 2026-12-21 2027-01-01")
    await admin.press("Yes, apply")
    async with h.store.tx() as tx:
        [absence] = (await tx.session.scalars(select(Absence))).all()
    assert (absence.start_date, absence.end_date) == (date(2026, 12, 21), date(2027, 1, 1))
    await admin.say("/admin absence list")
    assert absence.id[:8] in admin.last
    await admin.say(f"/admin absence remove {absence.id[:8]}")
    await admin.press("Yes, apply")
    assert await _count(h, Absence) == 0

    await admin.say('/admin room add "Blue room" "Building B"')
    assert "Add the room Blue room (site: Building B)?" in admin.last
    await admin.press("Yes, apply")
    await admin.say("/admin room list")
    assert "Blue room — Building B" in admin.last
    await admin.say('/admin room remove "Blue room"')
    await admin.press("Yes, apply")
    async with h.store.tx() as tx:
        [room] = (await tx.session.scalars(select(Room))).all()
    assert room.active is False

    kinds = [e.kind for e in await _audit(h) if e.actor == "admin:memory"]
    assert kinds == ["rota.shift_added", "rota.shift_removed", "absence.added",
                     "absence.removed", "room.added", "room.removed"]
    assert all("admin-1" not in (e.actor + e.subject + e.detail) for e in await _audit(h))


async def test_validation_like_the_cli(h: Harness) -> None:
    admin = await _admin(h)
    await admin.say("/admin shift add Sara mon 12:00 09:00")
    assert admin.last == "The end must come after the start."
    await admin.say("/admin shift add Sara funday 09:00 12:00")
    assert admin.last.startswith("The day must be one of")
    await admin.say("/admin shift add Sara mon 09:00 12:00 nap")
    assert admin.last == "The kind must be duty or talks."
    await admin.say("/admin shift add Nobody mon 09:00 12:00")
    assert admin.last == "There is no confidant called Nobody."
    await admin.say("/admin shift add Sara mon 9h 12:00")
    assert "is not a time" in admin.last
    await admin.say("/admin absence add Sara 2026-12-21 2026-12-01")
    assert admin.last == "The end must come after the start."
    # the store's own check (overlap) at apply time, translated
    await admin.say("/admin shift add Sara mon 09:00 12:00")
    await admin.say("/admin shift add Sara mon 11:00 13:00")
    await admin.press("Yes, apply")  # the second question's button
    assert "applied" in admin.last
    first_menu = next(o for o in admin.inbox if "Monday 09:00–12:00" in o.text)
    yes = next(b.token for b in first_menu.menu.buttons()  # type: ignore[union-attr]
               if "apply" in b.label)
    await admin.press_token(yes)
    assert admin.last.startswith("That overlaps")
    assert await _count(h, Shift) == 1
    await admin.say("/admin frobnicate")
    assert "Administration commands" in admin.last


async def test_rota_table_and_picture(h: Harness) -> None:
    admin = await _admin(h)
    async with h.store.tx() as tx:
        sara = await tx.confidants.by_name("Sara")
        assert sara is not None
        await tx.rota.add_shift(sara, 0, time(9), time(12), "duty")
        await tx.rota.add_shift(sara, 2, time(14), time(16), "talks")
        await tx.rota.add_absence(sara, date(2026, 11, 23), date(2026, 11, 23))
    await admin.say("/admin rota 2026-W48")
    out = admin.inbox[-1]
    assert "week 2026-W48 (2026-11-23 – 2026-11-29)" in out.text
    assert "Sara" in out.text and "09:00–12:00 on duty — absent" in out.text
    assert "14:00–16:00 talk hours" in out.text
    assert out.media is not None and out.media.data.startswith(b"\x89PNG")
    await admin.press("Next week")
    assert "2026-W49" in admin.last and "— absent" not in admin.last
    await admin.say("/admin rota 2026-W99")
    assert "is not a week" in admin.last


async def test_report_masks_small_counts(h: Harness) -> None:
    admin = await _admin(h)
    async with h.store.tx() as tx:
        for _ in range(4):
            tx.session.add(CaseStatistic(month="2026-10", channel="telegram", theme="stress",
                                         heard_in_time=True))
        tx.session.add(CaseStatistic(month="2026-11", channel="matrix", theme="bullying",
                                     heard_in_time=False))
    await admin.say("/admin report 2026-01 2026-12")
    text = admin.last
    assert "Conversations: 5" in text and "Heard within 10 days: 4" in text
    assert "stress: 4" in text and "bullying: <3" in text
    assert "telegram: 4" in text and "matrix: <3" in text and "2026-11: <3" in text
    assert "report.viewed" in [e.kind for e in await _audit(h)]
    await admin.say("/admin report 2026-13x 2026-12")
    assert "is not a month" in admin.last


async def test_admin_is_still_an_employee_elsewhere(h: Harness) -> None:
    admin = await _admin(h)
    await admin.say("/start")
    await admin.press("Privacy")
    assert "Your privacy" in admin.last
