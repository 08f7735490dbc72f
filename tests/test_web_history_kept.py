"""The employee tab's history with the real bot process on SQLite: what a
tab was shown (its own words, the confidant's answers relayed to it) is
drawn again on a reload, also when the process was SIGKILLed right after a
message was acknowledged, and the database file never holds those words.

The person's own words are kept in the transaction that records their event
(`Inbound.keep`), so an acknowledged message is kept by construction; these
tests prove it from the outside, as a person reloading the page sees it."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import aiohttp

from bench.seed import seed_employees
from bot.channels.web import state_key
from tests.support.app_runner import BotProcess, make_setup
from tests.support.telegram_double import TelegramDouble, free_port

CONFIDANT_ID = 7_300_000_201
BEFORE = "Mijn chef roept elke dag tegen mij, zelfs waar klanten bij zijn."
ANSWER = "Dank je om te schrijven. Wanneer past een gesprek voor jou?"
AFTER = "Donderdagmiddag past goed, dank je wel."


async def _tab(http: aiohttp.ClientSession, base: str, identity: str
               ) -> tuple[aiohttp.ClientWebSocketResponse, list[dict[str, Any]]]:
    """A tab of ``identity``, as a reload opens it: the history it is shown."""
    ws = await http.ws_connect(base + "/ws", headers={"Origin": base})
    await ws.send_json({"type": "hello", "identity": identity, "language": "en"})
    while True:
        frame = json.loads((await ws.receive(timeout=10)).data)
        if frame["type"] == "ready":
            assert frame["identity"] == identity
            return ws, list(frame["history"])


async def _say(ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
    """Type ``text`` and wait for its ack (the page's 'sent')."""
    cid = secrets.token_hex(8) + "-0000-4000-8000-000000000000"
    await ws.send_json({"type": "message", "id": cid, "text": text})
    while True:
        frame = json.loads((await ws.receive(timeout=10)).data)
        if frame["type"] == "ack" and frame["id"] == cid:
            return


async def _frame_with(ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
    while True:
        frame = json.loads((await ws.receive(timeout=10)).data)
        if frame["type"] == "message" and text in frame["item"]["text"]:
            return


def _texts(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Who said what, the relayed words without the case header around them."""
    words = (BEFORE, ANSWER, AFTER)
    return [(i["from"], next((w for w in words if w in i["text"]), i["text"]))
            for i in history]


async def test_reload_and_kill_after_ack_keep_the_history_and_the_db_no_words(
        tmp_path: Path, telegram_double: TelegramDouble) -> None:
    d = telegram_double
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    setup = await make_setup(tmp_path, telegram_base_url=d.base_url, telegram_token=d.token,
                             extra={"web": {"enabled": True, "listen": f"127.0.0.1:{port}",
                                            "public_url": base}})
    confidant = d.user(CONFIDANT_ID, "Conf", started=True)
    conf_id = await setup.add_confidant("Confidant", telegram=confidant.id, languages=["en"])
    identity = "w" + secrets.token_urlsafe(32)
    async with setup.store() as store:  # issued as the channel issues them
        await store.channel_state("web").set(
            state_key("emp", identity), json.dumps({"receipts": [], "pending": []}).encode())
    await seed_employees(setup, [identity], [conf_id], channel="web", claimed=True)
    bot = BotProcess(setup)
    bot.start()
    try:
        async with aiohttp.ClientSession() as http:
            await bot.wait_until(lambda: "confidant running" in bot.log(), 60)
            ws, history = await _tab(http, base, identity)
            assert history == []
            await _say(ws, BEFORE)
            relayed = await d.wait_for(confidant.id, lambda r: BEFORE in str(r["text"]),
                                       timeout=10)
            await confidant.reply_to(relayed, ANSWER)
            await _frame_with(ws, ANSWER)
            await ws.close()

            # A reload after the relay shows both sides, in order.
            ws, history = await _tab(http, base, identity)
            assert _texts(history) == [("me", BEFORE), ("relay", ANSWER)]

            # Acknowledged, then the process dies at once: still shown after a restart.
            await _say(ws, AFTER)
            bot.kill()
            await ws.close()
            bot.start()
            await bot.wait_until(lambda: bot.log().count("confidant running") == 2, 60)
            ws, history = await _tab(http, base, identity)
            assert _texts(history)[:3] == [("me", BEFORE), ("relay", ANSWER), ("me", AFTER)]
            await ws.close()
    finally:
        await bot.stop()
    stored = b"".join(p.read_bytes() for p in setup.db_path.parent.glob("confidant.db*"))
    for words in (BEFORE, ANSWER, AFTER, identity):
        assert words.encode() not in stored
        assert words[:20].encode() not in stored
