"""The rota TOML file: day and time parsing (the shared parsers, as the file
reads them), validation, import/export round trip."""

from __future__ import annotations

from datetime import date, time

import pytest

from domain.parsing import ParseError, parse_time, parse_week
from domain.parsing import parse_weekday as parse_day
from handlers.administration.rota_file import RotaFileError, parse_rota
from store.store import Tx
from tests.test_cli import CliEnv, cli_env

__all__ = ["cli_env"]

GOOD = """
[[confidant]]
name = "An Peeters"

[[confidant.shift]]
day = "maandag"
start = "09:00"
end = "12:00"

[[confidant.shift]]
day = "mercredi"
start = "13:00"
end = "16:30"
kind = "talks"

[[confidant.absence]]
from = 2030-07-01
to = "2030-07-14"

[[confidant]]
name = "Bo"

[[confidant.shift]]
day = "Fri"
start = "08:00"
end = "10:00"

[[room]]
name = "Room \\"Blue\\" 2.14"
site = "HQ"
notes = "second floor\\nend of the corridor"
"""


@pytest.mark.parametrize(("word", "day"), [
    ("mon", 0), ("Monday", 0), ("ma", 0), ("maandag", 0), ("lundi", 0), ("lun", 0),
    ("tue", 1), ("di", 1), ("mardi", 1), ("mar", 1), ("wo", 2), ("mercredi", 2),
    ("do", 3), ("jeudi", 3), ("vr", 4), ("vendredi", 4), ("za", 5), ("samedi", 5),
    ("zo", 6), ("Dimanche", 6), ("sun", 6), ("7", 6), ("1", 0),
])
def test_parse_day_in_three_languages(word: str, day: int) -> None:
    assert parse_day(word) == day


@pytest.mark.parametrize("word", ["", "funday", "8", "0", "m"])
def test_parse_day_refuses(word: str) -> None:
    with pytest.raises(ParseError, match="unknown weekday"):
        parse_day(word)


def test_parse_time_and_week() -> None:
    assert parse_time("9:05") == time(9, 5)
    assert parse_time("23:59") == time(23, 59)
    assert parse_time("9") == time(9)  # a whole hour, as the chat admin always took it
    for bad in ("24:00", "12:60", "noon", "9h", "09:00:00"):
        with pytest.raises(ParseError):
            parse_time(bad)
    assert parse_week("2025-W07") == date(2025, 2, 10)
    assert parse_week("2026w1") == date(2025, 12, 29)
    with pytest.raises(ParseError):
        parse_week("2025-W54")


def test_parse_good_file() -> None:
    spec = parse_rota(GOOD)
    an, bo = spec.confidants
    assert an.name == "An Peeters"
    assert [(s.weekday, s.start, s.end, s.kind) for s in an.shifts] == [
        (0, time(9), time(12), "duty"), (2, time(13), time(16, 30), "talks")]
    assert an.absences == [(date(2030, 7, 1), date(2030, 7, 14))]
    assert bo.shifts[0].weekday == 4
    assert spec.rooms[0].name == 'Room "Blue" 2.14'


@pytest.mark.parametrize(("text", "expected"), [
    ("[[confidant]\nname = 'x'", "not valid TOML"),
    ("[[confidant]]\n", "confidant[0].name: missing"),
    ("[[confidant]]\nname = 'A'\nshifts = []", "confidant[0].shifts: unknown key"),
    ("[[confidant]]\nname='A'\n[[confidant.shift]]\nday='mon'\nstart='10:00'\nend='09:00'",
     "confidant[0].shift[0].end: 09:00 is not after start 10:00"),
    ("[[confidant]]\nname='A'\n[[confidant.shift]]\nday='xx'\nstart='09:00'\nend='10:00'",
     "confidant[0].shift[0].day: unknown weekday 'xx'"),
    ("[[confidant]]\nname='A'\n[[confidant.shift]]\nday='mon'\nstart=9\nend='10:00'",
     "confidant[0].shift[0].start: expected a string"),
    ("[[confidant]]\nname='A'\n[[confidant.shift]]\nday='mon'\nstart='09:00'",
     "confidant[0].shift[0].end: missing"),
    ("[[confidant]]\nname='A'\n[[confidant.shift]]\nday='mon'\nstart='09:00'\nend='10:00'"
     "\nkind='meeting'", "confidant[0].shift[0].kind: 'meeting' is not a shift kind"),
    ("[[confidant]]\nname='A'\n[[confidant.shift]]\nday='mon'\nstart='09:00'\nend='11:00'"
     "\n[[confidant.shift]]\nday='ma'\nstart='10:00'\nend='12:00'",
     "confidant[0].shift[1]: overlaps confidant[0].shift[0]"),
    ("[[confidant]]\nname='A'\n[[confidant.absence]]\nfrom=2030-01-05\nto=2030-01-01",
     "confidant[0].absence[0].to: 2030-01-01 is before from 2030-01-05"),
    ("[[confidant]]\nname='A'\n[[confidant.absence]]\nfrom=2030-01-05T10:00:00\nto=2030-01-06",
     "only the date"),
    ("[[confidant]]\nname='A'\n[[confidant]]\nname='a'", "confidant[1].name: 'a' appears twice"),
    ("[[room]]\nname='R'\n[[room]]\nname='R'", "room[1].name: 'R' appears twice"),
    ("[[room]]\nname='R'\nfloor=2", "room[0].floor: unknown key"),
    ("rooms = []", "(top level).rooms: unknown key"),
])
def test_malformed_files_are_refused_in_one_line(text: str, expected: str) -> None:
    with pytest.raises(RotaFileError) as info:
        parse_rota(text)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_several_problems_are_counted_in_the_line() -> None:
    text = ("[[confidant]]\nname='A'\n[[confidant.shift]]\nday='xx'\nstart='9h'\nend='10:00'")
    with pytest.raises(RotaFileError, match=r"\(and 1 more problem\)"):
        parse_rota(text)


def _state(env: CliEnv) -> dict[str, object]:
    async def read(tx: Tx) -> dict[str, object]:
        out: dict[str, object] = {}
        for c in await tx.confidants.all():
            out[c.name] = (
                sorted((s.weekday, s.start, s.end, s.kind) for s in await tx.rota.shifts(c.id)),
                sorted((a.start_date, a.end_date) for a in await tx.rota.absences(c.id)),
            )
        out["rooms"] = [(r.name, r.site, r.notes) for r in await tx.rota.rooms()]
        return out

    return env.with_store(read)


def _register(env: CliEnv, *names: str) -> None:
    for name in names:
        assert env("admin", "confidant", "add", "--name", name, "--attest-eligible").rc == 0


def test_import_export_round_trip(cli_env: CliEnv) -> None:
    _register(cli_env, "An Peeters", "Bo", "Chris")
    assert cli_env("admin", "rota", "add", "--confidant", "Chris", "--day", "sat", "--start",
                   "10:00", "--end", "11:00").rc == 0
    assert cli_env("admin", "rota", "add", "--confidant", "An Peeters", "--day", "sun",
                   "--start", "10:00", "--end", "11:00").rc == 0
    rota = cli_env.folder / "rota.toml"
    rota.write_text(GOOD)
    imported = cli_env("admin", "rota", "import", str(rota))
    assert imported.rc == 0, imported.err
    assert "2 confidants, 3 shifts, 1 absences, 1 rooms" in imported.out
    state = _state(cli_env)
    # Named confidants get exactly the file's shifts; Chris was not named: untouched.
    assert state["An Peeters"] == (
        [(0, time(9), time(12), "duty"), (2, time(13), time(16, 30), "talks")],
        [(date(2030, 7, 1), date(2030, 7, 14))])
    assert state["Chris"] == ([(5, time(10), time(11), "duty")], [])
    assert state["rooms"] == [('Room "Blue" 2.14', "HQ", "second floor\nend of the corridor")]

    out = cli_env.folder / "export.toml"
    assert cli_env("admin", "rota", "export", str(out)).rc == 0
    printed = cli_env("admin", "rota", "export")
    assert printed.out == out.read_text()
    # Importing the export changes nothing, however often it is done.
    assert cli_env("admin", "rota", "import", str(out)).rc == 0
    assert cli_env("admin", "rota", "import", str(out)).rc == 0
    assert _state(cli_env) == state
    kinds = [e.kind for e in cli_env.with_store(lambda tx: tx.audit.recent())]
    assert kinds.count("rota.imported") == 3 and "rota.exported" in kinds


def test_import_is_all_or_nothing(cli_env: CliEnv) -> None:
    _register(cli_env, "An Peeters")
    assert cli_env("admin", "rota", "add", "--confidant", "An Peeters", "--day", "tue",
                   "--start", "10:00", "--end", "11:00").rc == 0
    before = _state(cli_env)
    rota = cli_env.folder / "rota.toml"
    rota.write_text(GOOD)  # names Bo, who is not registered
    line = cli_env("admin", "rota", "import", str(rota)).one_line_error()
    assert "no registered confidant 'Bo'" in line and str(rota) in line
    assert _state(cli_env) == before
    rota.write_text(GOOD.replace('end = "16:30"', 'end = "12:00"'))
    line = cli_env("admin", "rota", "import", str(rota)).one_line_error()
    assert "confidant[0].shift[1].end: 12:00 is not after start 13:00" in line
    assert _state(cli_env) == before
    missing = cli_env("admin", "rota", "import", str(cli_env.folder / "nope.toml"))
    assert "no such file" in missing.one_line_error()
