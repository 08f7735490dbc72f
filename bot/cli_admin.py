"""``confidant admin …``: confidants, rota, absences, rooms, admins, login links, register.

Every command but ``register export`` goes through the admin service
(`handlers.administration.service`), the same one the chat's ``/admin`` and
the web admin console use: the same inputs are accepted and refused for the
same reasons, and each change records an audit event
(``admin:cli:<os user>``, no content, no platform ids).  A refusal is printed
by `bot.cli.main` as one line.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.cli_common import (
    UserError,
    actor,
    open_service,
    open_store,
    os_user,
    show,
    table,
    warn,
    write_output,
)
from bot.cli_report import render_register
from bot.config import Config
from domain.parsing import WEEKDAY_KEYS, ParseError, hhmm, parse_date
from domain.vocabulary import ShiftKind
from handlers.administration.people import EXCLUSIONS
from handlers.administration.problems import AdminError
from handlers.administration.validation import KINDS
from handlers.administration.views import shift_words

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]

__all__ = ["EXCLUSIONS", "actor", "add_admin_parser"]


def read_text(path: Path) -> str:
    """A text file given on the command line, or one line saying why not."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None


def _quoted(name: str) -> str:
    """A name as it would be typed in a shell."""
    return f'"{name}"' if re.search(r"[^\w.-]", name) else name


# ------------------------------------------------------------------ confidants


async def confidant_add(args: argparse.Namespace) -> int:
    """Register a confidant; the law allows it only after the eligibility attestation."""
    async with open_service(args) as (_, svc):
        c = await svc.add_confidant(
            args.name, attest_eligible=args.attest_eligible,
            attested_by=args.attested_by or os_user(), languages=args.languages,
            bio=args.bio or "", telegram=args.telegram, matrix=args.matrix, web=args.web)
    print(f"registered confidant {c.name} (languages: {','.join(c.languages)}; channels: "
          f"{', '.join(c.channels) or 'none yet'})")
    print(f"eligibility attested by {c.attested_by} on {c.attested_at.date().isoformat()}")
    if "web" in c.channels:
        print(f"web console login link: confidant admin token --confidant {_quoted(c.name)}")
    return 0


async def confidant_list(args: argparse.Namespace) -> int:
    """Who is registered, on which channels, attested by whom."""
    async with open_service(args) as (_, svc):
        rows = [[c.name, ",".join(c.languages), ",".join(c.channels) or "-", str(c.shifts),
                 f"{c.attested_by} {c.attested_at.date().isoformat()}",
                 "" if c.active else "removed"]
                for c in await svc.confidants(include_inactive=args.all)]
    return show(["name", "languages", "channels", "shifts", "attested", ""], rows,
                "no confidants registered (add one: confidant admin confidant add)")


async def confidant_remove(args: argparse.Namespace) -> int:
    """Deregister: no more cases or shifts; closed cases keep their history."""
    async with open_service(args) as (_, svc):
        c, dropped = await svc.deactivate_confidant(args.name)
    print(f"removed confidant {c.name} ({dropped} shift(s) dropped; addresses forgotten)")
    return 0


async def confidant_set(args: argparse.Namespace) -> int:
    """Change a confidant's bio, languages or channel addresses."""
    async with open_service(args) as (_, svc):
        c, changed = await svc.edit_confidant(
            args.name, bio=args.bio, languages=args.languages, telegram=args.telegram,
            forget_telegram=args.no_telegram, matrix=args.matrix,
            forget_matrix=args.no_matrix, web=args.web)
    print(f"updated {c.name}: {', '.join(changed)} (channels: {', '.join(c.channels) or 'none'})")
    return 0


# ------------------------------------------------------------------ rota


async def rota_add(args: argparse.Namespace) -> int:
    """Add a weekly shift after checking it makes sense and collides with nothing."""
    async with open_service(args) as (_, svc):
        change = await svc.add_shift(args.confidant, args.day, args.start, args.end, args.kind)
    s = change.shift
    print(f"added {s.kind} shift {s.id[:8]}: {s.confidant}, {shift_words(s)}")
    warn(change.warnings)
    return 0


async def rota_show(args: argparse.Namespace) -> int:
    """The week's shifts as a table, marking confidants who are absent that day."""
    async with open_service(args) as (_, svc):
        only = (await svc.confidant(args.confidant)).id if args.confidant else None
        week = await svc.week(args.week or None)
    rows = [[WEEKDAY_KEYS[w.shift.weekday], w.day.isoformat(),
             f"{hhmm(w.shift.start)}-{hhmm(w.shift.end)}", w.shift.kind, w.shift.confidant,
             "absent" if w.absent else "", w.shift.id[:8]]
            for w in week.shifts if only is None or w.shift.confidant_id == only]
    print(f"rota for week {week.label} ({week.days[0].isoformat()} to "
          f"{week.days[-1].isoformat()}), times in {week.timezone}")
    if not rows:
        print("no shifts (add one: confidant admin rota add)")
    else:
        print(table(["day", "date", "time", "kind", "confidant", "note", "id"], rows))
    if only is None:
        warn(week.warnings)
    return 0


async def rota_remove(args: argparse.Namespace) -> int:
    """Drop one shift by its id (a unique prefix of 4+ characters is enough)."""
    async with open_service(args) as (_, svc):
        change = await svc.remove_shift(args.id)
    s = change.shift
    print(f"removed shift {s.id[:8]}: {s.confidant}, {shift_words(s)} {s.kind}")
    warn(change.warnings)
    return 0


async def rota_import(args: argparse.Namespace) -> int:
    """Load a whole rota file: all checked first, then written in one transaction."""
    path = Path(args.file)
    text = read_text(path)
    async with open_service(args) as (_, svc):
        try:
            result = await svc.import_rota(text)
        except AdminError as exc:
            raise UserError(f"{path}: {exc}") from None
    print(f"imported {args.file}: {result.summary()}")
    return 0


async def rota_export(args: argparse.Namespace) -> int:
    """Write the rota in the import shape (to a file or the terminal)."""
    async with open_service(args) as (_, svc):
        text = await svc.export_rota()
    write_output(text, args.file)
    return 0


# ------------------------------------------------------------------ absences


async def absence_add(args: argparse.Namespace) -> int:
    """Mark a confidant away (inclusive dates): no cases or talks on those days."""
    async with open_service(args) as (_, svc):
        a = await svc.add_absence(args.confidant, args.start, args.end)
    print(f"added absence {a.id[:8]}: {a.confidant}, {a.start} to {a.end}")
    return 0


async def absence_list(args: argparse.Namespace) -> int:
    """Absences, current and future by default."""
    async with open_service(args) as (_, svc):
        rows = [[a.confidant, a.start.isoformat(), a.end.isoformat(), a.id[:8]]
                for a in await svc.absences(args.confidant, include_past=args.all)]
    return show(["confidant", "from", "to", "id"], rows, "no absences")


async def absence_remove(args: argparse.Namespace) -> int:
    """Cancel an absence by id (unique prefix of 4+ characters)."""
    async with open_service(args) as (_, svc):
        a = await svc.remove_absence(args.id)
    print(f"removed absence {a.id[:8]}: {a.confidant}, {a.start} to {a.end}")
    return 0


# ------------------------------------------------------------------ rooms


async def room_add(args: argparse.Namespace) -> int:
    """Register a discreet room for in-person talks."""
    async with open_service(args) as (_, svc):
        room = await svc.add_room(args.name, args.site or "", args.notes or "")
    print(f"added room {room.name}" + (f" ({room.site})" if room.site else ""))
    return 0


async def room_list(args: argparse.Namespace) -> int:
    """The rooms talks can be booked in."""
    async with open_service(args) as (_, svc):
        rows = [[r.name, r.site, r.notes.replace("\n", " ")] for r in await svc.rooms()]
    return show(["name", "site", "notes"], rows, "no rooms (add one: confidant admin room add)")


async def room_remove(args: argparse.Namespace) -> int:
    """Stop offering a room (booked talks keep their history)."""
    async with open_service(args) as (_, svc):
        room = await svc.remove_room(args.name)
    print(f"removed room {room.name}")
    return 0


# ------------------------------------------------------------------ admins


async def admin_add(args: argparse.Namespace) -> int:
    """An account for the web admin console."""
    async with open_service(args) as (_, svc):
        a = await svc.add_admin(args.name)
    print(f"added admin {a.name} (login link: confidant admin token --admin {_quoted(a.name)})")
    return 0


async def admin_list(args: argparse.Namespace) -> int:
    """Who may use the web admin console."""
    async with open_service(args) as (_, svc):
        rows = [[a.name, "config file" if a.source == "config" else "confidant admin admin add",
                 a.created_at.date().isoformat() if a.created_at else ""]
                for a in await svc.admins()]
    return show(["name", "from", "since"], rows,
                "no admins (add one: confidant admin admin add NAME)")


async def admin_remove(args: argparse.Namespace) -> int:
    """Take an account away: its login links and open sessions end at once."""
    async with open_service(args) as (_, svc):
        a = await svc.remove_admin(args.name)
    print(f"removed admin {a.name} (open sessions ended)")
    return 0


# ------------------------------------------------------------------ tokens, register


def console_base(config: Config) -> str:
    """Where the console is reached: ``web.public_url``, else the listen address."""
    if config.web.public_url:
        return config.web.public_url.rstrip("/")
    host, port = config.web.host_port
    if host in ("0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


async def token(args: argparse.Namespace) -> int:
    """A one-time login link for a confidant's console or for the web admin
    console; a confidant without console access gets it first."""
    async with open_service(args) as (config, svc):
        if args.admin:
            a, secret = await svc.admin_token(args.admin)
            who, link, added = a.name, "admin/login", False
        else:
            c, secret, added = await svc.console_token(args.confidant)
            who, link = c.name, "console/login"
    if not config.web.enabled:
        print("note: the web channel is disabled in the config ([web] enabled = false)",
              file=sys.stderr)
    if added:
        print(f"{who} had no web console access; it is now enabled", file=sys.stderr)
    print(f"{console_base(config)}/{link}?token={secret}")
    print(f"valid once, for 24 hours; give it to {who} only", file=sys.stderr)
    return 0


def _day_start(value: str, what: str) -> datetime:
    """Midnight UTC of a given date, for range filters."""
    try:
        day = parse_date(value)
    except ParseError as exc:
        raise UserError(f"{what}: {exc}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def register_export(args: argparse.Namespace) -> int:
    """The register of acts by third parties, for the inspection or the annual report."""
    since = _day_start(args.start, "--from") if args.start else None
    until = _day_start(args.end, "--to") + timedelta(days=1) if args.end else None
    if since and until and until <= since:
        raise UserError("--to is before --from")
    async with open_store(args) as (_, store), store.tx() as tx:
        entries = await tx.register.entries(since, until)
        await tx.audit.record(actor(), "register.exported", "", f"{len(entries)} entries")
    write_output(render_register(entries, args.format), args.output)
    return 0


# ------------------------------------------------------------------ parser


def _cmd(parser: argparse.ArgumentParser, func: Command) -> None:
    """Bind a subcommand to its coroutine."""
    parser.set_defaults(func=func)


def add_admin_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """``confidant admin …`` and all of its subcommands."""
    admin = sub.add_parser("admin", help="manage confidants, rota, absences, rooms, access",
                           description="Administration (HR / prevention service). Every "
                           "action is recorded in the audit trail; cases are never shown.")
    groups = admin.add_subparsers(dest="group", metavar="AREA", required=True)

    conf = groups.add_parser("confidant", help="register, list, change, remove confidants")
    conf_sub = conf.add_subparsers(dest="action", metavar="ACTION", required=True)
    exclusions = "\n".join(f"  - {e}" for e in EXCLUSIONS)
    add = conf_sub.add_parser(
        "add", parents=[common], help="register a confidant (needs --attest-eligible)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Register a confidant. The law allows it only for someone who is "
        "none of:\n" + exclusions + "\nConfirm this with --attest-eligible; who attested "
        "(you, or --attested-by) and when is recorded.")
    add.add_argument("--name", required=True, help="name shown to employees")
    add.add_argument("--telegram", metavar="ID", help="numeric Telegram user id")
    add.add_argument("--matrix", metavar="MXID", help='Matrix id, e.g. "@an:example.org"')
    add.add_argument("--web", action="store_true", help="give access to the web console")
    add.add_argument("--languages", metavar="nl,fr,en",
                     help="languages spoken (default: organisation.default_language)")
    add.add_argument("--bio", metavar="TEXT", help="a short introduction shown to employees")
    add.add_argument("--attest-eligible", action="store_true",
                     help="I attest that this person is none of: " + "; ".join(EXCLUSIONS))
    add.add_argument("--attested-by", metavar="WHO",
                     help="who attests eligibility (default: your OS user)")
    _cmd(add, confidant_add)
    lst = conf_sub.add_parser("list", parents=[common], help="list confidants")
    lst.add_argument("--all", action="store_true", help="include removed confidants")
    _cmd(lst, confidant_list)
    rm = conf_sub.add_parser("remove", parents=[common], help="deregister a confidant")
    rm.add_argument("name")
    _cmd(rm, confidant_remove)
    st = conf_sub.add_parser("set", parents=[common], help="change a confidant")
    st.add_argument("name")
    st.add_argument("--bio", metavar="TEXT")
    st.add_argument("--languages", metavar="nl,fr,en")
    st.add_argument("--telegram", metavar="ID")
    st.add_argument("--no-telegram", action="store_true", help="forget the Telegram id")
    st.add_argument("--matrix", metavar="MXID")
    st.add_argument("--no-matrix", action="store_true", help="forget the Matrix id")
    st.add_argument("--web", action=argparse.BooleanOptionalAction, default=None,
                    help="give or take away web console access")
    _cmd(st, confidant_set)

    rota = groups.add_parser("rota", help="weekly shifts (duty and talk hours)")
    rota_sub = rota.add_subparsers(dest="action", metavar="ACTION", required=True)
    ra = rota_sub.add_parser("add", parents=[common], help="add a weekly shift")
    ra.add_argument("--confidant", required=True, metavar="NAME")
    ra.add_argument("--day", required=True,
                    help="mon|tue|wed|thu|fri|sat|sun or 1-7 (Dutch and French names work too)")
    ra.add_argument("--start", required=True, metavar="HH:MM")
    ra.add_argument("--end", required=True, metavar="HH:MM")
    ra.add_argument("--kind", choices=KINDS, default=ShiftKind.DUTY.value,
                    help="duty: answers chats; talks: in-person talks may be booked")
    _cmd(ra, rota_add)
    rs = rota_sub.add_parser("show", parents=[common], help="show a week's shifts")
    rs.add_argument("--week", metavar="YYYY-Www", help="ISO week (default: this week)")
    rs.add_argument("--confidant", metavar="NAME", help="only this confidant")
    _cmd(rs, rota_show)
    rr = rota_sub.add_parser("remove", parents=[common], help="remove a shift by id")
    rr.add_argument("id", help="shift id from 'rota show' (a unique prefix is enough)")
    _cmd(rr, rota_remove)
    ri = rota_sub.add_parser(
        "import", parents=[common], help="load shifts, absences and rooms from a TOML file",
        description="Load a rota file (the shape 'rota export' writes). Every confidant "
        "named in the file gets exactly the shifts and absences listed; rooms are added "
        "or updated. The whole file is checked before anything changes.")
    ri.add_argument("file", metavar="FILE.toml")
    _cmd(ri, rota_import)
    re_ = rota_sub.add_parser("export", parents=[common],
                              help="write shifts, absences and rooms as TOML")
    re_.add_argument("file", nargs="?", metavar="FILE", help="default: print")
    _cmd(re_, rota_export)

    ab = groups.add_parser("absence", help="days a confidant is away")
    ab_sub = ab.add_subparsers(dest="action", metavar="ACTION", required=True)
    aa = ab_sub.add_parser("add", parents=[common], help="add an absence")
    aa.add_argument("--confidant", required=True, metavar="NAME")
    aa.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    aa.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD",
                    help="last day away (inclusive)")
    _cmd(aa, absence_add)
    al = ab_sub.add_parser("list", parents=[common], help="list absences")
    al.add_argument("--confidant", metavar="NAME")
    al.add_argument("--all", action="store_true", help="include past absences")
    _cmd(al, absence_list)
    ar = ab_sub.add_parser("remove", parents=[common], help="remove an absence by id")
    ar.add_argument("id")
    _cmd(ar, absence_remove)

    room = groups.add_parser("room", help="discreet rooms for in-person talks")
    room_sub = room.add_subparsers(dest="action", metavar="ACTION", required=True)
    rma = room_sub.add_parser("add", parents=[common], help="add a room")
    rma.add_argument("--name", required=True)
    rma.add_argument("--site", default="")
    rma.add_argument("--notes", default="", metavar="TEXT", help="how to find it, access")
    _cmd(rma, room_add)
    _cmd(room_sub.add_parser("list", parents=[common], help="list rooms"), room_list)
    rmr = room_sub.add_parser("remove", parents=[common], help="stop offering a room")
    rmr.add_argument("name")
    _cmd(rmr, room_remove)

    adm = groups.add_parser("admin", help="accounts of the web admin console")
    adm_sub = adm.add_subparsers(dest="action", metavar="ACTION", required=True)
    ada = adm_sub.add_parser("add", parents=[common], help="add an admin account")
    ada.add_argument("name")
    _cmd(ada, admin_add)
    _cmd(adm_sub.add_parser("list", parents=[common], help="list admin accounts"), admin_list)
    adr = adm_sub.add_parser("remove", parents=[common],
                             help="remove an admin account (ends its sessions)")
    adr.add_argument("name")
    _cmd(adr, admin_remove)

    tok = groups.add_parser("token", parents=[common],
                            help="one-time login link: confidant console or web admin console")
    who = tok.add_mutually_exclusive_group(required=True)
    who.add_argument("--confidant", metavar="NAME", help="for a confidant's web console")
    who.add_argument("--admin", metavar="NAME", help="for the web admin console")
    _cmd(tok, token)

    reg = groups.add_parser("register", help="register of acts by third parties")
    reg_sub = reg.add_subparsers(dest="action", metavar="ACTION", required=True)
    rx = reg_sub.add_parser("export", parents=[common],
                            help="export the register for the inspection")
    rx.add_argument("--from", dest="start", metavar="YYYY-MM-DD")
    rx.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="inclusive")
    rx.add_argument("--format", choices=("csv", "json"), default="csv")
    rx.add_argument("--output", metavar="FILE", help="default: print")
    _cmd(rx, register_export)
