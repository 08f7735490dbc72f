"""Which devices the bot encrypts for, and the key traffic that keeps
end-to-end encryption working between syncs.

Trust policy (config ``matrix.trust``):

* ``all``  — every device of every room member is trusted for encryption.
* ``tofu`` — a user's devices are trusted the first time the bot sees that
  user.  When a *new* device shows up later for a user already known, it is
  trusted too (an employee who changes phone must not be cut off, and the bot
  has no interactive verification), but the bot posts a warning notice in
  every room it shares with that user, naming the new device, so a stolen
  login does not go unnoticed (`RoomNotices.warn_new_devices`).

Verification is stored by nio, so it survives restarts.
"""

from __future__ import annotations

from typing import Literal

from nio import MatrixRoom

from bot.channels.matrix.connection import Connection

TrustPolicy = Literal["tofu", "all"]

NewDevices = dict[str, set[str]]
"""User id → ids of devices the ``tofu`` policy trusted although the user was
already known: what the bot warns about."""


class DeviceTrust:
    """Applies the trust policy to the devices of the rooms the bot is in."""

    def __init__(self, connection: Connection, policy: TrustPolicy) -> None:
        self._connection = connection
        self.policy = policy

    def apply(self, room: MatrixRoom) -> dict[str, list[str]]:
        """Trust the devices the policy accepts; return the new devices of users we
        already knew (``tofu`` warns about those)."""
        client = self._connection.client
        fresh: dict[str, list[str]] = {}
        for user_id in set(room.users) | set(room.invited_users):
            devices = list(client.device_store.active_user_devices(user_id))
            pending = [d for d in devices if not d.verified and not d.blacklisted]
            if not pending:
                continue
            known = any(d.verified for d in devices)
            for device in pending:
                client.verify_device(device)
            if self.policy == "tofu" and known and user_id != self._connection.user_id:
                fresh[user_id] = [d.id for d in pending]
        return fresh

    def apply_everywhere(self) -> NewDevices:
        """Run the policy over every encrypted room; the new devices to warn about."""
        client = self._connection.client
        warnings: NewDevices = {}
        for room in list(client.rooms.values()):
            if room.encrypted:
                for user_id, new_devices in self.apply(room).items():
                    warnings.setdefault(user_id, set()).update(new_devices)
        return warnings


async def exchange_keys(connection: Connection) -> None:
    """What nio's sync_forever does between syncs: keys and to-device messages."""
    client = connection.client
    if client.should_upload_keys:
        await client.keys_upload()
    if client.should_query_keys:
        await client.keys_query()
    if client.should_claim_keys:
        await client.keys_claim(client.get_users_for_key_claiming())
    await client.send_to_device_messages()
