"""SIGKILL at random moments while messages are relayed: nothing is lost, and
a duplicate appears only where the core allows one.

The bot runs as a real ``confidant run`` child process and is killed (no
shutdown code runs) at moments chosen by a seeded RNG, then started again on
the same database, while people keep writing.

* Telegram (Bot API double): 20 kills during 1,000 relayed messages between
  eight employee/confidant pairs, both directions.  Telegram sends are not
  idempotent, so a message whose send completed just before a kill, but was
  not yet marked sent, goes out again after the restart.  The test counts
  those duplicates (printed), checks that each one straddles a kill (first
  copy shortly before it, second after the restart) and that there are at
  most as many as kills; nothing is lost and each chat stays in order.
* Matrix (real Synapse): 5 kills during 100 relayed messages in one case
  room, both directions.  Sends carry stable transaction ids, so delivery is
  exactly once.  Fewer messages than on Telegram because every message is a
  Megolm encryption and a real homeserver round trip.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from handlers.i18n import Translator
from tests.support.app_runner import make_setup
from tests.support.faults import (
    PacedBotProcess,
    Pair,
    identity_needles,
    open_pair,
    received_by,
)
from tests.support.matrix_app import (
    CASE_CODE,
    MatrixPeer,
    add_matrix_confidant,
    eventually,
    matrix_setup,
    numbered_choice,
)
from tests.support.synapse import SynapseServer
from tests.support.telegram_double import TelegramDouble

TR = Translator("nl", ("nl", "fr", "en"), "Europe/Brussels", "Acme Logistics")
SEED = 20_240_808


def t(key: str, **values: object) -> str:
    return TR.t("en", key, **values)


def sent_times(double: TelegramDouble) -> dict[tuple[int, str], list[float]]:
    """(chat, text) → times at which a sendMessage carrying it succeeded."""
    out: dict[tuple[int, str], list[float]] = defaultdict(list)
    for req in double.requests:
        if req.method.lower() == "sendmessage" and req.status == 200:
            out[(int(req.params["chat_id"]), str(req.params.get("text")))].append(req.time)
    return out


async def test_twenty_sigkills_during_a_thousand_telegram_messages(
        tmp_path: Path, telegram_double: TelegramDouble) -> None:
    d = telegram_double
    rng = random.Random(SEED)
    n_pairs, n_messages, n_kills = 8, 1000, 20
    pairs = [
        Pair(d.user(6_200_000_101 + i, f"Employeefirst{i}", f"Employeelast{i}",
                    f"employee_handle_{i}", "en"),
             d.user(7_300_000_201 + i, f"Conf{i}", "Confidantlast", f"conf_handle_{i}", "en",
                    started=True),
             f"Conf{i}")
        for i in range(n_pairs)
    ]
    setup = await make_setup(tmp_path, telegram_base_url=d.base_url, telegram_token=d.token,
                             default_language="en")
    for p in pairs:
        await setup.add_confidant(p.name, telegram=p.conf.id, languages=["en"])
    proc = PacedBotProcess(setup)
    proc.start()
    try:
        await proc.wait_until(lambda: bool(d.calls("getUpdates")), timeout=60)
        await asyncio.gather(*(open_pair(d, p) for p in pairs))

        # The plan: which pair writes which message in which direction.
        plan: list[tuple[Pair, bool, str]] = []
        for i in range(n_messages):
            pair = pairs[rng.randrange(n_pairs)]
            from_employee = rng.random() < 0.7
            plan.append((pair, from_employee, f"m{i:04d} {secrets.token_hex(3)}"))

        async def feed() -> None:
            """People keep writing, whether the bot is up or not."""
            for pair, from_employee, text in plan:
                await (pair.emp if from_employee else pair.conf).send_text(text)
                await asyncio.sleep(0.03)

        def polling_since(moment: float) -> bool:
            return any(r.time >= moment for r in d.calls("getUpdates"))

        feeder = asyncio.create_task(feed())
        for _ in range(n_kills):
            started = proc.start_times[-1]
            await proc.wait_until(lambda s=started: polling_since(s), timeout=60)  # type: ignore[misc]
            await asyncio.sleep(rng.uniform(0.2, 1.6))
            proc.kill()
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            proc.start()
        await feeder

        def expected(pair: Pair, from_employee: bool, text: str) -> tuple[int, str]:
            if from_employee:
                return pair.conf.id, t("relay.to_confidant", code=pair.code, text=text)
            return pair.emp.id, t("relay.to_employee", name=pair.name, text=text)

        wanted = [expected(*step) for step in plan]

        def all_arrived() -> bool:
            got = {(chat, r.get("text")) for chat in {w[0] for w in wanted}
                   for r in d.sent_to(chat)}
            return all(w in got for w in wanted)

        await proc.wait_until(all_arrived, timeout=120)
        await asyncio.sleep(1.0)  # a late duplicate would show up now
        await proc.stop()

        counts: Counter[tuple[int, str]] = Counter()
        for chat in {w[0] for w in wanted}:
            for r in d.sent_to(chat):
                counts[(chat, r.get("text") or "")] += 1
        lost = [w for w in wanted if counts[w] == 0]
        duplicated = {w: counts[w] - 1 for w in wanted if counts[w] > 1}
        n_dup = sum(duplicated.values())
        print(f"\ntelegram SIGKILL: {n_messages} messages, {proc.kills} kills, "
              f"{proc.starts} starts, lost {len(lost)}, duplicates {n_dup}")
        # Where each duplicate comes from: its first copy went out shortly
        # before a kill (sent, not yet marked sent), the next after the restart.
        times = sent_times(d)
        chats = {w[0] for w in wanted}
        per_kill: Counter[int] = Counter()
        for key, extra in duplicated.items():
            copies = sorted(times[key])
            for first, again in itertools.pairwise(copies):
                # A request written just before the kill may reach the double
                # (which shares the test's loop) a moment after it: what counts
                # is that the first copy predates the restart, the next follows it.
                window = [i for i, k in enumerate(proc.kill_times)
                          if k - 3.0 < first < proc.start_times[i + 1] <= again]
                assert window, f"a duplicate that no kill explains: copies at {copies}, " \
                    f"kills at {proc.kill_times}, starts at {proc.start_times}"
                per_kill[window[0]] += 1
            assert extra == len(copies) - 1
        print(f"telegram SIGKILL: duplicates per kill {sorted(per_kill.values(), reverse=True)}")
        assert proc.kills == n_kills
        assert not lost, f"{len(lost)} messages lost"
        # One send per recipient is in flight at a time, so a kill can repeat
        # at most one message per chat.
        assert all(n <= len(chats) for n in per_kill.values())

        # In order per chat: first appearances follow the order people wrote in.
        for chat in {w[0] for w in wanted}:
            mine = [w[1] for w in wanted if w[0] == chat]
            wanted_set = set(mine)
            seen: list[str] = []
            for r in d.sent_to(chat):
                text = r.get("text") or ""
                if text in wanted_set and text not in seen:
                    seen.append(text)
            assert seen == mine, "a chat received messages out of order"

        # The confidants still never learned who wrote.
        blob = received_by(d, [p.conf.id for p in pairs])
        for needle in identity_needles([p.emp for p in pairs]):
            assert needle.lower().encode() not in blob.lower()
        log = proc.log()
        # Updates handled but not yet confirmed when a kill fell come again
        # and are recognised (how often depends on where the kills fell).
        print(f"telegram SIGKILL: re-delivered updates recognised "
              f"{log.count('duplicate event ignored')}")
        for _, _, text in plan[:50]:
            assert text not in log
    except BaseException:
        print("bot log (tail):", proc.log()[-4000:])
        raise
    finally:
        await proc.stop()


# ------------------------------------------------------------------ Matrix


@pytest.fixture
async def peers(synapse: SynapseServer,
                tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    """Real nio clients, closed at the end."""
    made: list[MatrixPeer] = []

    async def make(prefix: str) -> MatrixPeer:
        peer = await MatrixPeer.create(synapse, tmp_path / "peers", prefix)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        await peer.close()


async def test_five_sigkills_during_a_hundred_matrix_messages_exactly_once(
        synapse: SynapseServer, tmp_path: Path, peers: Callable[[str], Any]) -> None:
    rng = random.Random(SEED + 1)
    setup, bot_id = await matrix_setup(tmp_path / "bot", synapse, default_language="en")
    anna: MatrixPeer = await peers("anna")
    emp: MatrixPeer = await peers("emp")
    await add_matrix_confidant(setup, "Anna", anna.user_id, languages=["en"])
    proc = PacedBotProcess(setup)
    proc.start()
    try:
        dm = await emp.dm(bot_id, timeout=60)
        await emp.say(dm, "/talk")
        menu = await emp.wait_text(lambda s: s.startswith(t("talk.choose")), dm, "talk menu")
        await emp.say(dm, numbered_choice(menu, t("talk.first_available")))
        opened = await emp.wait_text(lambda s: bool(CASE_CODE.search(s)) and "claim" not in s,
                                     dm, "case opened")
        code = CASE_CODE.findall(opened)[0]
        anna_dm = await anna.wait_room_with(lambda s: f"/claim {code}" in s)
        await anna.say(anna_dm, f"/claim {code}")
        case_room = await eventually(
            lambda: next((r.room_id for r in anna.client.rooms.values() if r.name == code), None),
            timeout=30, what="case room")
        await emp.wait_text(lambda s: s == t("claim.to_employee", name="Anna"), dm, "claimed")

        n_messages, n_kills = 100, 5
        plan = [(rng.random() < 0.7, f"x{i:03d} {secrets.token_hex(3)}")
                for i in range(n_messages)]
        kill_after = sorted(rng.sample(range(5, n_messages - 5), n_kills))
        for i, (from_employee, text) in enumerate(plan):
            if from_employee:
                await emp.say(dm, text)
            else:
                await anna.say(case_room, text)
            if i in kill_after:
                await asyncio.sleep(rng.uniform(0.0, 0.5))
                proc.kill()
                await asyncio.sleep(rng.uniform(0.0, 0.5))
                proc.start()

        to_anna = [f"[{code}] {s}" for e, s in plan if e]
        to_emp = [t("relay.to_employee", name="Anna", text=s) for e, s in plan if not e]
        try:
            await proc.wait_until(lambda: all(s in anna.texts(case_room) for s in to_anna)
                                  and all(s in emp.texts(dm) for s in to_emp), timeout=120)
        except AssertionError:
            print("MISSING anna", [s for s in to_anna if s not in anna.texts(case_room)])
            print("MISSING emp", [s for s in to_emp if s not in emp.texts(dm)])
            print("kill after", kill_after)
            proc.dump_stacks()
            raise
        await asyncio.sleep(2.0)  # time for a duplicate to show up, if there were one
        got_anna = [s for s in anna.texts(case_room) if s in set(to_anna)]
        got_emp = [s for s in emp.texts(dm) if s in set(to_emp)]
        print(f"\nmatrix SIGKILL: {n_messages} messages, {proc.kills} kills, "
              f"duplicates {len(got_anna) - len(to_anna) + len(got_emp) - len(to_emp)}")
        assert proc.kills == n_kills
        assert got_anna == to_anna, "not exactly once, in order, at the confidant"
        assert got_emp == to_emp, "not exactly once, in order, at the employee"
        await proc.stop()
    except BaseException:
        print("bot log (tail):", proc.log()[-4000:])
        raise
    finally:
        await proc.stop()
