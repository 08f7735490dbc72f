"""``confidant admin …``: confidants, rota, absences, rooms, tokens, register, audit."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, time

from sqlalchemy import select

from bot.cli_admin import EXCLUSIONS
from store.models import AuditEvent, Confidant
from store.store import Tx
from tests.test_cli import CliEnv, cli_env, run_main

__all__ = ["cli_env"]


def add_an(env: CliEnv, *extra: str) -> None:
    result = env("admin", "confidant", "add", "--name", "An Peeters", "--attest-eligible",
                 *extra)
    assert result.rc == 0, result.err


def audit_kinds(env: CliEnv) -> list[tuple[str, str, str]]:
    async def read(tx: Tx) -> list[tuple[str, str, str]]:
        rows = (await tx.session.scalars(select(AuditEvent).order_by(AuditEvent.at))).all()
        return [(r.actor, r.kind, r.subject) for r in rows]

    return env.with_store(read)


def test_add_refuses_without_attestation(cli_env: CliEnv) -> None:
    result = cli_env("admin", "confidant", "add", "--name", "An", "--telegram", "123")
    line = result.one_line_error()
    assert "--attest-eligible" in line
    assert "occupational physician" in line and "union delegation" in line
    assert "no confidants" in cli_env("admin", "confidant", "list").out


def test_add_help_lists_the_exclusions() -> None:
    result = run_main("admin", "confidant", "add", "--help")
    assert result.rc == 0
    text = " ".join(result.out.split())
    for words in ("works council", "CPBW", "union delegation", "social elections",
                  "managerial staff", "occupational physician"):
        assert words in text
    assert len(EXCLUSIONS) == 5


def test_add_records_attestation_addresses_and_audit(cli_env: CliEnv) -> None:
    result = cli_env("admin", "confidant", "add", "--name", "An Peeters", "--telegram",
                     "5551234", "--matrix", "@an:example.org", "--web", "--languages",
                     "nl,fr", "--bio", "Ik luister.", "--attest-eligible")
    assert result.rc == 0, result.err
    assert "attested by hr-anna" in result.out
    assert "5551234" not in result.out  # platform ids are not echoed

    async def read(tx: Tx) -> tuple[Confidant, list[tuple[str, str]]]:
        c = await tx.confidants.by_name("An Peeters")
        assert c is not None
        return c, [(a.channel, a.address) for a in await tx.confidants.addresses(c)]

    c, addresses = cli_env.with_store(read)
    assert c.attested_by == "hr-anna"
    assert abs((datetime.now(UTC) - c.attested_at).total_seconds()) < 120
    assert c.languages == "nl,fr" and c.bio == "Ik luister."
    channels = dict(addresses)
    assert channels["telegram"] == "5551234" and channels["matrix"] == "@an:example.org"
    assert len(channels["web"]) > 20  # random console identity
    assert ("admin:cli:hr-anna", "confidant.added", "An Peeters") in audit_kinds(cli_env)


def test_add_validates_and_refuses_duplicates(cli_env: CliEnv) -> None:
    bad = cli_env("admin", "confidant", "add", "--name", "X", "--telegram", "@x",
                  "--attest-eligible")
    assert "numeric" in bad.one_line_error()
    bad = cli_env("admin", "confidant", "add", "--name", "X", "--matrix", "x",
                  "--attest-eligible")
    assert "Matrix id" in bad.one_line_error()
    bad = cli_env("admin", "confidant", "add", "--name", "X", "--languages", "de",
                  "--attest-eligible")
    assert "unknown language 'de'" in bad.one_line_error()
    add_an(cli_env, "--telegram", "777")
    again = cli_env("admin", "confidant", "add", "--name", "an peeters", "--attest-eligible")
    assert "already registered" in again.one_line_error()
    taken = cli_env("admin", "confidant", "add", "--name", "Bo", "--telegram", "777",
                    "--attest-eligible")
    assert "already belongs to confidant 'An Peeters'" in taken.one_line_error()
    assert cli_env("admin", "confidant", "add", "--name", "Bo", "--attested-by",
                   "Director Jansen", "--attest-eligible").rc == 0
    listed = cli_env("admin", "confidant", "list").out
    assert "Bo" in listed and "Director Jansen" in listed


def test_set_list_remove(cli_env: CliEnv) -> None:
    add_an(cli_env, "--telegram", "123")
    result = cli_env("admin", "confidant", "set", "An Peeters", "--bio", "Nieuw",
                     "--languages", "en", "--matrix", "@an:example.org", "--no-telegram",
                     "--web")
    assert result.rc == 0, result.err
    assert "channels: matrix, web" in result.out
    assert "nothing to change" in cli_env("admin", "confidant", "set", "An Peeters") \
        .one_line_error()
    assert cli_env("admin", "confidant", "set", "An Peeters", "--no-web").rc == 0
    listed = cli_env("admin", "confidant", "list")
    assert "An Peeters" in listed.out and "matrix" in listed.out and "web" not in listed.out
    assert cli_env("admin", "rota", "add", "--confidant", "An Peeters", "--day", "mon",
                   "--start", "09:00", "--end", "10:00").rc == 0
    removed = cli_env("admin", "confidant", "remove", "An Peeters")
    assert removed.rc == 0 and "1 shift(s) dropped" in removed.out
    assert "no confidants" in cli_env("admin", "confidant", "list").out
    assert "removed" in cli_env("admin", "confidant", "list", "--all").out
    assert "no confidant named" in cli_env("admin", "confidant", "remove", "An Peeters") \
        .one_line_error()
    # Registering the same person again needs a new attestation and works.
    add_an(cli_env)
    kinds = [k for _, k, _ in audit_kinds(cli_env)]
    assert kinds.count("confidant.added") == 2
    assert "confidant.changed" in kinds and "confidant.removed" in kinds


def test_rota_add_show_remove(cli_env: CliEnv) -> None:
    add_an(cli_env)
    added = cli_env("admin", "rota", "add", "--confidant", "An Peeters", "--day", "Maandag",
                    "--start", "9:00", "--end", "12:30")
    assert added.rc == 0, added.err
    shift_id = added.out.split()[3].rstrip(":")
    assert cli_env("admin", "rota", "add", "--confidant", "An Peeters", "--day", "jeudi",
                   "--start", "13:00", "--end", "17:00", "--kind", "talks").rc == 0
    # Same hours as a duty shift, but talk hours: a different kind does not collide.
    assert cli_env("admin", "rota", "add", "--confidant", "An Peeters", "--day", "mon",
                   "--start", "09:00", "--end", "10:00", "--kind", "talks").rc == 0
    assert cli_env("admin", "absence", "add", "--confidant", "An Peeters", "--from",
                   "2025-02-13", "--to", "2025-02-13").rc == 0
    shown = cli_env("admin", "rota", "show", "--week", "2025-W07")
    assert shown.rc == 0, shown.err
    lines = shown.out.splitlines()
    assert "2025-02-10 to 2025-02-16" in lines[0]
    mon = [ln for ln in lines if ln.startswith("mon") and "duty" in ln]
    assert mon and "2025-02-10" in mon[0] and "09:00-12:30" in mon[0]
    thu = [ln for ln in lines if ln.startswith("thu")]
    assert thu and "talks" in thu[0] and "absent" in thu[0]
    assert "absent" not in mon[0]

    removed = cli_env("admin", "rota", "remove", shift_id[:6])
    assert removed.rc == 0, removed.err
    assert "09:00-12:30" not in cli_env("admin", "rota", "show").out
    assert "no single shift" in cli_env("admin", "rota", "remove", "ffffffff").one_line_error()
    kinds = [k for _, k, _ in audit_kinds(cli_env)]
    assert kinds.count("rota.shift_added") == 3 and "rota.shift_removed" in kinds


def test_rota_add_refuses_nonsense_with_one_line(cli_env: CliEnv) -> None:
    add_an(cli_env)
    base = ("admin", "rota", "add", "--confidant", "An Peeters")
    cases = [
        (("--day", "mon", "--start", "12:00", "--end", "09:00"), "not after"),
        (("--day", "mon", "--start", "12:00", "--end", "12:00"), "not after"),
        (("--day", "funday", "--start", "09:00", "--end", "12:00"), "unknown weekday"),
        (("--day", "mon", "--start", "25:00", "--end", "26:00"), "not a time"),
        (("--day", "mon", "--start", "9h", "--end", "12:00"), "not a time"),
    ]
    for args, words in cases:
        assert words in cli_env(*base, *args).one_line_error(), args
    assert cli_env(*base, "--day", "tue", "--start", "09:00", "--end", "12:00").rc == 0
    clash = cli_env(*base, "--day", "dinsdag", "--start", "11:00", "--end", "14:00")
    assert "overlaps An Peeters's duty shift tue 09:00-12:00" in clash.one_line_error()
    assert cli_env(*base, "--day", "tue", "--start", "12:00", "--end", "14:00").rc == 0
    unknown = cli_env("admin", "rota", "add", "--confidant", "Nobody", "--day", "mon",
                      "--start", "09:00", "--end", "10:00")
    assert "no confidant named 'Nobody'" in unknown.one_line_error()
    assert "is not a week" in cli_env("admin", "rota", "show", "--week", "2025-13") \
        .one_line_error()

    async def shifts(tx: Tx) -> list[tuple[int, time, time]]:
        return [(s.weekday, s.start, s.end) for s in await tx.rota.shifts()]

    assert cli_env.with_store(shifts) == [(1, time(9), time(12)), (1, time(12), time(14))]


def test_days_times_and_dates_as_the_chat_reads_them(cli_env: CliEnv) -> None:
    """The CLI takes what ``/admin`` in chat takes: a whole hour, a Dutch
    three-letter day, a day-first date (and the ISO day number it always took)."""
    add_an(cli_env)
    base = ("admin", "rota", "add", "--confidant", "An Peeters")
    monday = cli_env(*base, "--day", "1", "--start", "9", "--end", "12:00")
    assert monday.rc == 0, monday.err
    assert "An Peeters, mon 09:00-12:00" in monday.out
    thursday = cli_env(*base, "--day", "don", "--start", "13", "--end", "14:30")
    assert "An Peeters, thu 13:00-14:30" in thursday.out
    assert "unknown weekday '8'" in cli_env(*base, "--day", "8", "--start", "9",
                                             "--end", "10").one_line_error()
    away = cli_env("admin", "absence", "add", "--confidant", "An Peeters",
                   "--from", "10/02/2030", "--to", "11.02.2030")
    assert away.rc == 0, away.err
    assert "An Peeters, 2030-02-10 to 2030-02-11" in away.out

    async def shifts(tx: Tx) -> list[tuple[int, time, time]]:
        return [(s.weekday, s.start, s.end) for s in await tx.rota.shifts()]

    assert sorted(cli_env.with_store(shifts)) == [(0, time(9), time(12)),
                                                  (3, time(13), time(14, 30))]


def test_absences(cli_env: CliEnv) -> None:
    add_an(cli_env)
    assert "is before" in cli_env("admin", "absence", "add", "--confidant", "An Peeters",
                                  "--from", "2030-02-10", "--to", "2030-02-01").one_line_error()
    assert "not a date" in cli_env("admin", "absence", "add", "--confidant", "An Peeters",
                                   "--from", "2030-02-30", "--to", "2030-03-11").one_line_error()
    added = cli_env("admin", "absence", "add", "--confidant", "An Peeters", "--from",
                    "2030-02-10", "--to", "2030-02-20")
    assert added.rc == 0, added.err
    assert cli_env("admin", "absence", "add", "--confidant", "An Peeters", "--from",
                   "2001-01-01", "--to", "2001-01-02").rc == 0
    listed = cli_env("admin", "absence", "list").out
    assert "2030-02-10" in listed and "2001-01-01" not in listed  # past ones hidden
    assert "2001-01-01" in cli_env("admin", "absence", "list", "--all").out
    absence_id = added.out.split()[2].rstrip(":")
    assert cli_env("admin", "absence", "remove", absence_id).rc == 0
    assert "no absences" in cli_env("admin", "absence", "list").out
    kinds = [k for _, k, _ in audit_kinds(cli_env)]
    assert "rota.absence_added" in kinds and "rota.absence_removed" in kinds


def test_rooms(cli_env: CliEnv) -> None:
    assert cli_env("admin", "room", "add", "--name", "Room 2.14", "--site", "HQ",
                   "--notes", "second floor").rc == 0
    assert "already exists" in cli_env("admin", "room", "add", "--name", "Room 2.14") \
        .one_line_error()
    listed = cli_env("admin", "room", "list").out
    assert "Room 2.14" in listed and "HQ" in listed and "second floor" in listed
    assert cli_env("admin", "room", "remove", "Room 2.14").rc == 0
    assert "no rooms" in cli_env("admin", "room", "list").out
    assert "no room named" in cli_env("admin", "room", "remove", "Room 2.14").one_line_error()
    assert cli_env("admin", "room", "add", "--name", "Room 2.14", "--site", "Annex").rc == 0
    assert "Annex" in cli_env("admin", "room", "list").out
    kinds = [k for _, k, _ in audit_kinds(cli_env)]
    assert kinds.count("room.added") == 2 and "room.removed" in kinds


def test_token_prints_a_one_time_console_link(cli_env: CliEnv) -> None:
    add_an(cli_env, "--matrix", "@an:example.org")
    result = cli_env("admin", "token", "--confidant", "An Peeters")
    assert result.rc == 0, result.err
    url = result.out.strip()
    prefix = "http://127.0.0.1:8080/console/login?token="
    assert url.startswith(prefix)
    token = url[len(prefix):]
    assert len(token) >= 24

    async def redeem(tx: Tx) -> tuple[str | None, list[str]]:
        c = await tx.confidants.redeem_login_token(token, datetime.now(UTC))
        again = await tx.confidants.redeem_login_token(token, datetime.now(UTC))
        assert again is None  # one use only
        assert c is not None
        return c.name, await tx.confidants.channels(c)

    name, channels = cli_env.with_store(redeem)
    assert name == "An Peeters" and "web" in channels
    assert ("admin:cli:hr-anna", "console.token_issued", "An Peeters") in audit_kinds(cli_env)


def test_token_uses_public_url(cli_env: CliEnv) -> None:
    text = cli_env.config.read_text().replace(
        '# public_url = "https://confidant.example.org"',
        'public_url = "https://confidant.example.org/"')
    cli_env.config.write_text(text)
    add_an(cli_env, "--web")
    result = cli_env("admin", "token", "--confidant", "An Peeters")
    assert result.out.startswith("https://confidant.example.org/console/login?token=")
    assert "no confidant named" in cli_env("admin", "token", "--confidant", "Nobody") \
        .one_line_error()


def test_register_export(cli_env: CliEnv) -> None:
    async def declare(tx: Tx) -> None:
        await tx.register.add({"what": "=HYPERLINK(\"x\")", "where": "shop"}, False,
                              datetime(2025, 3, 4, 10, tzinfo=UTC))
        await tx.register.add({"what": "threatened", "who": "Jan"}, True,
                              datetime(2025, 5, 1, 10, tzinfo=UTC))

    cli_env.with_store(declare)
    result = cli_env("admin", "register", "export")
    assert result.rc == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [r["identity_agreed"] for r in rows] == ["no", "yes"]
    assert rows[0]["what"].startswith("'=")  # no spreadsheet formula
    assert rows[1]["who"] == "Jan"
    ranged = cli_env("admin", "register", "export", "--from", "2025-04-01", "--to",
                     "2025-05-01", "--format", "json")
    entries = json.loads(ranged.out)
    assert [e["what"] for e in entries] == ["threatened"]
    out_file = cli_env.folder / "register.json"
    assert cli_env("admin", "register", "export", "--format", "json", "--output",
                   str(out_file)).rc == 0
    assert len(json.loads(out_file.read_text())) == 2
    assert oct(out_file.stat().st_mode & 0o777) == oct(0o600)
    assert "register.exported" in [k for _, k, _ in audit_kinds(cli_env)]
