"""Cross-signing for the bot's own Matrix account (matrix-nio has none).

Element refuses devices that their owner has not cross-signed (MSC4153), so
the bot bootstraps master / self-signing / user-signing Ed25519 keys, signs
its own device with the self-signing key and checks the chain at every start.
The private seeds come back as `CrossSigningSeeds`; the caller keeps them
encrypted at rest (the Matrix channel stores them in its `ChannelState`).
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

log = logging.getLogger(__name__)

DEVICE_ALGORITHMS = ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"]
"""What nio announces for its device; the rebuilt device object must match exactly."""


class CrossSigningError(Exception):
    """Cross-signing could not be set up; the message is meant for the operator."""


def canonical_json(obj: Any) -> bytes:
    """Matrix canonical JSON: sorted keys, no spaces, UTF-8 (signatures depend on it)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def unpadded_b64(data: bytes) -> str:
    """Unpadded standard base64, as Matrix writes keys and signatures."""
    return base64.b64encode(data).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _signable(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def public_key(seed: bytes) -> str:
    """Unpadded base64 of the raw Ed25519 public key for a 32-byte seed."""
    raw = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return unpadded_b64(raw)


def sign_json(obj: dict[str, Any], seed: bytes) -> str:
    """Ed25519 signature over the canonical JSON of ``obj`` without signatures/unsigned."""
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(canonical_json(_signable(obj)))
    return unpadded_b64(sig)


def add_signature(obj: dict[str, Any], user_id: str, seed: bytes) -> dict[str, Any]:
    """Return a copy of ``obj`` carrying our signature under ``ed25519:<pub>``."""
    signed = dict(obj)
    sigs = {u: dict(s) for u, s in obj.get("signatures", {}).items()}
    sigs.setdefault(user_id, {})[f"ed25519:{public_key(seed)}"] = sign_json(obj, seed)
    signed["signatures"] = sigs
    return signed


def verify_signature(obj: dict[str, Any], user_id: str, pub: str) -> bool:
    """True when ``obj`` carries a valid signature by ``user_id``'s Ed25519 key ``pub``."""
    sig = obj.get("signatures", {}).get(user_id, {}).get(f"ed25519:{pub}")
    if not isinstance(sig, str):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(_b64decode(pub)).verify(
            _b64decode(sig), canonical_json(_signable(obj))
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _only_key(key_obj: dict[str, Any] | None) -> str | None:
    """The public key of a cross-signing key object (they hold exactly one)."""
    if not key_obj:
        return None
    keys = list(key_obj.get("keys", {}).values())
    return keys[0] if len(keys) == 1 else None


def verify_device_chain(query: dict[str, Any], user_id: str, device_id: str) -> str | None:
    """Check device ← self-signing ← master in a ``/keys/query`` answer.

    Returns the master public key when the whole chain verifies, else None.
    Anyone can run this on their own query: it is what Element checks.
    """
    master = query.get("master_keys", {}).get(user_id)
    ssk = query.get("self_signing_keys", {}).get(user_id)
    device = query.get("device_keys", {}).get(user_id, {}).get(device_id)
    master_pub, ssk_pub = _only_key(master), _only_key(ssk)
    if not (master and ssk and device and master_pub and ssk_pub):
        return None
    if "master" not in master.get("usage", []) or "self_signing" not in ssk.get("usage", []):
        return None
    if not verify_signature(ssk, user_id, master_pub):
        return None
    if not verify_signature(device, user_id, ssk_pub):
        return None
    return master_pub


@dataclass(frozen=True, slots=True)
class CrossSigningSeeds:
    """The three private Ed25519 seeds (32 bytes each).  Secret: persist encrypted."""

    master: bytes
    self_signing: bytes
    user_signing: bytes

    @classmethod
    def generate(cls) -> CrossSigningSeeds:
        """Fresh random keys for a (re-)bootstrap."""

        def seed() -> bytes:
            return Ed25519PrivateKey.generate().private_bytes_raw()

        return cls(seed(), seed(), seed())

    def to_bytes(self) -> bytes:
        """Serialise for the caller's encrypted store."""
        return json.dumps(
            {
                "v": 1,
                "master": unpadded_b64(self.master),
                "self_signing": unpadded_b64(self.self_signing),
                "user_signing": unpadded_b64(self.user_signing),
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> CrossSigningSeeds:
        """Inverse of `to_bytes`."""
        d = json.loads(data)
        return cls(
            _b64decode(d["master"]), _b64decode(d["self_signing"]), _b64decode(d["user_signing"])
        )

    def __repr__(self) -> str:
        return f"CrossSigningSeeds(master={public_key(self.master)})"

    def key_objects(self, user_id: str) -> dict[str, dict[str, Any]]:
        """The three public key objects for ``device_signing/upload``."""

        def obj(seed: bytes, usage: str) -> dict[str, Any]:
            pub = public_key(seed)
            return {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{pub}": pub}}

        master = obj(self.master, "master")
        return {
            "master_key": master,
            "self_signing_key": add_signature(
                obj(self.self_signing, "self_signing"), user_id, self.master
            ),
            "user_signing_key": add_signature(
                obj(self.user_signing, "user_signing"), user_id, self.master
            ),
        }


def device_key_object(
    user_id: str, device_id: str, identity_keys: dict[str, str]
) -> dict[str, Any]:
    """Rebuild our device's key object exactly as nio uploaded it (from
    ``client.olm.account.identity_keys``), so a signature over it matches the server's copy."""
    return {
        "algorithms": list(DEVICE_ALGORITHMS),
        "device_id": device_id,
        "user_id": user_id,
        "keys": {
            f"curve25519:{device_id}": identity_keys["curve25519"],
            f"ed25519:{device_id}": identity_keys["ed25519"],
        },
    }


class _Api:
    """The three client-server endpoints cross-signing needs, over aiohttp."""

    def __init__(self, http: aiohttp.ClientSession, homeserver: str, access_token: str) -> None:
        self.http = http
        self.base = homeserver.rstrip("/") + "/_matrix/client/v3"
        self.headers = {"Authorization": f"Bearer {access_token}"}

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with self.http.post(self.base + path, json=body, headers=self.headers) as r:
            try:
                data = await r.json(content_type=None)
            except (json.JSONDecodeError, aiohttp.ContentTypeError):
                data = {}
            return r.status, data if isinstance(data, dict) else {}

    async def query(self, user_id: str) -> dict[str, Any]:
        status, data = await self.post("/keys/query", {"device_keys": {user_id: []}})
        if status != 200:
            raise CrossSigningError(f"keys/query failed with HTTP {status}")
        return data


async def _upload_device_signing(
    api: _Api, seeds: CrossSigningSeeds, user_id: str, password: str | None
) -> None:
    """Upload the three keys; answer the password challenge when replacing keys."""
    body: dict[str, Any] = seeds.key_objects(user_id)
    status, data = await api.post("/keys/device_signing/upload", body)
    if status == 401 and "session" in data:
        flows = [f.get("stages", []) for f in data.get("flows", [])]
        if password is None or ["m.login.password"] not in flows:
            raise CrossSigningError(
                "the homeserver already holds cross-signing keys for the bot and asks for "
                "the account password to replace them: set matrix.password (once is enough)"
            )
        localpart = user_id[1:].split(":", 1)[0]
        body["auth"] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": password,
            "session": data["session"],
        }
        status, data = await api.post("/keys/device_signing/upload", body)
    if status != 200:
        raise CrossSigningError(
            f"uploading cross-signing keys failed: HTTP {status} {data.get('errcode', '')}"
        )


async def _sign_own_device(
    api: _Api, seeds: CrossSigningSeeds, user_id: str, device_id: str, identity_keys: dict[str, str]
) -> None:
    """Sign our device with the self-signing key and upload the signature."""
    signed = add_signature(
        device_key_object(user_id, device_id, identity_keys), user_id, seeds.self_signing
    )
    status, data = await api.post("/keys/signatures/upload", {user_id: {device_id: signed}})
    failures = data.get("failures") or {}
    if status != 200 or failures:
        codes = sorted(
            {str(f.get("errcode")) for per_user in failures.values() for f in per_user.values()}
        )
        raise CrossSigningError(
            f"uploading the device signature failed: HTTP {status} {','.join(codes)}"
        )


async def ensure_cross_signing(
    homeserver: str,
    access_token: str,
    user_id: str,
    device_id: str,
    identity_keys: dict[str, str],
    seeds: CrossSigningSeeds | None,
    password: str | None = None,
    http: aiohttp.ClientSession | None = None,
) -> CrossSigningSeeds:
    """Make sure the server holds our master key and our device is signed by our
    self-signing key, bootstrapping or repairing what is missing.

    ``identity_keys`` is nio's ``client.olm.account.identity_keys``.  Returns the
    seeds now in force (the same object when nothing changed); the caller must
    persist them (encrypted) when they differ from what it passed in.  Raises
    `CrossSigningError` with an operator-facing message when it cannot finish.
    """
    own_http = http is None
    session = http or aiohttp.ClientSession()
    try:
        api = _Api(session, homeserver, access_token)
        query = await api.query(user_id)
        if seeds is not None:
            server_master = _only_key(query.get("master_keys", {}).get(user_id))
            if server_master == public_key(seeds.master):
                if verify_device_chain(query, user_id, device_id) == server_master:
                    return seeds
                await _sign_own_device(api, seeds, user_id, device_id, identity_keys)
                if verify_device_chain(await api.query(user_id), user_id, device_id):
                    log.info("matrix cross-signing: device signature repaired")
                    return seeds
        # No keys of ours on the server (first start, lost seeds, or reset elsewhere).
        seeds = CrossSigningSeeds.generate()
        await _upload_device_signing(api, seeds, user_id, password)
        await _sign_own_device(api, seeds, user_id, device_id, identity_keys)
        if verify_device_chain(await api.query(user_id), user_id, device_id) != public_key(
            seeds.master
        ):
            raise CrossSigningError("the homeserver does not show our device as cross-signed")
        log.info("matrix cross-signing: bootstrapped")
        return seeds
    except aiohttp.ClientError as exc:
        raise CrossSigningError(f"homeserver unreachable during cross-signing: {exc}") from exc
    finally:
        if own_http:
            await session.close()
