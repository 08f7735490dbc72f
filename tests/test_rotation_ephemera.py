"""Rotating the master key mid-conversation: what is waiting still goes out
in order to the right person; old buttons and reply links simply expire."""

from sqlalchemy import func, select

from store import keyring
from store.crypto import Crypto, generate_master_key
from store.models import ButtonToken, MessageLink, OutboxMessage
from store.store import Store
from tests.support.memory_channel import Harness, open_case


async def test_rotation_keeps_waiting_messages_and_drops_stale_handles(
        harness: Harness) -> None:
    h = harness
    sara = await h.add_confidant("Sara", "conf-sara")
    emp = h.person("emp-rot", "en")
    code = await open_case(emp, sara)
    await emp.say("before the rotation")
    old_menu_token = next(b.token for o in emp.inbox if o.menu for b in o.menu.buttons())
    h.channel.failures.append(ConnectionError("down"))  # keep the next two waiting
    await emp.say("waiting one")
    await emp.say("waiting two")

    async with h.store.tx() as tx:
        assert await tx.outbox.pending_count() == 2
    new = Crypto(generate_master_key())
    sessions = h.store._sessions  # the rotation runs with the bot stopped
    await keyring.rotate_master(sessions, h.store.crypto, new)

    rotated = Store(h.store.engine, new)
    async with rotated.tx() as tx:
        s = tx.session
        assert await s.scalar(select(func.count()).select_from(ButtonToken)) == 0
        assert await s.scalar(select(func.count()).select_from(MessageLink)) == 0
        heads = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.status == "pending"))).all()
        assert {r.recipient_hash for r in heads} == {new.address_hash("memory", "conf-sara")}
        assert await tx.buttons.resolve(new.address_hash("memory", "emp-rot"),
                                        old_menu_token, h.clock.now()) is None
    h.core.store = h.worker.store = rotated
    h.clock.current = h.clock.current.replace(year=h.clock.current.year + 1)
    await h.worker.drain()
    assert [o.text for o in sara.inbox[-2:]] == [f"[{code}] waiting one",
                                                 f"[{code}] waiting two"]
