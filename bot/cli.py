"""The ``confidant`` command (also ``python -m bot``): run, set up and administer the bot.

`main` parses the arguments, runs one command and turns every problem an
operator can fix into one line and exit code 1 (argparse usage errors exit
2); a traceback is never the answer.  The flags are the contract in
DESIGN.md ("CLI").
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.cli_admin import add_admin_parser
from bot.cli_common import (
    UserError,
    actor,
    config_path,
    ensure_migrated,
    open_service,
    shown_url,
    write_output,
)
from bot.cli_report import (
    render_csv,
    render_json,
    render_markdown,
)
from bot.config import (
    Config,
    ConfigError,
    check_config,
    check_config_async,
    load_config,
    runtime_problems,
)
from domain.parsing import ParseError, parse_date, parse_month
from handlers.administration.problems import AdminError
from store.audit import AuditRepo
from store.crypto import Crypto, DecryptError, KeyFileError, create_key_file, load_master_key
from store.db import UnsupportedDatabaseError, create_engine, session_factory
from store.keyring import KeyringError, RotationError, check_master, rotate_key_file
from store.migrate import current_revision, head_revision, upgrade

log = logging.getLogger("confidant.cli")

# ------------------------------------------------------------------ commands


async def cmd_run(args: argparse.Namespace) -> int:
    """Start every enabled channel, but only on a configuration that fully checks out."""
    config = load_config(config_path(args))
    problems = await runtime_problems(config)
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        return 1
    _setup_logging(config.logging.level)
    run_app = cast(Callable[[Config], Awaitable[None]], _late("bot.app", "run_app"))
    await run_app(config)
    return 0


async def cmd_demo(args: argparse.Namespace) -> int:
    """Run on the embedded default (SQLite and the web chat) to try the bot at once."""
    _setup_logging("INFO")
    run_demo = cast(Callable[[Path], Awaitable[None]], _late("bot.demo", "run_demo"))
    await run_demo(Path(args.data_dir))
    return 0


async def cmd_check_config(args: argparse.Namespace) -> int:
    """Print every problem of the config, one line each, so all can be fixed in one pass."""
    path = config_path(args)
    problems = await check_config_async(path)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    print(f"{path}: ok")
    return 0


async def cmd_init(args: argparse.Namespace) -> int:
    """Create the key file and a migrated database; safe to run again at any time."""
    path = config_path(args)
    problems = check_config(path, check_runtime=False)
    if problems:
        raise ConfigError(problems)
    config = load_config(path)
    key_file = config.store.key_file
    if create_key_file(key_file):
        print(f"created master key file {key_file} (mode 0600); back it up safely, "
              "apart from the database")
    else:
        print(f"kept existing master key file {key_file}")
    key = load_master_key(key_file)  # refuses a file others can read
    before = await current_revision(config.store.url)
    await upgrade(config.store.url)
    after = head_revision()
    url = shown_url(config.store.url)
    if before is None:
        print(f"created database {url} (revision {after})")
    elif before != after:
        print(f"migrated database {url} from revision {before} to {after}")
    else:
        print(f"database {url} is up to date (revision {after})")
    engine = create_engine(config.store.url)
    try:
        async with session_factory(engine).begin() as session:
            await check_master(session, Crypto(key))
    finally:
        await engine.dispose()
    return 0


async def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database schema to this version's revision."""
    config = load_config(config_path(args))
    before = await current_revision(config.store.url)
    await upgrade(config.store.url)
    after = head_revision()
    url = shown_url(config.store.url)
    if before == after:
        print(f"database {url} is up to date (revision {after})")
    else:
        print(f"migrated database {url} from revision {before or 'empty'} to {after}")
    return 0


async def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Replace the master key: every data key re-wrapped, address hashes recomputed,
    then the key file swapped; resumable after a crash."""
    config = load_config(config_path(args))
    key_file = config.store.key_file
    await ensure_migrated(config.store.url)
    old = load_master_key(key_file)
    engine = create_engine(config.store.url)
    try:
        sessions = session_factory(engine)
        resuming = key_file.with_name(key_file.name + ".new").exists()
        if not resuming:  # mid-rotation the check value may already be the new key's
            async with sessions.begin() as session:
                await check_master(session, Crypto(old))
        await rotate_key_file(key_file, sessions)
        async with sessions.begin() as session:
            await AuditRepo(session).record(actor(), "keys.rotated")
    finally:
        await engine.dispose()
    print(f"master key rotated{' (resumed)' if resuming else ''}: data keys re-wrapped, "
          f"address hashes recomputed, {key_file} replaced; back up the new key file")
    return 0


def _report_date(value: str, what: str, end: bool) -> date:
    """A date, or a month (``YYYY-MM``) meaning its first (or last) day."""
    try:
        first = parse_month(value)
    except ParseError:
        try:
            return parse_date(value)
        except ParseError:
            raise UserError(f"{what}: '{value.strip()}' is not a date "
                            "(write YYYY-MM-DD or YYYY-MM)") from None
    if not end:
        return first
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


async def cmd_report(args: argparse.Namespace) -> int:
    """Anonymous statistics per month, theme and channel, small counts masked."""
    start = _report_date(args.start, "--from", end=False)
    end = _report_date(args.end, "--to", end=True)
    if end < start:
        raise UserError(f"--to {end} is before --from {start}")
    async with open_service(args) as (_, svc):
        report = await svc.report_table(start, end, audit_kind="report.printed")
    if args.format == "csv":
        text = render_csv(report)
    elif args.format == "json":
        text = render_json(report, start, end)
    else:
        text = render_markdown(report, start, end)
    write_output(text, args.output)
    return 0


# ------------------------------------------------------------------ helpers


def _late(module: str, name: str) -> Any:
    """Import the app only when it runs, so set-up commands work without it."""
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise UserError(f"this installation has no {module} ({name} is not available)") from None


def _setup_logging(level: str) -> None:
    """Logging as `bot.logs` configures it (JSON lines, chatty libraries turned
    down); plain lines on stderr if that module is missing."""
    try:
        setup = importlib.import_module("bot.logs").setup_logging
    except (ModuleNotFoundError, AttributeError):
        logging.basicConfig(level=level, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return
    setup(level)


def _db_reason(exc: SQLAlchemyError | OSError) -> str:
    """One line about a database failure, without the driver's message (it may
    hold values or a password)."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or type(exc).__name__}"
    if isinstance(exc, IntegrityError):
        return "the change conflicts with existing data (a name or entry already exists?)"
    inner = getattr(exc, "orig", None) or exc
    return f"database error ({type(inner).__name__}); check store.url and that the " \
           "database is running (confidant check-config)"


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; ``--config`` works before or after the command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="config file (default: $CONFIDANT_CONFIG, then ./config.toml)")
    parser = argparse.ArgumentParser(
        prog="confidant",
        description="Anonymous first-line contact with a workplace confidant "
        "(vertrouwenspersoon / personne de confiance) over Telegram, Matrix and the web.",
    )
    parser.add_argument("--config", metavar="PATH", default=None,
                        help="config file (default: $CONFIDANT_CONFIG, then ./config.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", parents=[common],
                         help="run all enabled channels until SIGTERM/SIGINT")
    run.set_defaults(func=cmd_run)
    demo = sub.add_parser("demo", help="try the bot: SQLite, web chat on 127.0.0.1:8080, "
                          "a demo confidant and rota")
    demo.add_argument("--data-dir", default="confidant-data", metavar="DIR",
                      help="where the demo keeps its data (default: ./confidant-data)")
    demo.set_defaults(func=cmd_demo)
    check = sub.add_parser("check-config", parents=[common],
                           help="validate the config; print every problem; exit 1 if any")
    check.set_defaults(func=cmd_check_config)
    init = sub.add_parser("init", parents=[common],
                          help="create the key file and the database (idempotent)")
    init.set_defaults(func=cmd_init)
    migrate = sub.add_parser("migrate", parents=[common], help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="master key management")
    keys_sub = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    rotate = keys_sub.add_parser(
        "rotate", parents=[common], help="replace the master key (stop the bot first)",
        description="Generate a new master key, re-wrap every data key and recompute the "
        "address hashes under it, then swap the key file. Stop the bot first. If it is "
        "interrupted, run it again: it resumes.")
    rotate.set_defaults(func=cmd_keys_rotate)

    add_admin_parser(sub, common)

    report = sub.add_parser(
        "report", parents=[common], help="anonymous statistics (counts below 3 shown as <3)",
        description="Counts of cases per month of first contact, by theme and by channel, "
        "and how many were heard within 10 days. Every count below 3 is shown as <3.")
    report.add_argument("--from", dest="start", required=True, metavar="DATE",
                        help="YYYY-MM-DD or YYYY-MM")
    report.add_argument("--to", dest="end", required=True, metavar="DATE",
                        help="YYYY-MM-DD or YYYY-MM (inclusive)")
    report.add_argument("--format", choices=("csv", "markdown", "json"), default="markdown")
    report.add_argument("--output", metavar="FILE", help="default: print")
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 user error, 2 bad usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return asyncio.run(args.func(args))
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        lines = exc.problems or ["configuration error"]
        if args.command in ("run", "check-config", "init"):
            for line in lines:
                print(line, file=sys.stderr)
        else:
            more = f" (and {len(lines) - 1} more: run confidant check-config)" \
                if len(lines) > 1 else ""
            print(lines[0] + more, file=sys.stderr)
    except UserError as exc:
        print(str(exc), file=sys.stderr)
    except (AdminError, KeyFileError, ParseError, UnsupportedDatabaseError) as exc:
        print(str(exc), file=sys.stderr)
    except RotationError as exc:
        print(f"key rotation stopped, key file not replaced: {exc}", file=sys.stderr)
    except KeyringError as exc:
        print(str(exc) or type(exc).__name__, file=sys.stderr)
    except DecryptError:
        print("stored data does not open with this key file (wrong key file?)", file=sys.stderr)
    except (SQLAlchemyError, OSError) as exc:
        print(_db_reason(exc), file=sys.stderr)
    return 1


__all__ = ["build_parser", "main"]
