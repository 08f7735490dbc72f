"""In-person talks end to end through the real core, store and delivery worker."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

from icalendar import Calendar
from sqlalchemy import select

from handlers.context import CoreSettings
from store.models import Appointment, AuditEvent, Case
from store.store import Store
from tests.support.memory_channel import Harness, Person, make_harness

# Wednesday 25 November 2026, 11:00 in Brussels.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


async def _setup(h: Harness, emp_lang: str = "en") -> tuple[Person, Person, str]:
    """Sara with talk hours on Friday 09:00-12:00, one room, and a claimed case."""
    sara = await h.add_confidant("Sara", "conf-sara")
    async with h.store.tx() as tx:
        c = await tx.confidants.by_name("Sara")
        assert c is not None
        await tx.rota.add_shift(c, 4, time(9), time(12), "talks")
        await tx.rota.add_room("Blue room", site="Main building")
    emp = h.person("emp-1", emp_lang)
    await emp.say("/start")
    await emp.say("/talk")
    await emp.press("Sara")
    await sara.press("Claim")
    code = next(o.case for o in emp.inbox if o.case)
    assert code
    emp.clear()
    sara.clear()
    return emp, sara, code


async def _appointments(h: Harness) -> list[Appointment]:
    async with h.store.tx() as tx:
        return list((await tx.session.scalars(select(Appointment)
                                              .order_by(Appointment.created_at))).all())


async def test_book_confirm_ics_and_anonymity(harness: Harness) -> None:
    emp, sara, code = await _setup(harness)
    await emp.say("/appointment")
    labels = [b.label for b in emp.inbox[-1].menu.buttons()]  # type: ignore[union-attr]
    assert labels[:3] == ["Fri 27 Nov, 09:00 · Blue room", "Fri 27 Nov, 10:00 · Blue room",
                          "Fri 27 Nov, 11:00 · Blue room"]
    assert "Sara" in emp.last
    await emp.press("10:00")
    assert "booked: Friday 27 November 2026, 10:00, with Sara, room Blue room (Main building)" \
        in emp.last
    assert "professional secrecy" in emp.last and "see who you are" in emp.last
    note = sara.inbox[-1]
    assert code in note.text and "Friday 27 November 2026, 10:00" in note.text
    assert note.media is not None and note.media.filename == f"talk-{code}.ics"
    assert note.media.mime_type == "text/calendar" and note.media.kind == "document"
    cal = Calendar.from_ical(note.media.data)
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    ev = events[0]
    assert ev.decoded("dtstart") == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert "Blue room" in str(ev["location"])
    # A shared or synchronised calendar gives nothing away: no case code, no
    # "confidant" in the title or the text, and the event is marked confidential.
    for field in ("summary", "description"):
        assert code not in str(ev[field]) and "confidant" not in str(ev[field]).lower(), field
    assert str(ev["class"]) == "CONFIDENTIAL"
    assert b"CLASS:CONFIDENTIAL" in note.media.data
    assert code.encode() not in note.media.data.replace(f"talk-{code}".encode(), b"")
    assert b"emp-1" not in note.media.data
    [appt] = await _appointments(harness)
    assert appt.status == "booked" and appt.starts_at == datetime(2026, 11, 27, 9, tzinfo=UTC)
    # the booked time is gone for the next person
    await emp.say("/appointment")
    assert "Your in-person talk: Friday 27 November 2026, 10:00" in emp.last


async def test_two_languages(harness: Harness) -> None:
    emp, sara, code = await _setup(harness, emp_lang="fr")
    await emp.say("/appointment")
    await emp.press("09:00")
    assert "vendredi 27 novembre 2026, 09:00" in emp.last
    assert "secret professionnel" in emp.last
    assert "Friday 27 November 2026, 09:00" in sara.inbox[-1].text and code in sara.inbox[-1].text
    nl_emp = harness.person("emp-nl", "nl")
    await nl_emp.say("/start")
    await nl_emp.say("/talk")
    await nl_emp.press("Sara")
    await sara.press("Claim")
    await nl_emp.say("/appointment")
    await nl_emp.press("11:00")
    assert "vrijdag 27 november 2026, 11:00" in nl_emp.last
    assert "beroepsgeheim" in nl_emp.last


async def test_taken_slot_shows_fresh_ones(harness: Harness) -> None:
    emp, sara, _ = await _setup(harness)
    await emp.say("/appointment")
    other = harness.person("emp-2")
    await other.say("/start")
    await other.say("/talk")
    await other.press("Sara")
    await sara.press("Claim")
    await other.say("/appointment")
    await other.press("09:00")
    await emp.press("09:00")  # the menu emp got before emp-2 booked
    assert "just taken" in emp.last
    labels = [b.label for b in emp.inbox[-1].menu.buttons()]  # type: ignore[union-attr]
    assert not any("09:00 ·" in x for x in labels) and any("10:00" in x for x in labels)
    assert len([a for a in await _appointments(harness) if a.status == "booked"]) == 1


async def test_move_and_cancel_from_both_sides(harness: Harness) -> None:
    emp, sara, code = await _setup(harness)
    await emp.say("/appointment")
    await emp.press("09:00")
    await emp.press("Move")
    await emp.press("11:00")
    assert "moved to Friday 27 November 2026, 11:00" in emp.last
    moved = [o for o in sara.inbox if "was moved by the employee" in o.text]
    assert moved and moved[0].media is not None and b"CANCEL" in moved[0].media.data
    statuses = sorted(a.status for a in await _appointments(harness))
    assert statuses == ["booked", "cancelled"]
    # the confidant cancels; the employee hears of it
    await sara.press("Cancel")
    await sara.press("Yes, cancel")
    assert "had to cancel" in emp.last
    assert all(a.status == "cancelled" for a in await _appointments(harness))
    # the employee books again and cancels; the confidant hears of it
    await emp.say("/appointment")
    await emp.press("10:00")
    await emp.press("Cancel")
    await emp.press("Yes, cancel")
    assert "is cancelled" in emp.last
    assert "the employee cancelled the talk" in sara.last and code in sara.last


async def test_confidant_moves_employee_chooses_again(harness: Harness) -> None:
    emp, sara, _ = await _setup(harness)
    await emp.say("/appointment")
    await emp.press("09:00")
    await sara.press("Move")
    assert "has to move" in emp.last
    await emp.press("11:00")
    assert "booked" in emp.last
    assert [a.status for a in await _appointments(harness)] == ["cancelled", "booked"]


async def test_offer_none_suits_and_foreign_appointment(harness: Harness) -> None:
    emp, sara, code = await _setup(harness)
    await sara.say("/offer")
    assert "were sent to the employee" in sara.last
    assert "Sara proposes an in-person talk" in emp.last
    await emp.press("None of these suits me")
    assert "none of the offered times suits" in sara.last and code in sara.last
    assert "propose another time" in emp.last
    # another confidant cannot act on Sara's talk with a pressed token of hers
    await emp.press("10:00")
    tom = await harness.add_confidant("Tom", "conf-tom")
    token = next(b.token for b in sara.inbox[-1].menu.buttons()  # type: ignore[union-attr]
                 if "Cancel" in b.label)
    await tom.press_token(token)
    assert tom.last.startswith("That button is no longer valid")
    # nor with a token of his own that names her talk (as if the bot had been tricked)
    [appt] = await _appointments(harness)
    async with harness.store.tx() as tx:
        menu = await tx.buttons.issue(tx.vault.address_hash("memory", "conf-tom"),
                                      [[("x", f"appt:cancelok:{appt.id}")]], NOW)
    await tom.press_token(menu.buttons()[0].token)
    assert "not yours" in tom.last
    assert [a.status for a in await _appointments(harness)] == ["booked"]


async def test_held_talk_is_first_conversation_and_confirmation(harness: Harness) -> None:
    emp, sara, code = await _setup(harness)
    await sara.say("/confirmation")
    assert "once the first conversation is recorded" in sara.last
    assert sara.inbox[-1].media is None
    await emp.say("/appointment")
    await emp.press("09:00")
    await sara.press("Held")
    assert "can be marked as held once it has started" in sara.last
    harness.clock.current = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    await sara.press("Held")
    assert "counts as the first conversation" in sara.last
    async with harness.store.tx() as tx:
        case = await tx.cases.by_code(code)
        assert case is not None and case.heard_at == datetime(2026, 11, 27, 8, tzinfo=UTC)
    await emp.say("I had a good talk, thanks")
    await sara.say("/confirmation")
    doc = sara.inbox[-1].media
    assert doc is not None and doc.kind == "document" and doc.filename.endswith(".txt")
    text = doc.data.decode()
    assert "Friday 27 November 2026" in text and "Sara" in text and "Acme" in text
    assert code in text and "good talk" not in text and "emp-1" not in text


async def test_absence_and_duty(harness: Harness) -> None:
    emp, sara, _ = await _setup(harness)
    await emp.say("/appointment")
    await emp.press("09:00")
    await sara.say("/absence 2026-11-01 2026-11-02")
    assert "past" in sara.last
    await sara.say("/absence 2026-12-05 2026-12-01")
    assert "end" in sara.last.lower()
    await sara.say("/absence tomorrow")
    assert "/absence FROM TO" in sara.last
    await sara.say("/absence 27/11/2026 2026-12-04")
    assert "is recorded" in sara.last and "1 booked talk" in sara.last
    await sara.say("/duty")
    assert "talk hours" in sara.last and "2026-11-27 → 2026-12-04" in sara.last
    assert "Blue room" in sara.last
    other = harness.person("emp-2")
    await other.say("/start")
    await other.say("/talk")
    await other.press("Sara")
    await sara.press("Claim")
    await other.say("/appointment")
    labels = [b.label for b in other.inbox[-1].menu.buttons()]  # type: ignore[union-attr]
    assert labels and all("27 Nov" not in x and "4 Dec" not in x for x in labels)
    async with harness.store.tx() as tx:
        kinds = [e.kind for e in (await tx.session.scalars(select(AuditEvent))).all()]
    assert "absence.added" in kinds and "appointment.booked" in kinds


async def test_reminders_fire_after_restart(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'core.db'}"
    h = await make_harness(url, tmp_path, now=NOW)
    emp, sara, code = await _setup(h)
    await emp.say("/appointment")
    await emp.press("09:00")  # Friday 08:00 UTC
    await h.tick()
    assert not any("Reminder" in t for t in emp.texts + sara.texts)
    await h.store.close()

    from store.crypto import load_master_key

    store = Store.open(url, load_master_key(tmp_path / "master.key"))
    h2 = Harness(store, h.clock, CoreSettings(org_name="Acme", numbered_channels=frozenset()))
    try:
        h.clock.current = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # 23 h before
        await h2.tick()
        await h2.tick()
        emp2, sara2 = h2.person("emp-1"), h2.person("conf-sara")
        assert [t for t in emp2.texts if "tomorrow" in t] == [
            "Reminder: your in-person talk is tomorrow, Friday 27 November 2026, 09:00, "
            "with Sara, room Blue room (Main building)."]
        assert len([t for t in sara2.texts if "tomorrow" in t and code in t]) == 1
        h.clock.current = datetime(2026, 11, 27, 7, 10, tzinfo=UTC)
        await h2.tick()
        await h2.tick()
        assert len([t for t in emp2.texts if "in one hour" in t]) == 1
        assert len([t for t in sara2.texts if "in one hour" in t]) == 1
        async with store.tx() as tx:
            [appt] = (await tx.session.scalars(select(Appointment))).all()
            assert appt.reminded_day_at is not None and appt.reminded_hour_at is not None
            case = (await tx.session.scalars(select(Case))).one()
            assert case.code == code
    finally:
        await store.close()


async def test_no_case_and_no_rota(harness: Harness) -> None:
    emp = harness.person("emp-9")
    await emp.say("/start")
    await emp.say("/appointment")
    assert "Start one first with /talk" in emp.last
    sara = await harness.add_confidant("Sara", "conf-sara")
    await emp.say("/talk")
    await emp.press("first available")
    await emp.say("/appointment")
    assert "no free times" in emp.last
    await sara.press("Claim")
    await sara.say("/offer")
    assert "no free talk hours" in sara.last


async def test_first_available_shows_every_confidant(harness: Harness) -> None:
    sara = await harness.add_confidant("Sara", "conf-sara")
    tom = await harness.add_confidant("Tom", "conf-tom")
    async with harness.store.tx() as tx:
        for name, day in (("Sara", 4), ("Tom", 3)):
            c = await tx.confidants.by_name(name)
            assert c is not None
            await tx.rota.add_shift(c, day, time(9), time(10), "talks")
        await tx.rota.add_room("Blue room")
    emp = harness.person("emp-1")
    await emp.say("/start")
    await emp.say("/talk")
    await emp.press("first available")
    await emp.say("/appointment")
    assert "first available confidant" in emp.last
    labels = [b.label for b in emp.inbox[-1].menu.buttons()]  # type: ignore[union-attr]
    assert labels[:2] == ["Thu 26 Nov, 09:00 · Tom · Blue room",
                          "Fri 27 Nov, 09:00 · Sara · Blue room"]
    await emp.press("Tom")
    assert "with Tom" in emp.last
    assert "in-person talk booked" in tom.last and tom.inbox[-1].case is None
    assert not any("in-person talk booked" in t for t in sara.texts)
