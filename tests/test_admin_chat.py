"""Administration in chat: role on the server, confirm before change, audit."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from datetime import date, time
from pathlib import Path

import pytest_asyncio
from sqlalchemy import delete, select

from bot.intake import Intake
from domain.vocabulary import CLOSE_THEMES
from handlers.i18n import load_strings
from handlers.info import InfoLibrary
from store.models import Absence, AuditEvent, CaseStatistic, Room, Shift
from tests.support.memory_channel import Harness, Person, make_harness
from tests.test_report import _possible

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
    h.core = Intake(h.store, h.core.settings.__class__(org_name="Acme",
                                                       numbered_channels=frozenset()),
                    InfoLibrary.load(), h.clock)
    h.worker.wake, h.worker.unreachable = h.core.outbox_changed, h.core.unreachable
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
    # the same kinds as the CLI writes: both go through the admin service
    assert kinds == ["rota.shift_added", "rota.shift_removed", "rota.absence_added",
                     "rota.absence_removed", "room.added", "room.removed"]
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


async def test_days_times_and_dates_as_the_cli_reads_them(h: Harness) -> None:
    """The chat takes what ``confidant admin`` takes: an ISO day number, a
    whole hour, a day name in any of the three languages, a day-first date."""
    admin = await _admin(h)
    await admin.say("/admin shift add Sara 1 9 12:00")
    assert "Add for Sara: Monday 09:00–12:00 (on duty)?" in admin.last
    await admin.press("Yes, apply")
    await admin.say("/admin shift add Sara Thursday 13:00 14:00 talks")
    assert "Add for Sara: Thursday 13:00–14:00 (talk hours)?" in admin.last
    await admin.say("/admin shift add Sara 7 9:30 10:00")
    assert "Add for Sara: Sunday 09:30–10:00 (on duty)?" in admin.last
    await admin.say("/admin shift add Sara 8 09:00 10:00")
    assert admin.last.startswith("The day must be one of")
    await admin.say("/admin absence add Sara 10/02/2030 2030-02-11")
    assert "Record Sara as absent from 2030-02-10 to 2030-02-11?" in admin.last
    await admin.say("/admin absence add Sara 2030-02-30 2030-03-01")
    assert admin.last == "'2030-02-30' is not a date; write it as 2026-12-21."
    async with h.store.tx() as tx:
        [shift] = (await tx.session.scalars(select(Shift))).all()
    assert (shift.weekday, shift.start, shift.end, shift.kind) == (0, time(9), time(12), "duty")


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
    # Themes by their words, as /close names them; one the bot has no words for by its key.
    assert "stress or burn-out: 4" in text and "bullying: <3" in text
    assert "unwanted sexual behaviour: <3" in text
    assert "telegram: 4" in text and "matrix: <3" in text and "2026-11: <3" in text
    assert "report.viewed" in [e.kind for e in await _audit(h)]
    await admin.say("/admin report 2026-13x 2026-12")
    assert "is not a month" in admin.last


# ----------------------------------------- the report read the way a curious reader would
#
# The chat report prints a total and, under it, groups that add up to it (months,
# themes, channels, heard).  A reader who subtracts the shown counts of a group
# from the total must not get a hidden one back.  The checks parse only the text.

Key = tuple[str, str, str]
_GROUPS = {"By month:": "month", "By theme:": "theme", "By channel:": "channel"}
_HEARD = {"Heard within 10 days": "within_10_days", "Heard after 10 days": "late",
          "Not heard": "not_heard"}
_MARKS = {"suppressed_as": "x", "blurred_as": "?"}
_THEME_KEYS = {words: key.removeprefix("theme.") for key, words in load_strings("en").items()
               if key.startswith("theme.")}
"""A theme's English words → its key, to read the report as numbers."""


def _cell(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _read_report(text: str) -> tuple[dict[Key, int | str], list[list[tuple[Key, int]]]]:
    """Every count the chat report prints, and the sums a reader knows: the
    conversations = Σ months = Σ themes = Σ channels (= Σ heard rows, if all
    three are printed)."""
    cells: dict[Key, int | str] = {}
    group = ""
    for line in text.splitlines():
        if line.strip() in _GROUPS:
            group = _GROUPS[line.strip()]
        elif line.startswith("  ") and group and ": " in line:
            value, count = line.strip().rsplit(": ", 1)
            if group == "theme":
                value = _THEME_KEYS.get(value, value)
            cells[(group, value, "")] = _cell(count)
        elif line.startswith("Conversations: "):
            cells[("cases", "all", "")] = _cell(line.rsplit(": ", 1)[1])
        elif any(line.startswith(h) for h in _HEARD):
            title = next(h for h in _HEARD if line.startswith(h))
            cells[("heard", _HEARD[title], "")] = _cell(line.rsplit(": ", 1)[1])
        elif not line.strip():
            group = ""
    total = ("cases", "all", "")
    equations = []
    for dimension in ("month", "theme", "channel", "heard"):
        parts = [k for k in cells if k[0] == dimension]
        if dimension != "heard" or len(parts) == len(_HEARD):
            equations.append([(total, 1)] + [(k, -1) for k in parts])
    return cells, equations


def _derivable(text: str) -> list[str]:
    """Hidden counts that the total minus the shown counts of a group gives away."""
    cells, equations = _read_report(text)
    found = []
    for equation in equations:
        for key, _ in equation:
            if not isinstance(cells[key], int):
                low, high = _possible(equation, key, cells, _MARKS)
                if low == high:
                    found.append(f"{key} = {low:g}")
    return found


async def _set_statistics(h: Harness,
                          rows: Sequence[tuple[str, str, str, bool | None]]) -> None:
    async with h.store.tx() as tx:
        await tx.session.execute(delete(CaseStatistic))
        for month, channel, theme, heard in rows:
            tx.session.add(CaseStatistic(month=month, channel=channel, theme=theme,
                                         heard_in_time=heard))


async def test_report_hides_a_count_the_total_would_give_back(h: Harness) -> None:
    """A small workplace: four cases about stress and one about unwanted sexual
    behaviour.  "Conversations: 5" and "stress: 4" used to print together,
    and 5 − 4 is the one person who came about unwanted sexual behaviour."""
    admin = await _admin(h)
    await _set_statistics(h, [("2026-03", "telegram", "stress", True)] * 4
                          + [("2026-03", "telegram", "sexual", True)])
    await admin.say("/admin report 2026-01 2026-06")
    text = admin.last
    cells, _ = _read_report(text)
    assert cells[("theme", "sexual", "")] == "<3"
    assert _derivable(text) == []
    # Every theme has its line, the empty ones too, so a missing line gives
    # nothing away; an empty theme or month looks like a small one.
    assert {k[1] for k in cells if k[0] == "theme"} >= set(CLOSE_THEMES)
    assert cells[("theme", "bullying", "")] == "<3"
    assert cells[("month", "2026-01", "")] == "<3"
    # The reader is told what the marks mean, in one line.
    [legend] = [line for line in text.splitlines() if "x = " in line]
    assert "<3" in legend and "3 or more" in legend
    # Five heard in time and three late out of eight: "not heard" would be
    # 8 − 5 − 3 = 0 for anyone to see, so a count of 3 or more hides too.
    await _set_statistics(h, [("2026-03", "web", "stress", True)] * 5
                          + [("2026-03", "web", "conflict", False)] * 3)
    await admin.say("/admin report 2026-03 2026-03")
    cells, _ = _read_report(admin.last)
    assert cells[("heard", "not_heard", "")] == "<3"
    assert "x" in cells.values()
    assert _derivable(admin.last) == []


async def test_no_chat_report_lets_a_hidden_count_be_worked_out(h: Harness) -> None:
    """The property of ``confidant report``, on the chat report's own text:
    small workplaces drawn at random, each report read by a reader who
    subtracts.  Shown counts are true and never small; marks are honest."""
    admin = await _admin(h)
    months = ["2026-01", "2026-02", "2026-03"]
    themes = ["stress", "bullying", "sexual", "conflict", "withdrawn"]
    for seed in range(25):
        draw = random.Random(seed)
        rows = [(draw.choice(months), draw.choice(["telegram", "matrix", "web"]),
                 draw.choice(themes), draw.choice([True, False, None]))
                for _ in range(draw.randrange(0, 25))]
        await _set_statistics(h, rows)
        await admin.say("/admin report 2026-01 2026-03")
        text = admin.last
        assert _derivable(text) == [], (seed, text)
        truth = {("cases", "all", ""): len(rows)}
        for month, channel, theme, heard in rows:
            kind = "not_heard" if heard is None else "within_10_days" if heard else "late"
            for key in (("month", month, ""), ("channel", channel, ""), ("theme", theme, ""),
                        ("heard", kind, "")):
                truth[key] = truth.get(key, 0) + 1
        cells, _ = _read_report(text)
        for key, cell in cells.items():
            if isinstance(cell, int):
                assert cell >= 3 and cell == truth.get(key, 0), (seed, key, text)
            elif cell == "<3":
                assert truth.get(key, 0) < 3, (seed, key)
            elif cell == "x":
                assert truth.get(key, 0) >= 3, (seed, key)
            else:
                assert cell == "?", (seed, key, cell)


async def test_admin_is_still_an_employee_elsewhere(h: Harness) -> None:
    admin = await _admin(h)
    await admin.say("/start")
    await admin.press("Privacy")
    assert "Your privacy" in admin.last
