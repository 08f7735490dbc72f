"""Choosing whom to talk to: name, short bio, languages and duty are shown."""

from datetime import time

from tests.support.memory_channel import Harness


async def test_talk_chooser_shows_bio_languages_and_duty(harness: Harness) -> None:
    await harness.add_confidant("Sara", "conf-sara", languages="nl,en",
                                bio="HR, Ghent office, 20 years in the company")
    async with harness.store.tx() as tx:
        tom = await tx.confidants.add("Tom", bio="Works in logistics", languages=["fr"],
                                      attested_by="test", now=harness.clock.now())
        await tx.confidants.set_address(tom, "memory", "conf-tom")
        await tx.rota.add_shift(tom, 6, time(8, 0), time(9, 0))  # Sundays only
    emp = harness.person("emp-t", "en")
    await emp.say("/start")
    await emp.say("/talk")
    text = emp.last
    assert "HR, Ghent office" in text and "Works in logistics" in text
    assert "Nederlands" in text and "Français" in text
    labels = [b.label for b in emp.inbox[-1].menu.buttons()]  # type: ignore[union-attr]
    assert "Sara (available now)" in labels and "Tom (not on duty now)" in labels
