"""The Synapse fixture itself: it answers, registers accounts, and survives a restart."""

from __future__ import annotations

import secrets

import aiohttp

from tests.support.synapse import SynapseServer


async def _whoami(url: str, token: str) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{url}/_matrix/client/v3/account/whoami",
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
            return r.status, await r.json()


async def test_register_gives_a_working_token(synapse: SynapseServer) -> None:
    name = "sup-" + secrets.token_hex(3)
    user_id, token, device_id = await synapse.register(name, "pw-" + name)
    assert user_id == f"@{name}:localhost"
    assert synapse.url.startswith("http://127.0.0.1:")
    status, body = await _whoami(synapse.url, token)
    assert status == 200
    assert body["user_id"] == user_id
    assert body["device_id"] == device_id
    status, _ = await _whoami(synapse.url, "not-a-token")
    assert status == 401


async def test_restart_keeps_accounts(synapse: SynapseServer) -> None:
    name = "sup-" + secrets.token_hex(3)
    user_id, token, _ = await synapse.register(name, "pw")
    await synapse.restart()
    status, body = await _whoami(synapse.url, token)
    assert (status, body["user_id"]) == (200, user_id)
    assert synapse.db_path.exists()
