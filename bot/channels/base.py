"""The contract every channel adapter fulfils.

A channel only translates: platform events become `Inbound` values handed to
``on_inbound`` (which returns once the core has durably recorded the event, so
the channel may then confirm it to the platform), and `Outbound` values from
the delivery worker become platform API calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol

from domain.ids import ChannelName
from domain.messages import Inbound, Outbound, SendResult

InboundHandler = Callable[[Inbound], Awaitable[None]]
"""Called for every platform event.  Returns after the event and all its
effects are committed; raises if they could not be (the channel must then
not confirm the event, so the platform re-delivers it)."""


class NoticeWords(Protocol):
    """The words of a notice a channel must send on its own, outside the
    conversation (Matrix: asking for encryption, warning of a new device),
    by content key.  The reader is unknown there, so the app answers in every
    language of the organisation, default first, from the strings the core
    uses; the channel only sends what it gets."""

    def __call__(self, key: str, /, **values: object) -> str: ...


class ChannelError(Exception):
    """A channel cannot take up the place its configuration gives it (a port
    already in use …).  The message is one printable line that names the
    config key; the app reports it as a configuration problem."""


class ChannelState(Protocol):
    """Small persistent key/value space a channel may use for its own
    bookkeeping (Matrix device and case rooms, web resume hashes).  Values are
    encrypted at rest by the store."""

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The values of those ``keys`` that exist, read at once."""
        ...

    async def set(self, key: str, value: bytes) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def change(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        """Write ``puts`` and delete ``deletes`` together, or neither."""
        ...


class Channel(Protocol):
    """What the app wiring and the delivery worker need from a channel.

    A channel declares its traits; the app derives the conversation's
    settings from them (`bot.app.channel_settings`), so nothing elsewhere
    keeps a list of which channel does what."""

    name: ChannelName
    numbered_menus: bool
    """True when menus are shown as numbered lists answered by a number
    (the conversation then reads a bare number as a menu choice)."""
    end_to_end: bool
    """True when the platform carries messages end-to-end encrypted between
    the person's device and the bot (Matrix), so no server in between reads
    them; the privacy notice promises end-to-end only over such channels."""
    idempotent_sends: bool
    """True when a re-sent message with the same idempotency key is not
    duplicated by the platform (Matrix transaction ids, web message refs):
    a crash between a send and its record then costs no duplicate."""

    async def start(self, on_inbound: InboundHandler) -> None:
        """Connect and begin handing events to ``on_inbound``; returns once running."""

    async def stop(self) -> None:
        """Stop receiving, finish in-flight work, close connections."""

    async def send(self, out: Outbound, idempotency_key: str) -> SendResult:
        """Deliver one message.  Raises `RetryLater` or `Unreachable`
        (from `domain.messages`) on failure; any other exception counts as
        transient."""


class MemoryChannelState:
    """`ChannelState` kept in a dict: for tests and for channels that need
    nothing to survive a restart."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        return {k: self._data[k] for k in keys if k in self._data}

    async def set(self, key: str, value: bytes) -> None:
        self._data[key] = value

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def change(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        for key in deletes:
            self._data.pop(key, None)
        self._data.update(puts)
