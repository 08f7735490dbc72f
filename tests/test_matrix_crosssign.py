"""Cross-signing bootstrap for the bot, checked from another account's view."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nio import AsyncClient, AsyncClientConfig

from bot.channels.matrix.crosssign import (
    CrossSigningError,
    CrossSigningSeeds,
    ensure_cross_signing,
    public_key,
    verify_device_chain,
)
from tests.support.synapse import SynapseServer


def _b64(s: str) -> bytes:
    return base64.b64decode(s + "=" * (-len(s) % 4))


def _check(obj: dict[str, Any], user_id: str, pub: str) -> None:
    """Independent Ed25519 check over canonical JSON (raises if invalid)."""
    body = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    sig = obj["signatures"][user_id][f"ed25519:{pub}"]
    Ed25519PublicKey.from_public_bytes(_b64(pub)).verify(_b64(sig), canonical.encode())


async def _query(synapse: SynapseServer, token: str, user_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{synapse.url}/_matrix/client/v3/keys/query",
            json={"device_keys": {user_id: []}},
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
            assert r.status == 200
            return dict(await r.json())


async def _bot(synapse: SynapseServer, tmp_path: Path) -> tuple[AsyncClient, str]:
    name = "xs-" + secrets.token_hex(3)
    password = "pw-" + name
    await synapse.register(name, password)
    client = AsyncClient(
        synapse.url,
        f"@{name}:localhost",
        store_path=str(tmp_path),
        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
    )
    resp = await client.login(password, device_name="bot")
    assert resp.__class__.__name__ == "LoginResponse", resp
    await client.keys_upload()
    return client, password


async def _ensure(
    client: AsyncClient, seeds: CrossSigningSeeds | None, password: str | None
) -> CrossSigningSeeds:
    assert client.olm is not None
    return await ensure_cross_signing(
        client.homeserver,
        client.access_token,
        client.user_id,
        client.device_id,
        dict(client.olm.account.identity_keys),
        seeds,
        password=password,
    )


async def test_bootstrap_chain_verifies_from_another_account(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    client, _ = await _bot(synapse, tmp_path)
    try:
        seeds = await _ensure(client, None, password=None)  # first upload needs no password
        _, other_token, _ = await synapse.register("xo-" + secrets.token_hex(3), "pw")
        q = await _query(synapse, other_token, client.user_id)
        uid = client.user_id
        master = q["master_keys"][uid]
        ssk = q["self_signing_keys"][uid]
        device = q["device_keys"][uid][client.device_id]
        master_pub = next(iter(master["keys"].values()))
        ssk_pub = next(iter(ssk["keys"].values()))
        assert master_pub == public_key(seeds.master)
        assert master["usage"] == ["master"] and ssk["usage"] == ["self_signing"]
        _check(ssk, uid, master_pub)
        _check(device, uid, ssk_pub)
        assert verify_device_chain(q, uid, client.device_id) == master_pub

        # A tampered device object no longer verifies.
        forged = json.loads(json.dumps(q))
        forged["device_keys"][uid][client.device_id]["device_id"] = "EVIL"
        assert verify_device_chain(forged, uid, client.device_id) is None

        # Next start: same seeds, nothing to do.
        again = await _ensure(client, CrossSigningSeeds.from_bytes(seeds.to_bytes()), None)
        assert again == seeds
    finally:
        await client.close()


async def test_lost_seeds_reset_needs_the_password(synapse: SynapseServer, tmp_path: Path) -> None:
    client, password = await _bot(synapse, tmp_path)
    try:
        first = await _ensure(client, None, password=None)
        with pytest.raises(CrossSigningError, match="password"):
            await _ensure(client, None, password=None)
        second = await _ensure(client, None, password=password)
        assert second != first
        q = await _query(synapse, client.access_token, client.user_id)
        assert verify_device_chain(q, client.user_id, client.device_id) == public_key(second.master)
    finally:
        await client.close()
