"""The admin service shared by the chat's /admin, ``confidant admin`` and the
web admin console: one set of checks, one narrow door to the store."""

from __future__ import annotations

import ast
import asyncio
import inspect
import typing
from collections.abc import AsyncIterator
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from domain.parsing import ParseError, parse_office_hours
from handlers.administration.problems import AdminError, localised
from handlers.administration.report import report_csv
from handlers.administration.service import AdminService, AdminSettings
from handlers.administration.validation import Gap, gaps
from store.admin import AdminTx, admin_tx
from store.models import Case, CaseStatistic, Shift
from store.store import Tx
from tests.support.memory_channel import Harness, make_harness
from tests.test_cli import CliEnv, Result, cli_env
from tests.test_cli_admin import add_an, audit_kinds

__all__ = ["cli_env"]

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "admin-1"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday


@pytest_asyncio.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(f"sqlite+aiosqlite:///{tmp_path / 'core.db'}", tmp_path,
                                 now=NOW, admins=frozenset({("memory", ADMIN)}))
    yield harness
    await harness.store.close()


async def _cli(env: CliEnv, *argv: str) -> Result:
    """The CLI (which runs its own event loop) from an async test."""
    return await asyncio.to_thread(env, *argv)


def _service(tx: AdminTx, when: datetime = NOW, **settings: object) -> AdminService:
    return AdminService(tx, "admin:test", when, AdminSettings(**settings))  # type: ignore[arg-type]


# ------------------------------------------------------------ the narrow door


FORBIDDEN = {"Case", "CaseMessage", "Note", "Contact", "Declaration", "OutboxMessage",
             "MessageLink", "Consent", "ChannelStateEntry", "DataKey", "Appointment",
             "LoginToken"}


def test_admin_tx_offers_nothing_that_returns_case_content() -> None:
    """Every public method of AdminTx is typed to return rota, confidant,
    room, account, audit or count data only; no repository or session is
    reachable through a public name."""
    public = {n: m for n, m in inspect.getmembers(AdminTx) if not n.startswith("_")}
    assert {"shifts", "add_shift", "statistics", "record", "admin_session"} <= set(public)
    for name, member in public.items():
        assert callable(member), name
        hints = typing.get_type_hints(member)
        shown = repr(hints.get("return"))
        assert not {m for m in FORBIDDEN if f".{m}'" in shown or f".{m}]" in shown}, (name, shown)
    source = inspect.getsource(AdminTx)
    for attribute in ("cases", "outbox", "contacts", "register", "links", "vault"):
        assert f"self.{attribute}" not in source and f"self._{attribute}" not in source


def test_the_service_sees_the_store_only_through_admin_tx() -> None:
    """handlers/administration imports of store/: AdminTx and the rota models, nothing else."""
    allowed = {"store.admin": {"AdminTx"},
               "store.models": {"Absence", "AdminAccount", "Confidant", "Room", "Shift"}}
    for path in (ROOT / "handlers" / "administration").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("store"):
                names = {a.name for a in node.names}
                assert node.module in allowed and names <= allowed[node.module], (path, names)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("store") for a in node.names), path


async def test_no_read_gives_back_a_message_a_note_or_a_case_code(h: Harness) -> None:
    """With a case holding a message and a note, every listing of the service
    (and the audit trail it writes) holds none of them."""
    await h.add_confidant("Sara", "conf-sara")
    emp = h.person("emp-1")
    await emp.say("/talk")
    await emp.press_token(emp.inbox[-1].menu.rows[0][0].token)  # type: ignore[union-attr]
    await emp.say("My manager shouts at me every Tuesday")
    async with h.store.tx() as tx:
        case = (await tx.session.scalars(select(Case))).one()
        sara = await tx.confidants.by_name("Sara")
        assert sara is not None
        await tx.cases.add_note(case, sara.id, "Note: the Tuesday meetings", NOW)
        tx.session.add(CaseStatistic(month="2026-10", channel="web", theme="stress",
                                     heard_in_time=True))
        code = case.code
    async with admin_tx(h.store) as tx:
        svc = _service(tx)
        await svc.add_room("Blue room", "HQ")
        await svc.add_absence("Sara", "2026-12-01", "2026-12-02")
        results: list[object] = [
            await svc.confidants(include_inactive=True), await svc.confidant("Sara"),
            await svc.shifts(), await svc.week(), await svc.absences(include_past=True),
            await svc.rooms(), await svc.export_rota(), await svc.report("2026-01", "2026-12"),
            await svc.overview(), await svc.office_gaps(), await svc.admins(),
            [(e.actor, e.kind, e.subject, e.detail) for e in await tx.audit_events()]]
    seen = repr([asdict(r) if is_dataclass(r) and not isinstance(r, type) else r
                 for r in results])
    for secret in ("shouts", "Tuesday", "Note:", code, "emp-1"):
        assert secret not in seen


# ------------------------------------------------------------ one shift check


async def test_overlap_is_refused_with_its_reason(h: Harness) -> None:
    await h.add_confidant("Sara", "conf-sara", always_on_duty=False)
    async with admin_tx(h.store) as tx:
        svc = _service(tx)
        first = await svc.add_shift("Sara", "mon", "9", "12:00")
        with pytest.raises(AdminError) as refused:
            await svc.add_shift("sara", "maandag", "11:00", "13:00", dry_run=True)
        problem = refused.value.problem
        assert problem.key == "adm.rota_error.overlap" and problem.field == "start"
        assert str(refused.value) == (f"overlaps Sara's duty shift mon 09:00-12:00 "
                                      f"(id {first.shift.id[:8]})")
        words = localised(problem, lambda key: {"weekday.0": "Monday",
                                                "duty.kind.duty": "on duty"}.get(key, key))
        assert words == {"name": "Sara", "day": "Monday", "start": "09:00", "end": "12:00",
                         "kind": "on duty", "id": first.shift.id[:8]}
        # talk hours at the same time are another kind: allowed
        await svc.add_shift("Sara", "1", "10:00", "11:00", "talks")
        # moving a shift onto another is the same refusal
        later = await svc.add_shift("Sara", "mon", "13:00", "14:00")
        with pytest.raises(AdminError, match="overlaps Sara's duty shift mon 09:00-12:00"):
            await svc.edit_shift(later.shift.id, start="11:30")
        with pytest.raises(AdminError) as backwards:
            await svc.edit_shift(later.shift.id, end="12:30")
        assert backwards.value.key == "adm.rota_error.end-before-start"
        moved = await svc.edit_shift(later.shift.id, day="di", start="9", end="10")
        assert moved.shift.weekday == 1
    async with h.store.tx() as tx:
        assert len((await tx.session.scalars(select(Shift))).all()) == 3


async def test_chat_shows_the_overlap_and_refuses_it_before_asking(h: Harness) -> None:
    await h.add_confidant("Sara", "conf-sara", always_on_duty=False)
    admin = h.person(ADMIN, "en")
    await admin.say("/admin shift add Sara mon 09:00 12:00")
    await admin.press("Yes, apply")
    await admin.say("/admin shift add Sara ma 11:00 13:00")
    assert admin.last.startswith("That overlaps Sara's on duty slot on Monday 09:00–12:00 [")
    assert "Yes, apply" not in " ".join(b.label for o in admin.inbox[-1:] if o.menu
                                        for b in o.menu.buttons())


# ------------------------------------------------------------ office hours


def test_office_hours_are_read_like_every_other_day_and_time() -> None:
    assert parse_office_hours("mon-fri 09:00-17:00") == tuple(
        (d, time(9), time(17)) for d in range(5))
    assert parse_office_hours("ma-do 8:30-17, vr 8:30-12:30") == (
        (0, time(8, 30), time(17)), (1, time(8, 30), time(17)), (2, time(8, 30), time(17)),
        (3, time(8, 30), time(17)), (4, time(8, 30), time(12, 30)))
    assert parse_office_hours("samedi-lundi 10-12") == (
        (0, time(10), time(12)), (5, time(10), time(12)), (6, time(10), time(12)))
    assert parse_office_hours("") == ()
    for bad in ("weekdays", "mon-fri 17:00-09:00", "mon 9-12, mon 13-17", "mon-fri 9h-17h"):
        with pytest.raises(ParseError):
            parse_office_hours(bad)


def test_gaps_are_the_uncovered_parts() -> None:
    hours = parse_office_hours("mon-tue 09:00-17:00")
    duty = [(0, time(8), time(12)), (0, time(11), time(13)), (0, time(14), time(18))]
    assert gaps(hours, duty) == [Gap(0, time(13), time(14)), Gap(1, time(9), time(17))]
    assert gaps((), duty) == []


async def test_a_gap_in_office_hours_is_a_warning_not_a_refusal(h: Harness) -> None:
    await h.add_confidant("Sara", "conf-sara", always_on_duty=False)
    await h.add_confidant("Tom", "conf-tom", always_on_duty=False)
    async with admin_tx(h.store) as tx:
        svc = _service(tx, office_hours=parse_office_hours("mon-fri 09:00-17:00"))
        change = await svc.add_shift("Sara", "mon", "09:00", "12:00")
        assert [str(w) for w in change.warnings] == [
            "nobody on duty during office hours: mon 12:00-17:00"]
        assert change.warnings[0].key == "adm.gap"
        assert not (await svc.add_shift("Tom", "mon", "12:00", "17:00")).warnings
        talks = await svc.add_shift("Tom", "tue", "09:00", "17:00", "talks")
        assert [str(w) for w in talks.warnings] == [
            "nobody on duty during office hours: tue 09:00-17:00"]  # talks are not duty
        await svc.add_absence("Tom", "2026-11-23", "2026-11-23")
        week = await svc.week("2026-W48")
        monday = [str(w) for w in week.warnings if "mon" in str(w)]
        assert monday == ["nobody on duty during office hours: mon 2026-11-23 12:00-17:00"]
        assert week.warnings[0].key == "adm.gap_on"
        assert len(week.gaps) == 5  # Monday afternoon (Tom away), Tuesday to Friday
        quiet = _service(tx, office_hours=())
        assert not (await quiet.week("2026-W48")).gaps


async def test_chat_and_cli_warn_about_the_gap(h: Harness, cli_env: CliEnv) -> None:
    await h.add_confidant("Sara", "conf-sara", always_on_duty=False)
    admin = h.person(ADMIN, "en")
    await admin.say("/admin shift add Sara fri 09:00 12:00")
    assert "Nobody is on duty during office hours on Friday 12:00–17:00." in admin.last
    await admin.press("Yes, apply")
    assert "applied" in admin.last and "Friday 12:00–17:00" in admin.last
    await asyncio.to_thread(add_an, cli_env)
    added = await _cli(cli_env, "admin", "rota", "add", "--confidant", "An Peeters", "--day",
                       "fri", "--start", "9", "--end", "12")
    assert added.rc == 0
    assert "warning: nobody on duty during office hours: fri 12:00-17:00" in added.err


# ------------------------------------------------------------ the same inputs everywhere


DAYS = [("1", 0), ("mon", 0), ("maandag", 0), ("lundi", 0), ("ma", 0), ("Thursday", 3),
        ("don", 3), ("7", 6), ("zo", 6)]


@pytest.mark.parametrize(("typed", "weekday"), DAYS)
async def test_chat_and_cli_read_a_day_the_same(typed: str, weekday: int, h: Harness,
                                                cli_env: CliEnv) -> None:
    await h.add_confidant("Sara", "conf-sara", always_on_duty=False)
    admin = h.person(ADMIN, "en")
    await admin.say(f"/admin shift add Sara {typed} 9 12:30")
    await admin.press("Yes, apply")
    await asyncio.to_thread(add_an, cli_env)
    cli = await _cli(cli_env, "admin", "rota", "add", "--confidant", "An Peeters", "--day",
                     typed, "--start", "9", "--end", "12:30")
    assert cli.rc == 0, cli.err
    async with h.store.tx() as tx:
        chat = [(s.weekday, s.start, s.end) for s in await tx.rota.shifts()]

    async def shifts(tx: Tx) -> list[tuple[int, time, time]]:
        return [(s.weekday, s.start, s.end) for s in await tx.rota.shifts()]

    in_cli = await asyncio.to_thread(cli_env.with_store, shifts)
    assert chat == in_cli == [(weekday, time(9), time(12, 30))]


@pytest.mark.parametrize("typed", ["8", "0", "funday", "m"])
async def test_chat_and_cli_refuse_the_same_days(typed: str, h: Harness,
                                                 cli_env: CliEnv) -> None:
    await h.add_confidant("Sara", "conf-sara", always_on_duty=False)
    admin = h.person(ADMIN, "en")
    await admin.say(f"/admin shift add Sara {typed} 9 12")
    assert admin.last.startswith("The day must be one of")
    await asyncio.to_thread(add_an, cli_env)
    line = (await _cli(cli_env, "admin", "rota", "add", "--confidant", "An Peeters", "--day",
                       typed, "--start", "9", "--end", "12")).one_line_error()
    assert f"unknown weekday '{typed}'" in line


# ------------------------------------------------------------ weeks across DST


async def test_weeks_are_in_the_organisations_time_across_dst(h: Harness) -> None:
    await h.add_confidant("Sara", "conf-sara", always_on_duty=False)
    async with admin_tx(h.store) as tx:
        svc = _service(tx)
        await svc.add_shift("Sara", "sun", "09:00", "12:00")
        spring = await svc.week("2026-W13")  # Brussels: summer time from Sunday 29 March
        assert spring.length == timedelta(hours=167)
        assert spring.starts_at.isoformat() == "2026-03-23T00:00:00+01:00"
        assert spring.ends_at.isoformat() == "2026-03-30T00:00:00+02:00"
        autumn = await svc.week(date(2026, 10, 25))  # back to winter time that Sunday
        assert autumn.label == "2026-W43"
        assert autumn.length == timedelta(hours=169)
        [before] = spring.shifts
        assert before.starts_at.utcoffset() == timedelta(hours=2)  # after the change
        assert before.starts_at.isoformat() == "2026-03-29T09:00:00+02:00"
        assert (spring.previous, spring.next) == ("2026-W12", "2026-W14")
        with pytest.raises(AdminError) as bad:
            await svc.week("2026-W54")
        assert bad.value.key == "parse.week"


# ------------------------------------------------------------ the report as data


async def test_report_cells_hide_what_the_cli_hides(h: Harness, cli_env: CliEnv) -> None:
    rows = ([("2025-01", "telegram", "stress", True)] * 4
            + [("2025-01", "matrix", "bullying", False)] + [("2025-02", "web", "stress", None)] * 2)

    async def seed(tx: Tx) -> None:
        for month, channel, theme, heard in rows:
            tx.session.add(CaseStatistic(month=month, channel=channel, theme=theme,
                                         heard_in_time=heard))

    async with h.store.tx() as tx:
        await seed(tx)
    await asyncio.to_thread(cli_env.with_store, seed)
    async with admin_tx(h.store) as tx:
        svc = _service(tx)
        data = await svc.report("2025-01", "2025-02")
    cli = await _cli(cli_env, "report", "--from", "2025-01", "--to", "2025-02", "--format",
                     "csv")
    assert report_csv(data) == cli.out
    january = data.cell("2025-01", "cases", "all")
    assert january.hidden and january.count is None and january.mark == "x"
    assert data.cell("all", "cases", "all").count == 7
    assert all((c.count is None) == c.hidden and (c.count is None or c.count >= 3)
               for c in data.cells)
    assert data.open_cases.hidden  # no open conversation: "<3", like every small count


# ------------------------------------------------------------ admin accounts


async def test_admin_accounts_logins_and_sessions(h: Harness) -> None:
    settings = {"configured_admins": ("Els Janssens",)}
    async with admin_tx(h.store) as tx:
        svc = _service(tx, **settings)
        await svc.add_admin("Pieter")
        with pytest.raises(AdminError, match="already exists"):
            await svc.add_admin("pieter")
        with pytest.raises(AdminError, match="already exists"):
            await svc.add_admin("els janssens")
        assert [(a.name, a.source, a.stored) for a in await svc.admins()] == [
            ("Els Janssens", "config", False), ("Pieter", "cli", True)]
        _, link = await svc.admin_token("Pieter")
        _, els_link = await svc.admin_token("els janssens")
        with pytest.raises(AdminError, match="no admin named 'Nobody'"):
            await svc.admin_token("Nobody")
    async with admin_tx(h.store) as tx:
        svc = _service(tx, NOW + timedelta(hours=1), **settings)
        opened = await svc.login(link)
        assert opened is not None
        admin, sid = opened
        assert admin.name == "Pieter"
        assert await svc.login(link) is None  # one use only
        assert (await svc.session(sid)) == admin
        assert await svc.session("forged") is None
        els = await svc.login(els_link)
        assert els is not None and els[0].source == "config"
    async with admin_tx(h.store) as tx:
        late = _service(tx, NOW + timedelta(hours=10), **settings)
        assert await late.session(sid) is None  # sessions expire
        assert await late.login((await late.admin_token("Pieter"))[1]) is not None
    async with admin_tx(h.store) as tx:
        svc = _service(tx, NOW + timedelta(hours=10, minutes=1), **settings)
        [(_, fresh)] = [x for x in [await svc.login((await svc.admin_token("Pieter"))[1])]
                        if x is not None]
        with pytest.raises(AdminError, match=r"under \[\[admins\]\]"):
            await svc.remove_admin("Els Janssens")
        await svc.remove_admin("Pieter")
        assert await svc.session(fresh) is None  # removed: the session ends with the account
        # Els is taken out of the config: her stored account no longer logs in
        gone = _service(tx, NOW + timedelta(hours=10, minutes=1))
        assert await gone.session(els[1]) is None
        assert await gone.admins() == []
    kinds = [e.kind for e in await _audit(h)]
    for kind in ("admin.added", "admin.token_issued", "admin.login", "admin.removed"):
        assert kind in kinds


async def _audit(h: Harness) -> list[typing.Any]:
    async with admin_tx(h.store) as tx:
        return list(reversed(await tx.audit_events()))


def test_cli_admin_accounts_and_their_login_link(cli_env: CliEnv) -> None:
    assert "no admins" in cli_env("admin", "admin", "list").out
    added = cli_env("admin", "admin", "add", "Els Janssens")
    assert added.rc == 0, added.err
    assert 'confidant admin token --admin "Els Janssens"' in added.out
    assert "already exists" in cli_env("admin", "admin", "add", "els janssens").one_line_error()
    listed = cli_env("admin", "admin", "list").out
    assert "Els Janssens" in listed and "confidant admin admin add" in listed
    link = cli_env("admin", "token", "--admin", "Els Janssens")
    assert link.rc == 0, link.err
    prefix = "http://127.0.0.1:8080/admin/login?token="
    assert link.out.strip().startswith(prefix)
    secret = link.out.strip()[len(prefix):]
    assert "give it to Els Janssens only" in link.err

    async def redeem(tx: Tx) -> str | None:
        found = await AdminService(AdminTx(tx), "web", datetime.now(UTC)).login(secret)
        return found[0].name if found else None

    assert cli_env.with_store(redeem) == "Els Janssens"
    assert cli_env.with_store(redeem) is None
    assert "no admin named 'Bo'" in cli_env("admin", "token", "--admin", "Bo").one_line_error()
    assert cli_env("admin", "admin", "remove", "els janssens").rc == 0
    assert "no admin named" in cli_env("admin", "admin", "remove", "Els Janssens") \
        .one_line_error()
    text = cli_env.config.read_text() + '\n[[admins]]\nname = "Mira"\n'
    cli_env.config.write_text(text)
    assert "config file" in cli_env("admin", "admin", "list").out
    assert cli_env("admin", "token", "--admin", "mira").rc == 0
    assert "remove it there" in cli_env("admin", "admin", "remove", "Mira").one_line_error()
    kinds = [k for _, k, _ in audit_kinds(cli_env)]
    assert kinds.count("admin.token_issued") == 2 and "admin.removed" in kinds

