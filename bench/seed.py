"""Filling a bot's database before a run: the benchmark's employees with a
waiting case each (claimed later by their confidant, in chat), and bulk
history (open and closed cases of other people) sealed exactly like rows the
bot writes, so the scale run measures the real indexes on a big store."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, create_engine, insert, select, update
from sqlalchemy.engine import make_url

from store.cases import new_case_code
from store.crypto import Crypto, load_master_key
from store.models import (
    Case,
    Contact,
    DataKey,
    MessageLink,
    OutboxMessage,
    new_id,
)
from store.vault import associated_data
from tests.support.app_runner import BotSetup


async def seed_employees(setup: BotSetup, employee_ids: Sequence[int | str],
                         confidant_ids: Sequence[str], language: str = "en",
                         channel: str = "telegram", claimed: bool = False) -> list[str]:
    """A welcomed contact and a waiting case per employee, each case meant for
    one confidant (round robin), as ``/talk`` → a named confidant leaves it
    (with ``claimed``, already claimed by that confidant, as ``/claim``
    leaves it).  Returns the case codes in employee order."""
    codes: list[str] = []
    now = datetime.now(UTC)
    async with setup.store() as store, store.tx() as tx:
        for i, emp in enumerate(employee_ids):
            contact = await tx.contacts.create(channel, str(emp), str(emp), language, now)
            contact.welcomed = True
            confidant = confidant_ids[i % len(confidant_ids)]
            case = await tx.cases.create(contact, channel=channel, language=language,
                                         chosen_confidant_id=confidant,
                                         now=now, deadline=now + timedelta(days=10))
            case.announced_at = now  # the confidant was told; the bench does not time that
            contact.active_case_id = case.id
            if claimed:
                await tx.session.flush()
                await tx.cases.claim(case, confidant, now)
            codes.append(case.code)
    return codes


async def count_open(setup: BotSetup, codes: Sequence[str]) -> int:
    """How many of these cases a confidant has claimed."""
    async with setup.store() as store, store.tx() as tx:
        rows = await tx.session.scalars(select(Case.status).where(Case.code.in_(list(codes))))
        return sum(1 for s in rows.all() if s == "open")


def _sealed_key(crypto: Crypto, purpose: str, now: datetime) -> tuple[dict[str, object], bytes]:
    """A data-key row (wrapped by the master key) and the plain key."""
    key_id = new_id()
    key = crypto.new_data_key()
    return ({"id": key_id, "wrapped": crypto.wrap(key_id, key), "purpose": purpose,
             "created_at": now}, key)


@dataclass
class SeedTiming:
    """How long filling the big store took, and how big it came out."""

    open_cases: int = 0
    closed_cases: int = 0
    seconds: float = 0.0
    db_bytes: int = 0


async def seed_history(setup: BotSetup, open_cases: int, closed_cases: int,
                       confidant_ids: Sequence[str], *, chunk: int = 20_000) -> None:
    """``open_cases`` people with an open claimed case and ``closed_cases``
    closed cases spread over the same people, with one delivered (bare)
    outbox row and one reply link per closed case, as months of use leave
    them.  Every address is hashed and sealed with its own data key.

    Bulk inserts (``executemany`` of Core statements on one synchronous
    connection in a worker thread, a transaction per chunk), with foreign
    keys checked at each commit rather than per row, so that a million
    cases take minutes."""
    crypto = Crypto(load_master_key(setup.key_path))
    url = make_url(setup.db_url)
    if url.get_backend_name() == "sqlite":
        url = url.set(drivername="sqlite")
    else:
        url = url.set(drivername="postgresql+asyncpg")
    if url.drivername != "sqlite":
        async with setup.store() as store, store.tx() as tx:
            used = set((await tx.session.scalars(select(Case.code))).all())
            conn = await tx.session.connection()
            for batch in _history(crypto, open_cases, closed_cases, confidant_ids, chunk, used):
                for table, rows in batch:
                    await conn.run_sync(_insert, table, rows)
        return
    await asyncio.to_thread(_seed_sqlite, str(url), crypto, open_cases, closed_cases,
                            list(confidant_ids), chunk)


def _seed_sqlite(url: str, crypto: Crypto, open_cases: int, closed_cases: int,
                 confidant_ids: list[str], chunk: int) -> None:
    """`seed_history` on SQLite, in a worker thread."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode = WAL")
            conn.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MiB while seeding
            conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            used = set(conn.execute(select(Case.code)).scalars().all())
            conn.commit()
            for batch in _history(crypto, open_cases, closed_cases, confidant_ids, chunk, used):
                for table, rows in batch:
                    _insert(conn, table, rows)
                conn.commit()
    finally:
        engine.dispose()


def _insert(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """One ``executemany``; contacts go in without their open case (which
    refers back to them) and get it in a second ``executemany`` by id, so no
    foreign key is ever left dangling (a deferred check would scan contacts
    for every case inserted)."""
    if not rows:
        return
    if table is not Contact:
        conn.execute(insert(table), rows)
        if table is Case:
            _link_open_cases(conn)
        return
    conn.execute(insert(table), [{**r, "active_case_id": None} for r in rows])
    pending = [{"cid": r["id"], "case": r["active_case_id"]} for r in rows
               if r["active_case_id"]]
    if pending:
        conn.info.setdefault("bench_pending_links", []).extend(pending)


def _link_open_cases(conn: Any) -> None:
    """Set each seeded contact's open case, once the cases exist."""
    pending = conn.info.pop("bench_pending_links", [])
    if pending:
        conn.execute(update(Contact).where(Contact.id == bindparam("cid"))
                     .values(active_case_id=bindparam("case")), pending)


def _history(crypto: Crypto, open_cases: int, closed_cases: int,
             confidant_ids: Sequence[str], chunk: int, used_codes: set[str]
             ) -> Iterator[list[tuple[Any, list[dict[str, Any]]]]]:
    """The rows of `seed_history`, one transaction's worth at a time, in
    insertion order (tables, each with its rows)."""
    now = datetime.now(UTC)
    people = max(open_cases, 1)

    def code() -> str:
        while True:
            c = new_case_code()
            if c not in used_codes:
                used_codes.add(c)
                return c

    contact_ids: list[str] = []
    for start in range(0, people, chunk):
        keys, contacts, cases = [], [], []
        for i in range(start, min(people, start + chunk)):
            user = str(5_000_000_000 + i)
            cid, case_id = new_id(), new_id()
            contact_ids.append(cid)
            key_row, key = _sealed_key(crypto, "contact", now)
            keys.append(key_row)
            is_open = i < open_cases
            contacts.append({
                "id": cid, "channel": "telegram",
                "address_hash": crypto.address_hash("telegram", user),
                "sender_enc": crypto.seal(key, user.encode(),
                                          associated_data("contacts.sender_enc", cid)),
                "address_enc": crypto.seal(key, user.encode(),
                                           associated_data("contacts.address_enc", cid)),
                "data_key_id": key_row["id"], "language": "en", "welcomed": True,
                "active_case_id": case_id if is_open else None, "pending": None,
                "pending_enc": None, "created_at": now, "last_seen_at": now,
            })
            if is_open:
                case_key, _ = _sealed_key(crypto, "case", now)
                keys.append(case_key)
                opened = now - timedelta(hours=secrets.randbelow(24 * 9))
                row = _case_row(case_id, code(), cid, str(case_key["id"]), "open",
                                confidant_ids[i % len(confidant_ids)], opened)
                row["heard_at"] = opened + timedelta(hours=1)  # first talk held in time
                cases.append(row)
        # Contacts and their open cases refer to each other: both go in one
        # transaction, the foreign keys are checked at its commit.
        yield [(DataKey, keys), (Contact, contacts), (Case, cases)]
    for start in range(0, closed_cases, chunk):
        keys, cases, outbox, links = [], [], [], []
        for i in range(start, min(closed_cases, start + chunk)):
            case_id = new_id()
            key_row, _ = _sealed_key(crypto, "case", now)
            keys.append(key_row)
            opened = now - timedelta(days=1 + secrets.randbelow(80))
            row = _case_row(case_id, code(), contact_ids[i % len(contact_ids)],
                            str(key_row["id"]), "closed", confidant_ids[i % len(confidant_ids)],
                            opened)
            row.update(closed_at=opened + timedelta(days=5), theme="stress",
                       heard_at=opened + timedelta(days=2))
            cases.append(row)
            sent = opened + timedelta(days=1)
            outbox.append({"ref": new_id(), "channel": "telegram",
                           "recipient_hash": crypto.address_hash("telegram", str(i % 97)),
                           "recipient_enc": None, "payload_enc": None,
                           "data_key_id": key_row["id"], "case_id": case_id, "status": "sent",
                           "attempts": 0, "next_attempt_at": sent, "created_at": sent,
                           "sent_at": sent})
            links.append({"channel": "telegram",
                          "chat_hash": crypto.address_hash("telegram", str(i % 97)),
                          "platform_message_id": str(1_000_000 + i), "case_id": case_id,
                          "created_at": sent})
        yield [(DataKey, keys), (Case, cases), (OutboxMessage, outbox), (MessageLink, links)]


def _case_row(case_id: str, code: str, contact_id: str, key_id: str, status: str,
              confidant_id: str, opened: datetime) -> dict[str, object]:
    """The columns of a claimed case as the bot leaves them."""
    return {
        "id": case_id, "code": code, "contact_id": contact_id, "data_key_id": key_id,
        "status": status, "channel": "telegram", "language": "en",
        "chosen_confidant_id": None, "confidant_id": confidant_id, "urgent": False,
        "unreachable": False, "theme": None, "opened_at": opened,
        "deadline_at": opened + timedelta(days=10), "claimed_at": opened,
        "heard_at": None, "closed_at": None, "last_activity_at": opened,
        "announced_at": opened, "escalated_at": None, "deadline_reminded_at": None,
        "confirmation_requested_at": None,
    }
