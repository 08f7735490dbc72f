"""Slot generation: wall-clock talk hours across DST, absences, holidays, bookings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from handlers.slots import Away, Busy, TalkHours, generate, local_moment, week_start

BXL = ZoneInfo("Europe/Brussels")
EARLY = datetime(2020, 1, 1, tzinfo=UTC)


def _gen(hours: list[TalkHours], start: date, days: int, *, absences: list[Away] | None = None,
         busy: list[Busy] | None = None, rooms: tuple[str, ...] = ("r1",),
         not_before: datetime = EARLY) -> list:
    return generate(hours, absences or [], busy or [], list(rooms), tz=BXL, start_day=start,
                    days=days, slot_minutes=45, buffer_minutes=15, not_before=not_before)


def test_nine_o_clock_stays_nine_across_spring_change() -> None:
    # 2026-03-29 is the last Sunday of March: Brussels goes from UTC+1 to UTC+2.
    slots = _gen([TalkHours("c", 0, time(9), time(10))], date(2026, 3, 23), 14)
    assert [s.starts_at for s in slots] == [datetime(2026, 3, 23, 8, tzinfo=UTC),
                                            datetime(2026, 3, 30, 7, tzinfo=UTC)]
    assert {s.starts_at.astimezone(BXL).time() for s in slots} == {time(9)}
    assert all(s.ends_at - s.starts_at == timedelta(minutes=45) for s in slots)


def test_nine_o_clock_stays_nine_across_autumn_change() -> None:
    # 2026-10-25 is the last Sunday of October: back from UTC+2 to UTC+1.
    slots = _gen([TalkHours("c", 0, time(9), time(10))], date(2026, 10, 19), 14)
    assert [s.starts_at for s in slots] == [datetime(2026, 10, 19, 7, tzinfo=UTC),
                                            datetime(2026, 10, 26, 8, tzinfo=UTC)]
    assert {s.starts_at.astimezone(BXL).time() for s in slots} == {time(9)}


def test_skipped_hour_on_the_change_night_has_no_slot() -> None:
    slots = _gen([TalkHours("c", 6, time(1), time(4))], date(2026, 3, 29), 1)
    local = [s.starts_at.astimezone(BXL).strftime("%H:%M") for s in slots]
    assert local == ["01:00", "03:00"]  # 02:00 does not exist that night
    assert local_moment(date(2026, 3, 29), time(2, 30), BXL) is None


def test_repeated_hour_in_october_gives_distinct_real_times() -> None:
    slots = _gen([TalkHours("c", 6, time(1), time(4))], date(2026, 10, 25), 1)
    starts = [s.starts_at for s in slots]
    assert len(starts) == 3 and len(set(starts)) == 3
    assert starts == sorted(starts)
    assert all(b - a >= timedelta(minutes=60) for a, b in pairwise(starts))


def test_absence_and_holiday_remove_whole_days() -> None:
    hours = [TalkHours("c", d, time(9), time(11)) for d in range(5)]
    absences = [Away("c", date(2026, 11, 10), date(2026, 11, 10)),
                # Armistice day, given as an absence like any holiday
                Away("c", date(2026, 11, 11), date(2026, 11, 11))]
    slots = _gen(hours, date(2026, 11, 9), 5, absences=absences)
    days = sorted({s.starts_at.astimezone(BXL).date() for s in slots})
    assert days == [date(2026, 11, 9), date(2026, 11, 12), date(2026, 11, 13)]
    assert len(slots) == 6  # 09:00 and 10:00 on each remaining day


def test_absence_of_one_confidant_leaves_the_other() -> None:
    hours = [TalkHours("a", 0, time(9), time(10)), TalkHours("b", 0, time(9), time(10))]
    slots = _gen(hours, date(2026, 11, 9), 1, rooms=("r1", "r2"),
                 absences=[Away("a", date(2026, 11, 1), date(2026, 11, 30))])
    assert [(s.confidant_id, s.room_id) for s in slots] == [("b", "r1")]


def test_bookings_block_confidant_with_buffer_and_take_rooms() -> None:
    hours = [TalkHours("a", 0, time(9), time(12)), TalkHours("b", 0, time(9), time(12))]
    nine = datetime(2026, 11, 9, 8, tzinfo=UTC)
    busy = [Busy("a", "r1", nine, nine + timedelta(minutes=45)),
            # b's talk in r2 at 10:00 runs late into the buffer: 10:00-10:50
            Busy("b", "r2", nine + timedelta(hours=1), nine + timedelta(minutes=110))]
    slots = _gen(hours, date(2026, 11, 9), 1, busy=busy, rooms=("r1", "r2"))
    got = {(s.confidant_id, s.starts_at.astimezone(BXL).strftime("%H:%M"), s.room_id)
           for s in slots}
    assert got == {
        ("a", "10:00", "r1"), ("a", "11:00", "r1"),
        ("b", "09:00", "r2"),  # r1 is taken by a's talk at 09:00
        # b at 11:00 is within 15 min of the end of b's 10:00 talk (10:50) → gone
    }


def test_no_free_room_means_no_slot_and_past_is_skipped() -> None:
    hours = [TalkHours("a", 0, time(9), time(11))]
    nine = datetime(2026, 11, 9, 8, tzinfo=UTC)
    busy = [Busy("z", "r1", nine, nine + timedelta(minutes=45))]
    slots = _gen(hours, date(2026, 11, 9), 1, busy=busy, not_before=nine - timedelta(hours=1))
    assert [s.starts_at.astimezone(BXL).strftime("%H:%M") for s in slots] == ["10:00"]
    assert _gen(hours, date(2026, 11, 9), 1, not_before=nine + timedelta(minutes=1))[0] \
        .starts_at == nine + timedelta(hours=1)
    assert _gen(hours, date(2026, 11, 9), 1, rooms=()) == []


def test_week_start_is_local_monday() -> None:
    # Sunday 23:30 UTC on 2026-03-29 is already Monday 01:30 in Brussels.
    assert week_start(datetime(2026, 3, 29, 23, 30, tzinfo=UTC), BXL) == date(2026, 3, 30)
