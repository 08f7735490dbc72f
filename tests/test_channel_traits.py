"""A channel declares its traits (numbered menus, end-to-end, idempotent
sends) and the app derives the conversation's settings from them: no list
elsewhere says which channel does what."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.app import App, channel_settings
from bot.channels.base import InboundHandler
from bot.channels.matrix import MatrixChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.web import WebChannel
from bot.config import load_config
from domain.ids import ChannelName
from domain.messages import Inbound, Outbound, SendResult
from handlers import privacy_notice
from handlers.context import CoreSettings
from handlers.i18n import Translator
from store.crypto import create_key_file

SHIPPED = {"matrix": MatrixChannel, "telegram": TelegramChannel, "web": WebChannel}


class TraitChannel:
    """A channel that records what it is sent, with the traits it is given."""

    idempotent_sends = True
    end_to_end = False

    def __init__(self, name: str, numbered_menus: bool) -> None:
        self.name = ChannelName(name)
        self.numbered_menus = numbered_menus
        self.on_inbound: InboundHandler | None = None
        self.sent: list[Outbound] = []

    async def start(self, on_inbound: InboundHandler) -> None:
        self.on_inbound = on_inbound

    async def stop(self) -> None:
        return None

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        self.sent.append(out)
        return SendResult(idempotency_key)


def test_the_shipped_channels_declare_their_traits() -> None:
    traits = {name: (cls.numbered_menus, cls.end_to_end, cls.idempotent_sends)
              for name, cls in SHIPPED.items()}
    assert traits == {"matrix": (True, True, True), "telegram": (False, False, False),
                      "web": (False, False, True)}


def test_numbered_menus_follow_the_declared_traits() -> None:
    base = CoreSettings()
    assert base.numbered_channels == frozenset()  # nothing hard-coded
    derived = channel_settings(base, SHIPPED)  # type: ignore[arg-type]
    assert derived.numbered_channels == {"matrix"}
    assert channel_settings(base, {"a": TraitChannel("a", True),
                                   "b": TraitChannel("b", False)}).numbered_channels == {"a"}


def test_end_to_end_is_claimed_only_where_the_privacy_notice_promises_it() -> None:
    """The notice's sentences about end-to-end are written for Matrix; a
    shipped channel that declared itself end-to-end without the notice
    knowing (or the reverse) fails here."""
    assert {name for name, cls in SHIPPED.items() if cls.end_to_end} == {privacy_notice.MATRIX}
    assert CoreSettings().end_to_end_channels == {privacy_notice.MATRIX}


def test_the_notice_promises_end_to_end_only_over_declared_channels() -> None:
    """The verdict follows the traits the app derives: Matrix to Matrix is
    end-to-end only while the Matrix channel declares it."""
    derived = channel_settings(CoreSettings(), SHIPPED)  # type: ignore[arg-type]
    assert derived.end_to_end_channels == {"matrix"}
    declared = privacy_notice.Route("matrix", frozenset({"matrix"}), False, True,
                                    end_to_end_channels=derived.end_to_end_channels)
    assert declared.end_to_end
    assert "privacy.e2e_yes" in privacy_notice.encryption_keys(declared)
    undeclared = channel_settings(CoreSettings(), {"matrix": TraitChannel("matrix", True)})  # type: ignore[dict-item]
    route = privacy_notice.Route("matrix", frozenset({"matrix"}), False, True,
                                 end_to_end_channels=undeclared.end_to_end_channels)
    assert not route.end_to_end
    assert "privacy.e2e_no" in privacy_notice.encryption_keys(route)


async def test_the_running_app_reads_a_number_as_a_menu_choice_only_where_declared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the app: the same "1" after the welcome menu opens the
    information pages on a channel that declares numbered menus, and is
    plain words on one that does not."""
    key = tmp_path / "master.key"
    create_key_file(key)
    path = tmp_path / "config.toml"
    path.write_text('[organisation]\nname = "Acme"\n'
                    f'[store]\nurl = "sqlite+aiosqlite:///{tmp_path / "bot.db"}"\n'
                    f'key_file = "{key}"\n', encoding="utf-8")  # channels swapped below
    numbered, plain = TraitChannel("numbered", True), TraitChannel("plain", False)
    monkeypatch.setattr(App, "_build_channels",
                        lambda self, store, intake: {"numbered": numbered, "plain": plain})
    app = App(load_config(path))
    await app.start()
    try:
        assert app.intake is not None
        assert app.intake.settings.numbered_channels == {"numbered"}
        tr = Translator()
        for channel in (numbered, plain):
            assert channel.on_inbound is not None
            await channel.on_inbound(Inbound(channel.name, "emp", "emp", "start", text="/start",
                                             language_hint="en"))
            await _until(lambda c=channel: any(o.menu for o in c.sent))  # the welcome menu
            welcomed = len(channel.sent)
            await channel.on_inbound(Inbound(channel.name, "emp", "emp", "one", text="1",
                                             language_hint="en"))
            await _until(lambda c=channel, n=welcomed: len(c.sent) > n)
        assert numbered.sent[-1].text == tr.t("en", "info.title")
        assert plain.sent[-1].text == tr.t("en", "message.no_case")
    finally:
        await app.stop()


async def _until(check: object, within: float = 10.0) -> None:
    assert callable(check)
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not check():
        assert loop.time() < end, "not sent in time"
        await asyncio.sleep(0.02)
