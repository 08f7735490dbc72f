"""Query plans of the hot path on a (big) store: one relay each way is run
in-process through the real core and delivery worker, every SQL statement it
issues is captured, and SQLite's EXPLAIN QUERY PLAN tells whether any of
them reads a growing table in full."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from bot.channels.base import InboundHandler
from bot.delivery import DeliveryWorker
from bot.intake import Intake
from domain.ids import ChannelName
from domain.messages import Inbound, Outbound, SendResult
from handlers.context import CoreSettings
from handlers.info import InfoLibrary
from store.crypto import load_master_key
from store.store import Store
from tests.support.app_runner import BotSetup

GROWING_TABLES = ("cases", "contacts", "data_keys", "outbox", "message_links",
                  "handled_events", "button_tokens", "case_messages", "notes", "audit_log")
LINK_ID = "990001"


@dataclass
class QueryPlan:
    """One distinct statement of the hot path and how SQLite runs it."""

    sql: str
    plan: list[str]

    @property
    def full_scans(self) -> list[str]:
        """Plan steps that read a growing table without an index."""
        out = []
        for step in self.plan:
            words = step.split()
            if len(words) >= 2 and words[0] == "SCAN" and words[1] in GROWING_TABLES and (
                    "INDEX" not in step and "PRIMARY KEY" not in step):
                out.append(step)
        return out

    @property
    def short_sql(self) -> str:
        """The statement on one line, cut to a readable length."""
        flat = " ".join(self.sql.split())
        return flat if len(flat) <= 140 else flat[:137] + "..."


class _Stub:
    """A channel that accepts every message and names it `LINK_ID`."""

    name = ChannelName("telegram")
    numbered_menus = False
    end_to_end = False
    idempotent_sends = False

    async def start(self, on_inbound: InboundHandler) -> None:
        """Nothing to receive: the plan check feeds the core directly."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        """Pretend the platform took the message."""
        return SendResult(LINK_ID)


async def hot_query_plans(setup: BotSetup, employee: int, confidant: int,
                          code: str) -> list[QueryPlan]:
    """Relay employee → confidant → employee once and explain every query.

    ``code`` (the employee's open case) is also looked up by code, as the
    ``/claim`` and ``/case`` commands do."""
    store = Store.open(setup.db_url, load_master_key(setup.key_path))
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        captured.append((statement, parameters))

    event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    try:
        core = Intake(store, CoreSettings(languages=("en", "nl", "fr"), default_language="en"),
                    InfoLibrary.load(None, ("en", "nl", "fr")))
        worker = DeliveryWorker(store, {"telegram": _Stub()}, clock=core.clock,
                                wake=core.outbox_changed, unreachable=core.unreachable)
        tg = ChannelName("telegram")
        stamp = datetime.now(UTC).timestamp()
        # One direction through the fast lane (as while the worker runs), the
        # other through a delivery pass, so both paths' statements are explained.
        core.lane = worker
        await core.handle(Inbound(tg, str(employee), str(employee), f"plan:{stamp}:e",
                                  text="A question for the plan check."))
        await worker.drain(5)
        core.lane = None
        await core.handle(Inbound(tg, str(confidant), str(confidant), f"plan:{stamp}:c",
                                  text="An answer for the plan check.", reply_to=LINK_ID))
        await worker.drain(5)
        async with store.tx() as tx:
            await tx.cases.by_code(code)
            await tx.outbox.next_due_at()
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
    plans: list[QueryPlan] = []
    seen: set[str] = set()
    try:
        async with store.engine.connect() as conn:
            for sql, params in captured:
                head = sql.lstrip().split(None, 1)[0].upper()
                lookup = head != "INSERT" or "ON CONFLICT" in sql.upper()
                if head not in ("SELECT", "UPDATE", "DELETE", "INSERT") or not lookup \
                        or sql in seen:
                    continue
                seen.add(sql)
                rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                plans.append(QueryPlan(sql, [str(r[-1]) for r in rows.all()]))
    finally:
        await store.close()
    return plans
