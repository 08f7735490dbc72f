"""The outbox: every cross-person message, sealed, until a channel confirms it.

Rows are written in the transaction that handles the inbound event, so a
crash can never lose a message that the sender was told about.  After
delivery the recipient and payload ciphertexts are deleted; only the bare
row (channel, time, status) remains until it is purged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar, cast

from sqlalchemy import (
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnClause

from domain.ids import CaseCode, ChannelName
from domain.messages import Button, ChannelAddress, Media, Menu, Outbound, OutboundKind
from domain.vocabulary import Control, Role
from store.driver import inline, sqlite_time
from store.models import OutboxMessage, new_id
from store.vault import Vault

E = TypeVar("E", bound=StrEnum)

_OUTBOX = cast(Table, OutboxMessage.__table__)
"""The table itself, for plain Core statements on the hot path."""


def encode_outbound(out: Outbound) -> bytes:
    """The sealed payload of an outbox row.

    The shape is the one written before roles and controls had types (the
    recipient's role under ``extra``), so that a release and the one before
    it each read the rows the other wrote; the cases a message is about are
    under ``extra`` too, and only when there are any."""
    data: dict[str, Any] = {
        "text": out.text,
        "kind": out.kind.value,
        "case": out.case,
        "control": out.control.value if out.control else None,
        "extra": {"role": out.role.value} if out.role else {},
    }
    if out.about:
        # Under ``extra``, which the release before reads past.
        data["extra"]["about"] = list(out.about)
    if out.menu is not None:
        data["menu"] = [[[b.label, b.token] for b in row] for row in out.menu.rows]
    if out.media is not None:
        m = out.media
        data["media"] = {
            "kind": m.kind, "filename": m.filename, "mime_type": m.mime_type,
            "caption": m.caption, "data": base64.b64encode(m.data).decode(),
        }
    return json.dumps(data, ensure_ascii=False).encode()


def _member(kind: type[E], value: object) -> E | None:
    """A stored value as its enum member; None for none, or for a value this
    release does not know (the message is still delivered, as a plain one)."""
    try:
        return kind(str(value)) if value else None
    except ValueError:
        return None


def _codes(value: object) -> tuple[CaseCode, ...]:
    """The stored ``about`` list as case codes; anything else as none."""
    if not isinstance(value, list):
        return ()
    return tuple(CaseCode(code) for code in value if isinstance(code, str) and code)


def decode_outbound(to: ChannelAddress, payload: bytes) -> Outbound:
    """Read a payload written by `encode_outbound`, of this release or an earlier one."""
    data = json.loads(payload)
    extra = data.get("extra") or {}
    menu = None
    if data.get("menu"):
        menu = Menu(rows=tuple(tuple(Button(label=lbl, token=tok) for lbl, tok in row)
                               for row in data["menu"]))
    media = None
    if data.get("media"):
        m = data["media"]
        media = Media(kind=m["kind"], data=base64.b64decode(m["data"]), filename=m["filename"],
                      mime_type=m["mime_type"], caption=m["caption"])
    return Outbound(
        to=to, text=data["text"], menu=menu, media=media, kind=OutboundKind(data["kind"]),
        case=CaseCode(data["case"]) if data.get("case") else None,
        control=_member(Control, data.get("control")), role=_member(Role, extra.get("role")),
        about=_codes(extra.get("about")),
    )


_PENDING: ColumnClause[str] = literal_column("'pending'", String)
"""The status compared as a constant in the SQL, not a parameter: PostgreSQL
can then use the partial pending index (0002) in a generic plan of a
prepared statement too, and that index is the only one by recipient (0006)."""

_FRESH_KEY = "outbox.fresh"
_HELD_KEY = "outbox.send_order_locks"
_SEND_ORDER_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def send_order_lock_key(recipient_hash: bytes) -> int:
    """The 64-bit advisory-lock key of one recipient: the first eight bytes of
    their keyed address hash, as PostgreSQL's signed bigint."""
    return int.from_bytes(recipient_hash[:8], "big", signed=True)
_EARLIER = _OUTBOX.alias("earlier")
# SQLAlchemy does not correlate a subquery in RETURNING with the row being
# inserted, so the new row's seq is named as the database sees it.
_OLDER = (select(func.count()).select_from(_EARLIER)
          .where(_EARLIER.c.recipient_hash == bindparam("older_hash"),
                 _EARLIER.c.status == _PENDING,
                 _EARLIER.c.seq < literal_column("outbox.seq"))
          .scalar_subquery())
_ENQUEUE = insert(_OUTBOX).returning(_OUTBOX.c.seq, _OLDER)
"""Insert one row, and count the older rows still pending for its recipient;
built once, the values come as parameters."""
_ENQUEUE_SQLITE = (
    "INSERT INTO outbox (ref, channel, recipient_hash, recipient_enc, payload_enc, "
    "data_key_id, case_id, status, attempts, next_attempt_at, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) "
    "RETURNING seq, (SELECT count(*) FROM outbox AS earlier WHERE earlier.recipient_hash = ? "
    "AND earlier.status = 'pending' AND earlier.seq < outbox.seq)")
_MARK_SENT = (update(_OUTBOX).where(_OUTBOX.c.seq == bindparam("the_seq"))
              .values(status="sent", sent_at=bindparam("now"), recipient_enc=None,
                      payload_enc=None))
_MARK_SENT_SQLITE = ("UPDATE outbox SET status = 'sent', sent_at = ?, recipient_enc = NULL, "
                     "payload_enc = NULL WHERE seq = ?")


@dataclass(frozen=True, slots=True)
class DueMessage:
    seq: int
    ref: str
    channel: str
    case_id: str | None
    attempts: int
    recipient_hash: bytes


@dataclass(frozen=True, slots=True)
class _Fresh:
    """A row inserted by this transaction, as the fast lane needs it."""

    due: DueMessage
    due_at: datetime
    waiting: int
    """Pending rows for the recipient older than this one, when it was inserted."""
    to: ChannelAddress
    encoded: bytes


class OutboxRepo:
    def __init__(self, session: AsyncSession, vault: Vault) -> None:
        self._s = session
        self._v = vault

    async def enqueue(self, out: Outbound, key_id: str, case_id: str | None, now: datetime,
                      not_before: datetime | None = None) -> str:
        """Seal and insert one message; the same statement tells how many
        older messages still wait for its recipient, so `fresh_rows` can
        hand it to the fast lane without asking again."""
        ref = new_id()
        recipient_hash = self._v.address_hash(out.to.channel, out.to.address)
        await self._hold_send_order([recipient_hash])
        encoded = encode_outbound(out)
        due_at = max(now, not_before) if not_before else now
        recipient_enc = await self._v.seal(key_id, out.to.address, "outbox.recipient_enc", ref)
        payload_enc = await self._v.seal(key_id, encoded, "outbox.payload_enc", ref)
        db = await inline(self._s)
        if db is not None:  # once per message: plain SQL (see store.driver)
            cursor = await db.run(_ENQUEUE_SQLITE, (
                ref, out.to.channel, recipient_hash, recipient_enc, payload_enc, key_id,
                case_id, sqlite_time(due_at), sqlite_time(now), recipient_hash))
            seq, waiting = cursor.fetchall()[0]
        else:
            conn = await self._s.connection()
            seq, waiting = (await conn.execute(_ENQUEUE, {
                "ref": ref, "channel": out.to.channel, "recipient_hash": recipient_hash,
                "recipient_enc": recipient_enc, "payload_enc": payload_enc,
                "data_key_id": key_id, "case_id": case_id, "status": "pending", "attempts": 0,
                "next_attempt_at": due_at, "created_at": now, "older_hash": recipient_hash,
            })).one()
        self._fresh().append(_Fresh(DueMessage(seq, ref, out.to.channel, case_id, 0,
                                               recipient_hash),
                                    due_at, int(waiting), out.to, encoded))
        return ref

    async def hold_send_order(self, recipients: Iterable[ChannelAddress]) -> None:
        """Take the send-order locks of everyone a transaction is about to
        write to, all at once and in key order (see `_hold_send_order`);
        `enqueue` takes any that are missing itself."""
        await self._hold_send_order(
            [self._v.address_hash(to.channel, to.address) for to in recipients])

    async def _hold_send_order(self, recipient_hashes: Collection[bytes]) -> None:
        """Keep send order across concurrent transactions: the one place that
        serialises the writers of each recipient's outbox rows.

        A row's ``seq`` is drawn when it is inserted, but it becomes visible
        when its transaction commits.  Were two transactions for one person
        to commit out of order on PostgreSQL, the delivery worker would see
        the younger row alone, take it for the head of the queue and send it
        before the older one.  So a transaction that writes rows for a
        recipient first takes a transaction-scoped advisory lock on them
        (`send_order_lock_key`): the next writer waits for its commit, draws
        a later ``seq`` and counts the committed rows as older.  Each lock is
        taken once per transaction, and all of a transaction's recipients
        named together are locked in key order, so two writers of the same
        people do not wait on each other in a circle (should a later write
        close one, PostgreSQL breaks it and the event is retried as
        transient).

        SQLite needs nothing: the store keeps one connection (`store.db`), so
        one transaction runs at a time, and SQLite's single writer lock is
        held from the first write to the commit; rows commit in ``seq`` order.
        """
        if self._s.get_bind().dialect.name != "postgresql":
            return
        transaction = self._s.sync_session.get_transaction()
        mark, held = self._s.info.get(_HELD_KEY, (None, set()))
        if mark is not transaction:  # a session may run one transaction after another
            held = set()
            self._s.info[_HELD_KEY] = (transaction, held)
        for key in sorted({send_order_lock_key(h) for h in recipient_hashes} - held):
            await self._s.execute(_SEND_ORDER_LOCK, {"key": key})
            held.add(key)

    def _fresh(self) -> list[_Fresh]:
        """Rows this transaction inserted, shared by every repository on the
        session (a case's erasure uses its own)."""
        found: list[_Fresh] = self._s.info.setdefault(_FRESH_KEY, [])
        return found

    def _forget_fresh(self) -> None:
        """Rows of this transaction may have changed: none goes by the fast
        lane; the delivery worker's passes read them as stored."""
        self._s.info.pop(_FRESH_KEY, None)

    async def due(self, now: datetime, limit: int = 50) -> list[DueMessage]:
        """The oldest pending message of each recipient whose time has come.

        Only the head of each recipient's queue is returned, so messages to
        one person go out strictly in order even when one of them is retried.
        """
        earlier = aliased(OutboxMessage)
        # An earlier row blocks a later one while it is due or being retried;
        # a row held back for a shift (never tried, not yet due) does not, so
        # a confidant's own commands are answered at once.
        head = ~select(earlier.seq).where(
            and_(earlier.recipient_hash == OutboxMessage.recipient_hash,
                 earlier.status == _PENDING, earlier.seq < OutboxMessage.seq,
                 or_(earlier.next_attempt_at <= now, earlier.attempts > 0))
        ).exists()
        rows = await self._s.execute(
            select(OutboxMessage.seq, OutboxMessage.ref, OutboxMessage.channel,
                   OutboxMessage.case_id, OutboxMessage.attempts, OutboxMessage.recipient_hash)
            .where(OutboxMessage.status == _PENDING, OutboxMessage.next_attempt_at <= now, head)
            .order_by(OutboxMessage.seq)
            .limit(limit)
        )
        return [DueMessage(*r) for r in rows.all()]

    async def waiting_behind(self, heads: list[tuple[bytes, int]]) -> set[bytes]:
        """Of these (recipient, head seq) pairs, the recipients with another
        pending message after their head.

        The status is asked in each branch: SQLite then reads each
        recipient's rows from the partial pending index (0002), where the
        status asked once outside the ``OR`` made it read every pending row."""
        if not heads:
            return set()
        rows = await self._s.scalars(
            select(OutboxMessage.recipient_hash).distinct().where(
                or_(*(and_(OutboxMessage.status == _PENDING,
                           OutboxMessage.recipient_hash == recipient, OutboxMessage.seq > seq)
                      for recipient, seq in heads))))
        return {bytes(h) for h in rows.all()}

    async def release(self, recipient_hash: bytes, now: datetime) -> None:
        """Messages held back for a shift go out now (the confidant is here)."""
        self._forget_fresh()
        await self._s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.recipient_hash == recipient_hash,
                   OutboxMessage.status == _PENDING, OutboxMessage.attempts == 0,
                   OutboxMessage.next_attempt_at > now)
            .values(next_attempt_at=now))

    async def held_for(self, recipient_hash: bytes, now: datetime) -> int:
        """How many messages wait for this recipient's next shift."""
        return int(await self._s.scalar(
            select(func.count()).select_from(OutboxMessage)
            .where(OutboxMessage.recipient_hash == recipient_hash,
                   OutboxMessage.status == _PENDING, OutboxMessage.attempts == 0,
                   OutboxMessage.next_attempt_at > now)) or 0)

    async def next_due_at(self, exclude: Collection[int] = (),
                          look_ahead: int = 16) -> datetime | None:
        """When the next pending row falls due, not counting ``exclude`` (rows
        already on their way, so the worker does not wake for them).

        ``exclude`` is read after the query has run, so a live set also skips
        rows claimed while this transaction waited for its turn; if every row
        looked at is excluded, the answer is "soon" (a pass will tell).
        """
        rows = (await self._s.execute(
            select(OutboxMessage.seq, OutboxMessage.next_attempt_at)
            .where(OutboxMessage.status == _PENDING)
            .order_by(OutboxMessage.next_attempt_at)
            .limit(look_ahead))).all()
        for seq, at in rows:
            if seq not in exclude:
                return at
        if len(rows) == look_ahead:
            return min(at for _, at in rows)
        return None

    async def load(self, seq: int) -> Outbound | None:
        row = await self._s.get(OutboxMessage, seq)
        if row is None or row.status != "pending" or row.payload_enc is None:
            return None
        assert row.recipient_enc is not None
        address = await self._v.open_text(row.data_key_id, row.recipient_enc,
                                          "outbox.recipient_enc", row.ref)
        payload = await self._v.open(row.data_key_id, row.payload_enc, "outbox.payload_enc",
                                     row.ref)
        return decode_outbound(ChannelAddress(ChannelName(row.channel), address), payload)

    async def mark_sent(self, seq: int, now: datetime) -> None:
        """On the table, not the mapped class: once per message sent, and the
        sessions that record outcomes hold no outbox objects to keep in step."""
        db = await inline(self._s)
        if db is not None:  # once per message: plain SQL (see store.driver)
            await db.run(_MARK_SENT_SQLITE, (sqlite_time(now), seq))
            return
        conn = await self._s.connection()
        await conn.execute(_MARK_SENT, {"the_seq": seq, "now": now})

    async def retry(self, seq: int, at: datetime) -> None:
        await self._s.execute(
            update(OutboxMessage).where(OutboxMessage.seq == seq)
            .values(attempts=OutboxMessage.attempts + 1, next_attempt_at=at)
        )

    async def fail(self, seq: int, now: datetime) -> None:
        """Never deliverable: the body goes, the row stays as a bare record."""
        await self._s.execute(
            update(OutboxMessage).where(OutboxMessage.seq == seq)
            .values(status="failed", sent_at=now, recipient_enc=None, payload_enc=None)
        )

    async def fail_pending_for(self, recipient_hash: bytes, now: datetime) -> int:
        self._forget_fresh()
        result = await self._s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.recipient_hash == recipient_hash,
                   OutboxMessage.status == _PENDING)
            .values(status="failed", sent_at=now, recipient_enc=None, payload_enc=None)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def pending_count(self) -> int:
        return int(await self._s.scalar(
            select(func.count()).select_from(OutboxMessage)
            .where(OutboxMessage.status == _PENDING)) or 0)

    async def purge_delivered(self, before: datetime) -> None:
        await self._s.execute(
            delete(OutboxMessage).where(OutboxMessage.status.in_(("sent", "failed")),
                                        OutboxMessage.sent_at < before)
        )

    async def drop_for_case(self, case_id: str) -> None:
        """Erasure: pending messages of a shredded case can never be opened anyway."""
        self._forget_fresh()
        await self._s.execute(delete(OutboxMessage).where(OutboxMessage.case_id == case_id))

    async def fresh_rows(self, now: datetime
                         ) -> tuple[list[tuple[DueMessage, Outbound, int]], int]:
        """The rows this transaction added that may go out at once, opened,
        each with how many older messages (not of this transaction) still
        wait for its recipient; and how many rows were added.

        Rows are in order; a row not yet due (and what follows it for the
        same recipient) is left out.  The delivery worker's fast lane sends
        a row at once if nothing older waits, or right after what it already
        holds for that recipient if that is exactly what waits.  Costs no
        query: `enqueue` counted the older rows when it inserted.
        """
        fresh = self._fresh()
        self._forget_fresh()
        rows: list[tuple[DueMessage, Outbound, int]] = []
        blocked: set[bytes] = set()
        earlier_fresh: dict[bytes, int] = {}
        for row in sorted(fresh, key=lambda r: r.due.seq):
            recipient = row.due.recipient_hash
            mine = earlier_fresh.get(recipient, 0)
            earlier_fresh[recipient] = mine + 1
            if recipient in blocked or row.due_at > now:
                blocked.add(recipient)  # and so is everything after it
                continue
            rows.append((row.due, decode_outbound(row.to, row.encoded), row.waiting - mine))
        return rows, len(fresh)
