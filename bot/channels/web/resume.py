"""The resume desk of the web channel: it hands an employee a receipt (case
code and one-time passphrase) when their first case starts, and answers the
``/resume`` page's ``POST /api/resume`` by giving the identity back to whoever
knows both.  The secrets themselves are `bot.channels.web.receipts`."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.channels.base import ChannelState
from bot.channels.web.history import Histories
from bot.channels.web.receipts import (
    Receipt,
    dummy_check,
    lockout_seconds,
    new_passphrase,
    normalize_case_code,
)
from bot.channels.web.sessions import state_key
from bot.channels.web.tabs import Tabs

log = logging.getLogger("confidant.web")

UNKNOWN_CODES_KEEP = 10_000


class ResumeDesk:
    """Issues, voids and checks resume receipts."""

    def __init__(
        self,
        state: ChannelState,
        histories: Histories,
        tabs: Tabs,
        same_origin: Callable[[web.Request], bool],
        clock: Callable[[], float],
    ) -> None:
        self.state = state
        self.histories = histories
        self.tabs = tabs
        self.same_origin = same_origin
        self.clock = clock
        self._unknown_codes: OrderedDict[str, tuple[int, float]] = OrderedDict()

    # ------------------------------------------------------------ issuing

    async def maybe_receipt(self, address: str, case: str) -> None:
        """First message of a case to an employee: give them a resume receipt.

        Must be called with the address lock held.  With no tab open the receipt
        waits (as a marker, never as a passphrase) for the next connection.
        """
        record = await self.histories.employee(address)
        if record is None:
            return
        code = normalize_case_code(case)
        if code in record["receipts"] or case in record["pending"]:
            return
        if not self.tabs.of(address):
            record["pending"].append(case)
            await self.histories.save_employee(address, record)
            return
        await self.issue(address, record, case)

    async def issue_pending(self, address: str) -> None:
        """A tab opened: issue the receipts that waited for one (address lock held)."""
        record = await self.histories.employee(address)
        if record is not None:
            for case in list(record["pending"]):
                await self.issue(address, record, case)

    async def issue(self, address: str, record: dict[str, Any], case: str) -> None:
        passphrase = new_passphrase()
        receipt = await Receipt.create(address, passphrase)
        code = normalize_case_code(case)
        await self.state.set(state_key("resume", code), receipt.to_bytes())
        record["receipts"].append(code)
        if case in record["pending"]:
            record["pending"].remove(case)
        await self.histories.save_employee(address, record)
        await self.tabs.push(address, {"type": "receipt", "case": case, "passphrase": passphrase})
        log.info("web: resume receipt issued for case %s", case)

    async def void(self, record: dict[str, Any]) -> None:
        """Delete every receipt of an employee record (``/forget``)."""
        for code in record.get("receipts", []):
            await self.state.delete(state_key("resume", code))

    # ------------------------------------------------------------ checking

    async def handle(self, request: web.Request) -> web.Response:
        """Check a case code and passphrase; on success hand back the identity
        so the page can reopen the conversation."""
        if not self.same_origin(request):
            log.info("web: cross-origin resume refused")
            return web.json_response({"error": "forbidden"}, status=403)
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "invalid"}, status=400)
        if not isinstance(data, dict):
            return web.json_response({"error": "invalid"}, status=400)
        code_in, passphrase = data.get("code"), data.get("passphrase")
        if not (
            isinstance(code_in, str)
            and isinstance(passphrase, str)
            and 0 < len(code_in) <= 32
            and 0 < len(passphrase) <= 128
        ):
            return web.json_response({"error": "invalid"}, status=400)
        code = normalize_case_code(code_in)
        now = self.clock()
        key = state_key("resume", code)
        async with self.tabs.lock("resume:" + code):
            raw = await self.state.get(key)
            if raw is None:
                return await self._unknown_code(code, passphrase, now)
            receipt = Receipt.from_bytes(raw)
            if receipt.locked_until > now:
                return _wait(receipt.locked_until - now)
            if await receipt.matches(passphrase):
                receipt.failures = 0
                receipt.locked_until = 0.0
                await self.state.set(key, receipt.to_bytes())
                log.info("web: conversation resumed for case %s", code_in.upper())
                return web.json_response({"identity": receipt.identity})
            receipt.failures += 1
            receipt.locked_until = now + lockout_seconds(receipt.failures)
            await self.state.set(key, receipt.to_bytes())
            log.info("web: wrong resume passphrase")
            return web.json_response({"error": "wrong"}, status=403)

    async def _unknown_code(self, code: str, passphrase: str, now: float) -> web.Response:
        """Answer an unknown code exactly like a wrong passphrase (same work,
        same limit), so guessing codes teaches nothing."""
        failures, locked_until = self._unknown_codes.pop(code, (0, 0.0))
        if locked_until > now:
            self._unknown_codes[code] = (failures, locked_until)
            return _wait(locked_until - now)
        await dummy_check(passphrase)
        failures += 1
        self._unknown_codes[code] = (failures, now + lockout_seconds(failures))
        while len(self._unknown_codes) > UNKNOWN_CODES_KEEP:
            self._unknown_codes.popitem(last=False)
        log.info("web: wrong resume passphrase")
        return web.json_response({"error": "wrong"}, status=403)


def _wait(seconds: float) -> web.Response:
    retry = max(1, int(seconds + 0.999))
    return web.json_response(
        {"error": "wait", "retry_after": retry},
        status=429,
        headers={"Retry-After": str(retry)},
    )
