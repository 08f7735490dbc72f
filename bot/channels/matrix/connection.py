"""The bot's Matrix device and the live nio client the channel's parts share.

The first start logs in with the password (or adopts the access token's
device) and persists that device; every later start restores the very same
device, its encryption store and its cross-signing, so confidants and
employees keep trusting it.  Anything inconsistent stops the channel with a
`MatrixSetupError` that tells the operator what to do.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from nio import AsyncClient, AsyncClientConfig, LoginResponse, WhoamiResponse

from bot.channels.base import ChannelState
from bot.channels.matrix.crosssign import (
    CrossSigningError,
    CrossSigningSeeds,
    ensure_cross_signing,
)
from domain.messages import RetryLater

log = logging.getLogger(__name__)


class MatrixSetupError(Exception):
    """The Matrix login, store or keys are inconsistent; the message tells the operator
    what is wrong and what to do.  The bot must not start the channel."""


def quiet_nio() -> None:
    """matrix-nio logs user, device and room ids even at INFO and WARNING; our
    logs must carry none, so only its errors pass (whatever the app set up)."""
    nio_log = logging.getLogger("nio")
    if nio_log.getEffectiveLevel() < logging.ERROR:
        nio_log.setLevel(logging.ERROR)


class Connection:
    """Opens, holds and closes the nio client of the bot's one device.

    Every other part of the channel reaches the client through `client`,
    which is a `RetryLater` while the channel is not running: a send that
    comes too early or too late is simply retried by the delivery worker."""

    def __init__(
        self,
        homeserver: str,
        user_id: str,
        *,
        password: str | None,
        access_token: str | None,
        device_name: str,
        store_dir: Path,
        pickle_key: str,
        state: ChannelState,
    ) -> None:
        self.homeserver = homeserver
        self.user_id = user_id
        self._password = password
        self._access_token = access_token
        self._device_name = device_name
        self._store_dir = store_dir
        self._pickle_key = pickle_key
        self._state = state
        self._client: AsyncClient | None = None

    @property
    def client(self) -> AsyncClient:
        """The running client; `RetryLater` when the channel is not running."""
        if self._client is None:
            raise RetryLater("matrix channel not running")
        return self._client

    @property
    def current(self) -> AsyncClient | None:
        """The client if there is one (for status questions that must not raise)."""
        return self._client

    async def open(self) -> None:
        """Log in (or restore the stored device), upload its keys on the first
        start and make sure its cross-signing holds."""
        self._store_dir.mkdir(parents=True, exist_ok=True)
        client = AsyncClient(
            self.homeserver,
            self.user_id,
            store_path=str(self._store_dir),
            config=AsyncClientConfig(
                encryption_enabled=True,
                store_sync_tokens=True,
                pickle_key=self._pickle_key,
                max_limit_exceeded=0,
                max_timeouts=0,
                request_timeout=30,
            ),
        )
        self._client = client
        await self._login(client)
        if client.should_upload_keys:
            await client.keys_upload()
        await self._ensure_cross_signing(client)

    async def close(self) -> None:
        """Close the HTTP session (nio's store is on disk); harmless when closed."""
        if self._client is not None:
            await self._client.close()
        self._client = None

    async def _login(self, client: AsyncClient) -> None:
        """First start: password login and persist the device; later starts:
        restore that same device from the state and nio's store."""
        raw = await self._state.get("login")
        store_files = sorted(self._store_dir.glob(f"{self.user_id}_*.db"))
        if raw is not None:
            await self._restore(client, json.loads(raw))
            return
        if store_files:
            raise MatrixSetupError(
                f"matrix.store_dir: {self._store_dir} already holds an encryption store for "
                f"{len(store_files)} device(s) but the bot's state has no Matrix login; "
                "use the matching database, or move store_dir away to start a new device"
            )
        if self._password:
            resp = await client.login(self._password, device_name=self._device_name)
            if not isinstance(resp, LoginResponse):
                raise MatrixSetupError(
                    f"matrix.password: login failed ({getattr(resp, 'status_code', '?')})"
                )
            device_id, token = resp.device_id, resp.access_token
        else:
            assert self._access_token is not None
            client.access_token = self._access_token
            who = await client.whoami()
            if not isinstance(who, WhoamiResponse) or not who.device_id:
                raise MatrixSetupError("matrix.access_token: rejected by the homeserver")
            if who.user_id != self.user_id:
                raise MatrixSetupError("matrix.access_token: belongs to another user")
            device_id, token = who.device_id, self._access_token
            client.restore_login(self.user_id, device_id, token)
        await self._state.set(
            "login",
            json.dumps(
                {"user_id": self.user_id, "device_id": device_id, "access_token": token}
            ).encode(),
        )
        log.info("matrix: logged in with a new device")

    async def _restore(self, client: AsyncClient, saved: dict[str, str]) -> None:
        """Bring back the device a former start logged in, checking that its
        store is there, opens with our key, and that its token still works."""
        if saved.get("user_id") != self.user_id:
            raise MatrixSetupError(
                "matrix.user_id differs from the account this bot's state was made for; "
                "restore the old user_id or give the bot a fresh database"
            )
        device_id, token = saved["device_id"], saved["access_token"]
        if not (self._store_dir / f"{self.user_id}_{device_id}.db").exists():
            raise MatrixSetupError(
                f"matrix.store_dir: the encryption store for device {device_id} is missing "
                f"in {self._store_dir}; restore it from backup (without it the bot cannot "
                "read its encrypted rooms), or delete the bot's Matrix state to start "
                "with a new device"
            )
        client.device_id = device_id
        try:
            client.restore_login(self.user_id, device_id, token)
        except Exception as exc:
            raise MatrixSetupError(
                "matrix.store_dir: the encryption store cannot be opened with this key "
                f"file ({type(exc).__name__}); was the key file replaced?"
            ) from exc
        who = await client.whoami()
        if not isinstance(who, WhoamiResponse):
            raise MatrixSetupError(
                "matrix: the homeserver rejected the stored access token "
                f"({getattr(who, 'status_code', '?')}); the device was logged out. "
                "Delete the bot's Matrix state and store_dir to log in as a new device"
            )
        if who.user_id != self.user_id or (who.device_id and who.device_id != device_id):
            raise MatrixSetupError(
                "matrix: the stored access token belongs to another user or device"
            )

    async def _ensure_cross_signing(self, client: AsyncClient) -> None:
        """Bootstrap or check cross-signing; persist new seeds (encrypted by the store)."""
        assert client.olm is not None
        raw = await self._state.get("xsign")
        seeds = CrossSigningSeeds.from_bytes(raw) if raw else None
        try:
            new = await ensure_cross_signing(
                self.homeserver,
                client.access_token,
                self.user_id,
                client.device_id,
                dict(client.olm.account.identity_keys),
                seeds,
                password=self._password,
            )
        except CrossSigningError as exc:
            raise MatrixSetupError(f"matrix: cross-signing: {exc}") from exc
        if new != seeds:
            await self._state.set("xsign", new.to_bytes())
