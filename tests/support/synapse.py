"""A real Synapse homeserver on 127.0.0.1 for the Matrix tests.

One server per test session (SQLite, shared-secret registration, relaxed rate
limits, no federation listener).  If it cannot start, the fixture fails with
the tail of Synapse's log: a Matrix test never silently skips.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

_RELAXED = {"per_second": 10000, "burst_count": 100000}


def _free_port() -> int:
    """Ask the kernel for a loopback port nobody uses right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SynapseServer:
    """Handle on the running homeserver: URL, admin helpers, restart."""

    server_name = "localhost"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.shared_secret = secrets.token_hex(24)
        self.db_path = root / "homeserver.db"
        self.log_path = root / "homeserver.log"
        self.config_path = root / "homeserver.yaml"
        self._proc: subprocess.Popen[bytes] | None = None
        self._admin: tuple[str, str] | None = None
        self._write_config()

    # -- lifecycle ---------------------------------------------------------

    def _write_config(self) -> None:
        """Write homeserver.yaml (JSON is valid YAML) and the log config."""
        log_config = {
            "version": 1,
            "formatters": {
                "precise": {"format": "%(asctime)s %(name)s %(levelname)s %(request)s %(message)s"}
            },
            "filters": {
                "context": {"()": "synapse.logging.context.LoggingContextFilter", "request": ""}
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "filters": ["context"],
                }
            },
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        (self.root / "log.config").write_text(json.dumps(log_config))
        cfg: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": f"{self.url}/",
            "pid_file": str(self.root / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(self.db_path)}},
            "log_config": str(self.root / "log.config"),
            "media_store_path": str(self.root / "media_store"),
            "signing_key_path": str(self.root / "localhost.signing.key"),
            "registration_shared_secret": self.shared_secret,
            "macaroon_secret_key": secrets.token_hex(24),
            "form_secret": secrets.token_hex(24),
            "report_stats": False,
            "enable_metrics": False,
            "enable_registration": False,
            "federation_domain_whitelist": [],
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "allow_public_rooms_over_federation": False,
            "bcrypt_rounds": 4,
            "url_preview_enabled": False,
            "presence": {"enabled": False},
            "rc_message": _RELAXED,
            "rc_registration": _RELAXED,
            "rc_login": {"address": _RELAXED, "account": _RELAXED, "failed_attempts": _RELAXED},
            "rc_joins": {"local": _RELAXED, "remote": _RELAXED},
            "rc_joins_per_room": _RELAXED,
            "rc_invites": {"per_room": _RELAXED, "per_user": _RELAXED, "per_issuer": _RELAXED},
            "rc_room_creation": _RELAXED,
            "rc_key_requests": _RELAXED,
            "rc_3pid_validation": _RELAXED,
            "rc_admin_redaction": _RELAXED,
        }
        self.config_path.write_text(json.dumps(cfg, indent=1))

    def _log_tail(self, lines: int = 40) -> str:
        """Last lines of Synapse's own log and its stderr, for a failure message."""
        parts = []
        for p in (self.root / "stderr.log", self.log_path):
            if p.exists():
                parts.append(f"--- {p.name} ---\n" + "\n".join(p.read_text().splitlines()[-lines:]))
        return "\n".join(parts) or "(no log written)"

    def start(self, timeout: float = 60.0) -> None:
        """Start Synapse in its own process group and wait until the client API answers."""
        stderr = (self.root / "stderr.log").open("ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            cwd=self.root,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
        stderr.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                pytest.fail(
                    f"Synapse exited with {self._proc.returncode}:\n{self._log_tail()}",
                    pytrace=False,
                )
            try:
                with urllib.request.urlopen(f"{self.url}/_matrix/client/versions", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"Synapse did not answer within {timeout}s:\n{self._log_tail()}", pytrace=False)

    def stop(self) -> None:
        """SIGTERM the process group and wait for it to exit."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    async def restart(self) -> None:
        """Stop and start again on the same database (simulates a homeserver restart)."""
        import asyncio

        await asyncio.to_thread(self.stop)
        await asyncio.to_thread(self.start)

    # -- helpers -----------------------------------------------------------

    async def register(
        self, username: str, password: str, admin: bool = False
    ) -> tuple[str, str, str]:
        """Create an account through the shared-secret admin API.

        Returns ``(user_id, access_token, device_id)``.
        """
        url = f"{self.url}/_synapse/admin/v1/register"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as r:
                r.raise_for_status()
                nonce = (await r.json())["nonce"]
            mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
            mac.update(
                b"\0".join(
                    [
                        nonce.encode(),
                        username.encode(),
                        password.encode(),
                        b"admin" if admin else b"notadmin",
                    ]
                )
            )
            body = {
                "nonce": nonce,
                "username": username,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            }
            async with http.post(url, json=body) as r:
                data = await r.json()
                if r.status != 200:
                    raise AssertionError(f"register {username}: {r.status} {data}")
        return data["user_id"], data["access_token"], data["device_id"]

    async def admin_token(self) -> str:
        """Access token of a server admin account (created on first use)."""
        if self._admin is None:
            name = "admin-" + secrets.token_hex(4)
            user_id, token, _ = await self.register(name, secrets.token_hex(12), admin=True)
            self._admin = (user_id, token)
        return self._admin[1]

    async def admin_get(self, path: str, **params: str) -> Any:
        """GET an admin (or client) API path with the admin's token; returns JSON."""
        token = await self.admin_token()
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{self.url}{path}",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                data = await r.json()
                if r.status != 200:
                    raise AssertionError(f"GET {path}: {r.status} {data}")
                return data

    async def room_messages(self, room_id: str) -> list[dict[str, Any]]:
        """Every event Synapse stores for a room, via the admin API (oldest first)."""
        from urllib.parse import quote

        data = await self.admin_get(
            f"/_synapse/admin/v1/rooms/{quote(room_id)}/messages", dir="f", limit="1000"
        )
        return list(data["chunk"])

    def db_bytes(self) -> bytes:
        """Raw bytes of the SQLite database and its WAL, to grep for plaintext."""
        out = b""
        for suffix in ("", "-wal", "-journal"):
            p = Path(str(self.db_path) + suffix)
            if p.exists():
                out += p.read_bytes()
        return out


@pytest.fixture(scope="session")
def synapse() -> Iterator[SynapseServer]:
    """A running Synapse for the whole session; fails (never skips) if it cannot start."""
    with tempfile.TemporaryDirectory(prefix="synapse-") as tmp:
        server = SynapseServer(Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()
