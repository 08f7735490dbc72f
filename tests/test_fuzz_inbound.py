"""Hypothesis over the core's inbound surface: whatever a platform hands us,
`Core.handle` neither crashes nor lets someone act beyond their role.

The world holds one protected case (employee ``victim`` ↔ confidant Sara,
with a consent question pending) and an admin with an open admin menu.  The
fuzzer speaks as people who are none of these: employees on every channel,
strangers using Sara's or the admin's platform id on another channel,
holders of stolen or mangled button tokens.  After every example the store
is compared with the state before: the protected case, its notes and
consents, confidants, rota, rooms, and the audit trail of non-employee
actors must not have moved, and neither the victim nor Sara may have been
sent anything about the protected case.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from domain.ids import ChannelName
from domain.messages import Inbound, Media
from handlers.router import CONFIDANT as confidant_steps
from handlers.router import EMPLOYEE as employee_steps
from store.models import (
    Absence,
    Appointment,
    AuditEvent,
    Case,
    Confidant,
    Consent,
    Note,
    Room,
    Shift,
)
from tests.support.memory_channel import Harness, Person, code_of

VICTIM = "victim-0001"
SARA = "conf-sara-01"
TOM = "conf-tom-02"
ADMIN = "admin-0003"
INTRUDERS = ("intruder-a", "intruder-b")

CONTROL = "".join(chr(c) for c in (*range(0, 32), 127, *range(0x80, 0xA0)))
TRICKY = ("\u202e", "\u202d", "\u202a", "\u2066", "\u2067", "\u2069", "\u200f", "\u200e",
          "\u200b", "\ufeff", "\x1b[2J", "\x00", "\r\n", "\u0301" * 50, "🙂", "‮/claim")

COMMAND_WORDS = sorted({*employee_steps.commands, *confidant_steps.commands, "admin",
                        "notes", "case", "start@confidant_bot", "CLAIM", "Close"})
ADMIN_LINES = ("/admin", "/admin report", "/admin confidants", "/admin confidant remove Sara",
               "/admin room add Annex", "/admin room remove Annex", "/admin rota",
               "/admin rota add Sara mon 09:00 12:00", "/admin absence add Sara 2026-12-01 "
               "2026-12-31", "/admin shift remove 1", "!admin report 2026-01 2026-12")


@dataclass
class World:
    """The fixed people and the things worth stealing."""

    h: Harness
    code: str
    victim: Person
    sara: Person
    stolen_tokens: list[str]
    message_ids: list[str]
    events: itertools.count[int]


@pytest_asyncio.fixture
async def world(harness: Harness) -> AsyncIterator[World]:
    h = harness
    h.core.settings = replace(h.core.settings, admins=frozenset({("memory", ADMIN)}),
                              numbered_channels=frozenset({"web"}))
    sara = await h.add_confidant("Sara", SARA)
    await h.add_confidant("Tom", TOM)
    victim = h.person(VICTIM)
    await victim.say("/talk")
    await victim.press_token(victim.inbox[-1].menu.rows[0][0].token)  # type: ignore[union-attr]
    code = code_of(victim)
    await sara.say(f"/claim {code}")
    await victim.say("something only Sara may read")
    await sara.say("/consent advisor")  # the victim now holds yes/no buttons
    admin = h.person(ADMIN)
    await admin.say("/admin")
    tokens = [b.token for outs in h.channel.received.values() for o in outs if o.menu
              for b in o.menu.buttons()]
    assert tokens, "the world should hold buttons to steal"
    ids = list(h.channel.message_ids.values())
    yield World(h, code, victim, sara, tokens, ids, itertools.count())


async def snapshot(w: World) -> dict[str, Any]:
    """Everything an intruder must not be able to change."""
    async with w.h.store.tx() as tx:
        s = tx.session
        case = (await s.scalars(select(Case).where(Case.code == w.code))).one()
        return {
            "case": (case.status, case.confidant_id, case.chosen_confidant_id, case.theme,
                     case.heard_at, case.closed_at, case.urgent, case.unreachable,
                     case.confirmation_requested_at),
            "notes": await s.scalar(select(func.count()).select_from(Note)),
            "consents": sorted((c.form, c.agreed, c.answered_at is not None)
                               for c in await s.scalars(select(Consent))),
            "confidants": sorted((c.name, c.languages) for c in
                                 await s.scalars(select(Confidant))),
            "shifts": await s.scalar(select(func.count()).select_from(Shift)),
            "absences": await s.scalar(select(func.count()).select_from(Absence)),
            "rooms": await s.scalar(select(func.count()).select_from(Room)),
            "appointments": await s.scalar(select(func.count()).select_from(Appointment)
                                           .where(Appointment.case_id == case.id)),
            "privileged_audit": sorted(
                (a.actor, a.kind, a.subject) for a in await s.scalars(
                    select(AuditEvent).where(AuditEvent.actor != "employee"))),
            "employee_audit_on_case": await s.scalar(
                select(func.count()).select_from(AuditEvent)
                .where(AuditEvent.actor == "employee", AuditEvent.subject == w.code)),
        }


def messages_about_case(w: World) -> int:
    """Messages the victim got, plus Sara's messages tagged with the case."""
    received = w.h.channel.received  # keyed by address only: tell the channels apart
    return (sum(1 for o in received[VICTIM] if o.to.channel == "memory")
            + sum(1 for o in received[SARA] if o.to.channel == "memory" and o.case == w.code))


# --- strategies ----------------------------------------------------------------------

plain_text = st.text(max_size=300)
control_text = st.text(st.sampled_from(CONTROL + "ab /!"), max_size=200)
tricky_text = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=10)),
                       max_size=12).map("".join)
huge_text = st.builds(lambda unit, n: (unit * n)[:100_000],
                      st.sampled_from(["a", "é", "\u202e", "🙂", "x\n", "\x00", "/claim "]),
                      st.integers(3_900, 100_000))
command = st.builds(
    lambda prefix, word, sep, junk: f"{prefix}{word}{sep}{junk}",
    st.sampled_from(["/", "!", "//", " /"]), st.sampled_from(COMMAND_WORDS),
    st.sampled_from(["", " ", "  ", "\t", "\u202e ", "@bot "]),
    st.one_of(st.just(""), st.text(max_size=40), st.sampled_from(
        ["K7F-3MQ", "conflict", "advisor", "yes", "Tom", "tom", "Sara", "-1", "999999999",
         "'; DROP TABLE cases; --", "../../etc/passwd", "%s%s%n", "{0}{key}"])))


@st.composite
def aimed_at_case(draw: st.DrawFn, code: str) -> str:
    """Confidant commands naming the protected case, as an employee would forge them."""
    verb = draw(st.sampled_from(["claim", "close", "heard", "note", "case", "handover",
                                 "consent", "confirmation", "notes", "offer"]))
    tail = draw(st.sampled_from(["", " conflict", " Tom", " advisor", " hello", " yes"]))
    return f"/{verb} {draw(st.sampled_from([code, code.lower(), code + 'x']))}{tail}"


def inbound_strategy(w: World) -> st.SearchStrategy[Inbound]:
    stolen = st.sampled_from(w.stolen_tokens)
    button = st.one_of(
        st.none(), stolen, st.text(max_size=80),
        stolen.map(lambda t: t + "x"), stolen.map(lambda t: t[:-1]),
        stolen.map(str.upper), st.sampled_from(["", "adm:en:room.remove:1", "claim:" + w.code,
                                                "close:" + w.code, "\x00" * 64]))
    text = st.one_of(st.none(), plain_text, control_text, tricky_text, huge_text, command,
                     aimed_at_case(w.code), st.sampled_from(ADMIN_LINES),
                     st.integers(-3, 40).map(str))
    media = st.one_of(st.none(), st.builds(
        Media,
        kind=st.one_of(st.sampled_from(["photo", "document", "voice", "video", "sticker",
                                        "animation", ""]), st.text(max_size=12)),
        data=st.binary(max_size=2048), filename=st.text(max_size=40),
        mime_type=st.sampled_from(["image/jpeg", "image/png", "application/pdf",
                                   "audio/ogg", "text/html", "", "x/\u202e"]),
        caption=st.one_of(st.none(), st.text(max_size=200))))
    sender = st.one_of(
        st.tuples(st.sampled_from(["memory", "telegram", "web"]), st.sampled_from(INTRUDERS)),
        # Someone else with Sara's or the admin's id on a platform they are not registered on.
        st.tuples(st.sampled_from(["telegram", "web"]), st.sampled_from([SARA, ADMIN, VICTIM])))
    return st.builds(
        lambda who, text, button, media, unsupported, reply_to, hint, lang, dup: Inbound(
            ChannelName(who[0]), who[1], who[1],
            "dup" if dup else f"fuzz-{next(w.events)}", text=text, button=button,
            media=media, unsupported=unsupported, reply_to=reply_to, case_hint=hint,
            language_hint=lang),
        sender, text, button, media,
        st.one_of(st.none(), st.sampled_from(["sticker", "location", "contact", "poll", "dice",
                                              ""]), st.text(max_size=20)),
        st.one_of(st.none(), st.sampled_from(w.message_ids), st.text(max_size=20)),
        st.one_of(st.none(), st.just(w.code), st.text(max_size=12)),
        st.one_of(st.none(), st.sampled_from(["en", "nl", "fr", "de", "", "EN", "nl-BE"]),
                  st.text(max_size=8)),
        st.integers(0, 9).map(lambda n: n == 0))  # now and then a re-delivered event id


FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(data=st.data())
async def test_no_crash_and_no_unauthorized_effect(world: World, data: st.DataObject) -> None:
    w = world
    before = await snapshot(w)
    about_case = messages_about_case(w)
    for inbound in data.draw(st.lists(inbound_strategy(w), min_size=1, max_size=3)):
        await w.h.core.handle(inbound)  # any exception fails the example
        await w.h.worker.drain()
    assert await snapshot(w) == before
    assert messages_about_case(w) == about_case
