"""``confidant admin …``: confidants, rota, absences, rooms, console tokens, register.

Each command opens the store with the configured master key, does its work
in one transaction, and records an audit event (``admin:cli:<os user>``, no
content, no platform ids).  Problems an admin can fix are raised as
`UserError` and printed by `bot.cli.main` as one line.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url

from bot.cli_report import render_register
from bot.config import Config, load_config
from bot.rota_file import (
    KINDS,
    RotaFileError,
    ShiftSpec,
    apply_rota,
    export_rota,
    overlaps,
    read_rota_file,
)
from domain.parsing import (
    WEEKDAY_KEYS,
    ParseError,
    hhmm,
    monday_of,
    parse_date,
    parse_time,
    parse_week,
    parse_weekday,
    week_label,
)
from domain.vocabulary import SUPPORTED_LANGUAGES, ShiftKind
from store.crypto import load_master_key
from store.db import is_sqlite
from store.keyring import check_master
from store.migrate import current_revision, head_revision
from store.models import Confidant
from store.rota import RotaError
from store.store import Store, Tx

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]

EXCLUSIONS = (
    "a delegate (employer or worker side) in the works council or the CPBW/CPPT",
    "a member of the union delegation",
    "a candidate in the social elections",
    "managerial staff (day-to-day management that can bind the employer, "
    "and their direct subordinates with day-to-day management tasks)",
    "the occupational physician",
)
"""Who may not be an internal confidant (Codex over het welzijn op het werk, Book I Title 3)."""

_MXID = re.compile(r"^@[^:\s]+:[^\s]+$")
_TELEGRAM_ID = re.compile(r"^\d{1,20}$")
_ROTA_REASONS = {
    "end-before-start": "the end must be after the start",
    "overlap": "overlaps another shift of the same kind that day",
    "weekday": "unknown weekday",
    "kind": "the kind must be duty or talks",
}


class UserError(Exception):
    """Something the admin can fix; printed as one line, exit code 1."""


def config_path(args: argparse.Namespace) -> Path:
    """``--config``, else ``$CONFIDANT_CONFIG``, else ``./config.toml`` (DESIGN.md)."""
    given = getattr(args, "config", None)
    if given:
        return Path(given)
    return Path(os.environ.get("CONFIDANT_CONFIG") or "config.toml")


def os_user() -> str:
    """Who runs the command, for audit events and the eligibility attestation."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def actor() -> str:
    """The audit actor of every CLI action."""
    return f"admin:cli:{os_user()}"


def now() -> datetime:
    """Current time in UTC (stored as such)."""
    return datetime.now(UTC)


def shown_url(url: str) -> str:
    """A database URL safe to print (no password)."""
    try:
        parsed = make_url(url)
    except Exception:  # printing must never fail
        return "(database)"
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def _missing_sqlite_file(url: str) -> str | None:
    """The SQLite file of ``url`` when it does not exist (opening would create it)."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return None if Path(database).exists() else database


async def ensure_migrated(url: str) -> None:
    """Refuse to work on a missing or outdated database with the command that fixes it."""
    missing = _missing_sqlite_file(url)
    if missing is not None:
        raise UserError(f"database {missing} does not exist (run: confidant init)")
    have = await current_revision(url)
    want = head_revision()
    if have is None:
        raise UserError(f"database {shown_url(url)} is not initialised (run: confidant init)")
    if have != want:
        raise UserError(
            f"database {shown_url(url)} is at revision {have}, this version needs {want} "
            "(run: confidant migrate)"
        )


@asynccontextmanager
async def open_store(args: argparse.Namespace) -> AsyncIterator[tuple[Config, Store]]:
    """Config, master key and a migrated database whose key check passes."""
    config = load_config(config_path(args))
    key = load_master_key(config.store.key_file)
    await ensure_migrated(config.store.url)
    store = Store.open(config.store.url, key)
    try:
        async with store.tx() as tx:
            await check_master(tx.session, store.crypto)
        yield config, store
    finally:
        await store.close()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns for the terminal."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths).rstrip())
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def write_output(text: str, target: str | None) -> None:
    """Print, or write to a file (owner-only: exports may be sensitive)."""
    if target is None or target == "-":
        sys.stdout.write(text)
        return
    path = Path(target)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or type(exc).__name__})") from None
    print(f"written to {path}")


# ------------------------------------------------------------------ validation


def languages_arg(value: str) -> list[str]:
    """``nl,fr,en`` → a checked list of languages the bot has texts for."""
    langs = [part.strip().lower() for part in value.split(",") if part.strip()]
    if not langs:
        raise UserError("--languages: give at least one of " + ", ".join(SUPPORTED_LANGUAGES))
    for lang in langs:
        if lang not in SUPPORTED_LANGUAGES:
            raise UserError(
                f"--languages: unknown language '{lang}' (supported: "
                f"{', '.join(SUPPORTED_LANGUAGES)})"
            )
    return list(dict.fromkeys(langs))


def telegram_arg(value: str) -> str:
    """A Telegram user id: the number the bot sees, not a @username."""
    value = value.strip()
    if not _TELEGRAM_ID.match(value):
        raise UserError("--telegram: expected the numeric Telegram user id (not a @username)")
    return value


def matrix_arg(value: str) -> str:
    """A full Matrix id."""
    value = value.strip()
    if not _MXID.match(value):
        raise UserError('--matrix: expected a Matrix id like "@name:server"')
    return value


def name_arg(value: str, what: str = "--name") -> str:
    """A display name for a confidant or room."""
    value = value.strip()
    if not value:
        raise UserError(f"{what}: must not be empty")
    if len(value) > 80:
        raise UserError(f"{what}: at most 80 characters")
    return value


async def confidant_named(tx: Tx, name: str) -> Confidant:
    """An active confidant by name, or a line telling how to find the names."""
    c = await tx.confidants.by_name(name.strip())
    if c is None or not c.active:
        raise UserError(f"no confidant named '{name}' (see: confidant admin confidant list)")
    return c


async def set_channel(tx: Tx, c: Confidant, channel: str, address: str | None) -> None:
    """Give a confidant an address, refusing one already used by another confidant."""
    if address is not None:
        other = await tx.confidants.find_by_address(channel, address)
        if other is not None and other.id != c.id:
            raise UserError(f"that {channel} address already belongs to confidant '{other.name}'")
    await tx.confidants.set_address(c, channel, address)


def new_web_id() -> str:
    """The confidant's web-console identity: random, never derived from the name."""
    return "console-" + secrets.token_urlsafe(18)


# ------------------------------------------------------------------ confidants


async def confidant_add(args: argparse.Namespace) -> int:
    """Register a confidant; the law allows it only after the eligibility attestation."""
    name = name_arg(args.name)
    if not args.attest_eligible:
        raise UserError(
            f"refused: confirm with --attest-eligible that {name} is none of: "
            + "; ".join(EXCLUSIONS)
        )
    telegram = telegram_arg(args.telegram) if args.telegram else None
    matrix = matrix_arg(args.matrix) if args.matrix else None
    attested_by = (args.attested_by or os_user()).strip()[:80]
    if not attested_by:
        raise UserError("--attested-by: must not be empty")
    async with open_store(args) as (config, store), store.tx() as tx:
        langs = (languages_arg(args.languages) if args.languages
                 else [config.organisation.default_language])
        existing = await tx.confidants.by_name(name)
        if existing is not None and existing.active:
            raise UserError(f"confidant '{existing.name}' is already registered")
        at = now()
        if existing is not None:  # removed earlier: register again, with a new attestation
            c = existing
            c.active, c.bio, c.languages = True, args.bio or "", ",".join(langs)
            c.attested_by, c.attested_at = attested_by, at
        else:
            c = await tx.confidants.add(name, bio=args.bio or "", languages=langs,
                                        attested_by=attested_by, now=at)
        for channel, address in (("telegram", telegram), ("matrix", matrix),
                                 ("web", new_web_id() if args.web else None)):
            if address is not None:
                await set_channel(tx, c, channel, address)
        channels = await tx.confidants.channels(c)
        await tx.audit.record(actor(), "confidant.added", c.name,
                              f"attested_by={attested_by};channels={','.join(sorted(channels))}")
    print(f"registered confidant {c.name} (languages: {','.join(langs)}; channels: "
          f"{', '.join(sorted(channels)) or 'none yet'})")
    print(f"eligibility attested by {attested_by} on {at.date().isoformat()}")
    if "web" in channels:
        print(f"web console login link: confidant admin token --confidant {_quoted(c.name)}")
    return 0


def _quoted(name: str) -> str:
    """A name as it would be typed in a shell."""
    return f'"{name}"' if re.search(r"[^\w.-]", name) else name


async def confidant_list(args: argparse.Namespace) -> int:
    """Who is registered, on which channels, attested by whom."""
    async with open_store(args) as (_, store), store.tx() as tx:
        rows = []
        for c in await tx.confidants.all(active_only=not args.all):
            channels = ",".join(sorted(await tx.confidants.channels(c))) or "-"
            shifts = len(await tx.rota.shifts(c.id))
            rows.append([c.name, c.languages, channels, str(shifts),
                         f"{c.attested_by} {c.attested_at.date().isoformat()}",
                         "" if c.active else "removed"])
    if not rows:
        print("no confidants registered (add one: confidant admin confidant add)")
        return 0
    print(table(["name", "languages", "channels", "shifts", "attested", ""], rows))
    return 0


async def confidant_remove(args: argparse.Namespace) -> int:
    """Deregister: no more cases or shifts; closed cases keep their history."""
    async with open_store(args) as (_, store), store.tx() as tx:
        c = await confidant_named(tx, args.name)
        shifts = await tx.rota.shifts(c.id)
        for s in shifts:
            await tx.rota.remove_shift(s)
        for a in await tx.rota.absences(c.id):
            await tx.rota.remove_absence(a)
        await tx.confidants.remove(c)
        await tx.audit.record(actor(), "confidant.removed", c.name)
    print(f"removed confidant {c.name} ({len(shifts)} shift(s) dropped; addresses forgotten)")
    return 0


async def confidant_set(args: argparse.Namespace) -> int:
    """Change a confidant's bio, languages or channel addresses."""
    async with open_store(args) as (_, store), store.tx() as tx:
        c = await confidant_named(tx, args.name)
        changed: list[str] = []
        if args.bio is not None:
            c.bio = args.bio
            changed.append("bio")
        if args.languages is not None:
            c.languages = ",".join(languages_arg(args.languages))
            changed.append("languages")
        if args.telegram is not None or args.no_telegram:
            await set_channel(tx, c, "telegram",
                              None if args.no_telegram else telegram_arg(args.telegram))
            changed.append("telegram")
        if args.matrix is not None or args.no_matrix:
            await set_channel(tx, c, "matrix",
                              None if args.no_matrix else matrix_arg(args.matrix))
            changed.append("matrix")
        if args.web is not None:
            has_web = "web" in await tx.confidants.channels(c)
            if args.web and not has_web:
                await set_channel(tx, c, "web", new_web_id())
                changed.append("web")
            elif not args.web and has_web:
                await set_channel(tx, c, "web", None)
                changed.append("web")
        if not changed:
            raise UserError("nothing to change (give --bio, --languages, --telegram, --matrix "
                            "or --web/--no-web)")
        await tx.audit.record(actor(), "confidant.changed", c.name, ",".join(changed))
        channels = sorted(await tx.confidants.channels(c))
    print(f"updated {c.name}: {', '.join(changed)} (channels: {', '.join(channels) or 'none'})")
    return 0


# ------------------------------------------------------------------ rota


async def rota_add(args: argparse.Namespace) -> int:
    """Add a weekly shift after checking it makes sense and collides with nothing."""
    try:
        spec = ShiftSpec(parse_weekday(args.day), parse_time(args.start), parse_time(args.end),
                         args.kind)
    except ParseError as exc:
        raise UserError(str(exc)) from None
    if spec.end <= spec.start:
        raise UserError(f"--end {hhmm(spec.end)} is not after --start {hhmm(spec.start)}")
    async with open_store(args) as (_, store), store.tx() as tx:
        c = await confidant_named(tx, args.confidant)
        for other in await tx.rota.shifts(c.id):
            if overlaps(spec, ShiftSpec(other.weekday, other.start, other.end, other.kind)):
                raise UserError(
                    f"overlaps {c.name}'s {other.kind} shift {WEEKDAY_KEYS[other.weekday]} "
                    f"{hhmm(other.start)}-{hhmm(other.end)} (id {other.id[:8]})"
                )
        s = await tx.rota.add_shift(c, spec.weekday, spec.start, spec.end, spec.kind)
        await tx.audit.record(actor(), "rota.shift_added", c.name,
                              f"{WEEKDAY_KEYS[s.weekday]} {hhmm(s.start)}-{hhmm(s.end)} {s.kind}")
    print(f"added {s.kind} shift {s.id[:8]}: {c.name}, {WEEKDAY_KEYS[s.weekday]} "
          f"{hhmm(s.start)}-{hhmm(s.end)}")
    return 0


async def rota_show(args: argparse.Namespace) -> int:
    """The week's shifts as a table, marking confidants who are absent that day."""
    async with open_store(args) as (config, store), store.tx() as tx:
        tz = ZoneInfo(config.organisation.timezone)
        if args.week:
            try:
                monday = parse_week(args.week)
            except ParseError as exc:
                raise UserError(f"--week: {exc}") from None
        else:
            monday = monday_of(now().astimezone(tz).date())
        people = {c.id: c for c in await tx.confidants.all()}
        if args.confidant:
            c = await confidant_named(tx, args.confidant)
            people = {c.id: c}
        rows = []
        for s in await tx.rota.shifts():
            if s.confidant_id not in people:
                continue
            day = monday + timedelta(days=s.weekday)
            absent = await tx.rota.is_absent(s.confidant_id, day)
            rows.append([WEEKDAY_KEYS[s.weekday], day.isoformat(),
                         f"{hhmm(s.start)}-{hhmm(s.end)}", s.kind, people[s.confidant_id].name,
                         "absent" if absent else "", s.id[:8]])
    print(f"rota for week {week_label(monday)} ({monday.isoformat()} to "
          f"{(monday + timedelta(days=6)).isoformat()}), times in {tz.key}")
    if not rows:
        print("no shifts (add one: confidant admin rota add)")
        return 0
    print(table(["day", "date", "time", "kind", "confidant", "note", "id"], rows))
    return 0


async def rota_remove(args: argparse.Namespace) -> int:
    """Drop one shift by its id (a unique prefix of 4+ characters is enough)."""
    async with open_store(args) as (_, store), store.tx() as tx:
        s = await tx.rota.shift(args.id.strip().lower())
        if s is None:
            raise UserError(f"no single shift has id '{args.id}' (see: confidant admin rota show)")
        c = await tx.confidants.by_id(s.confidant_id)
        who = c.name if c is not None else "?"
        await tx.rota.remove_shift(s)
        await tx.audit.record(actor(), "rota.shift_removed", who,
                              f"{WEEKDAY_KEYS[s.weekday]} {hhmm(s.start)}-{hhmm(s.end)} {s.kind}")
    print(f"removed shift {s.id[:8]}: {who}, {WEEKDAY_KEYS[s.weekday]} "
          f"{hhmm(s.start)}-{hhmm(s.end)} {s.kind}")
    return 0


async def rota_import(args: argparse.Namespace) -> int:
    """Load a whole rota file: all checked first, then written in one transaction."""
    try:
        spec = read_rota_file(Path(args.file))
    except RotaFileError as exc:
        raise UserError(str(exc)) from None
    async with open_store(args) as (_, store), store.tx() as tx:
        try:
            counts = await apply_rota(tx, spec)
        except RotaFileError as exc:
            raise UserError(f"{args.file}: {exc}") from None
        summary = ", ".join(f"{v} {k}" for k, v in counts.items())
        await tx.audit.record(actor(), "rota.imported", "", summary)
    print(f"imported {args.file}: {summary}")
    return 0


async def rota_export(args: argparse.Namespace) -> int:
    """Write the rota in the import shape (to a file or the terminal)."""
    async with open_store(args) as (_, store), store.tx() as tx:
        text = await export_rota(tx)
        await tx.audit.record(actor(), "rota.exported")
    write_output(text, args.file)
    return 0


# ------------------------------------------------------------------ absences


async def absence_add(args: argparse.Namespace) -> int:
    """Mark a confidant away (inclusive dates): no cases or talks on those days."""
    try:
        start, end = parse_date(args.start), parse_date(args.end)
    except ParseError as exc:
        raise UserError(str(exc)) from None
    if end < start:
        raise UserError(f"--to {end} is before --from {start}")
    async with open_store(args) as (_, store), store.tx() as tx:
        c = await confidant_named(tx, args.confidant)
        a = await tx.rota.add_absence(c, start, end)
        await tx.audit.record(actor(), "rota.absence_added", c.name, f"{start} to {end}")
    print(f"added absence {a.id[:8]}: {c.name}, {start} to {end}")
    return 0


async def absence_list(args: argparse.Namespace) -> int:
    """Absences, current and future by default."""
    async with open_store(args) as (config, store), store.tx() as tx:
        today = now().astimezone(ZoneInfo(config.organisation.timezone)).date()
        people = {c.id: c.name for c in await tx.confidants.all()}
        only = (await confidant_named(tx, args.confidant)).id if args.confidant else None
        rows = [[people[a.confidant_id], a.start_date.isoformat(), a.end_date.isoformat(),
                 a.id[:8]]
                for a in await tx.rota.absences(only)
                if a.confidant_id in people and (args.all or a.end_date >= today)]
    if not rows:
        print("no absences")
        return 0
    print(table(["confidant", "from", "to", "id"], rows))
    return 0


async def absence_remove(args: argparse.Namespace) -> int:
    """Cancel an absence by id (unique prefix of 4+ characters)."""
    async with open_store(args) as (_, store), store.tx() as tx:
        a = await tx.rota.absence(args.id.strip().lower())
        if a is None:
            raise UserError(f"no single absence has id '{args.id}' (see: confidant admin "
                            "absence list)")
        c = await tx.confidants.by_id(a.confidant_id)
        who = c.name if c is not None else "?"
        await tx.rota.remove_absence(a)
        await tx.audit.record(actor(), "rota.absence_removed", who,
                              f"{a.start_date} to {a.end_date}")
    print(f"removed absence {a.id[:8]}: {who}, {a.start_date} to {a.end_date}")
    return 0


# ------------------------------------------------------------------ rooms


async def room_add(args: argparse.Namespace) -> int:
    """Register a discreet room for in-person talks."""
    name = name_arg(args.name)
    async with open_store(args) as (_, store), store.tx() as tx:
        room = await tx.rota.room_by_name(name)
        if room is not None and room.active:
            raise UserError(f"room '{name}' already exists")
        if room is not None:
            room.active, room.site, room.notes = True, args.site or "", args.notes or ""
        else:
            room = await tx.rota.add_room(name, args.site or "", args.notes or "")
        await tx.audit.record(actor(), "room.added", name)
    print(f"added room {name}" + (f" ({room.site})" if room.site else ""))
    return 0


async def room_list(args: argparse.Namespace) -> int:
    """The rooms talks can be booked in."""
    async with open_store(args) as (_, store), store.tx() as tx:
        rows = [[r.name, r.site, r.notes.replace("\n", " ")] for r in await tx.rota.rooms()]
    if not rows:
        print("no rooms (add one: confidant admin room add)")
        return 0
    print(table(["name", "site", "notes"], rows))
    return 0


async def room_remove(args: argparse.Namespace) -> int:
    """Stop offering a room (booked talks keep their history)."""
    async with open_store(args) as (_, store), store.tx() as tx:
        room = await tx.rota.room_by_name(args.name.strip())
        if room is None or not room.active:
            raise UserError(f"no room named '{args.name}' (see: confidant admin room list)")
        room.active = False
        await tx.audit.record(actor(), "room.removed", room.name)
    print(f"removed room {room.name}")
    return 0


# ------------------------------------------------------------------ token, register


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
    """A one-time web-console login link; gives the confidant a console identity if needed."""
    async with open_store(args) as (config, store), store.tx() as tx:
        c = await confidant_named(tx, args.confidant)
        added = "web" not in await tx.confidants.channels(c)
        if added:
            await set_channel(tx, c, "web", new_web_id())
        secret = await tx.confidants.new_login_token(c, now())
        await tx.audit.record(actor(), "console.token_issued", c.name,
                              "web address added" if added else "")
    if not config.web.enabled:
        print("note: the web channel is disabled in the config ([web] enabled = false)",
              file=sys.stderr)
    if added:
        print(f"{c.name} had no web console access; it is now enabled", file=sys.stderr)
    print(f"{console_base(config)}/console/login?token={secret}")
    print("valid once, for 24 hours; give it to the confidant only", file=sys.stderr)
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

    tok = groups.add_parser("token", parents=[common],
                            help="one-time web console login link for a confidant")
    tok.add_argument("--confidant", required=True, metavar="NAME")
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


def rota_reason(exc: RotaError) -> str:
    """A sentence for the store's short rota error codes."""
    return _ROTA_REASONS.get(str(exc), f"rota change refused ({exc})")
