"""The ``confidant`` command: set-up commands, exit codes, one-line errors.

Commands run in-process through `bot.cli.main` (fast) on a temporary config
with SQLite; a few run as ``python -m bot`` to prove the entry point.  The
helpers here (`CliEnv`, `cli_env`) are shared with the other CLI test files.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import stat
import subprocess
import sys
import types
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.cli import main
from bot.config import load_config
from store.crypto import load_master_key
from store.migrate import current_revision, head_revision
from store.store import Store, Tx

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def one_line_error(self) -> str:
        """The error output, checked to be exactly one line and no traceback."""
        assert self.rc == 1, (self.rc, self.out, self.err)
        assert "Traceback" not in self.err
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        return lines[0]


def run_main(*argv: str) -> Result:
    """``confidant ARGV`` in this process, capturing what it prints."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return Result(rc, out.getvalue(), err.getvalue())


@dataclass
class CliEnv:
    folder: Path
    config: Path

    def __call__(self, *argv: str) -> Result:
        """Run a command against this environment's config."""
        return run_main("--config", str(self.config), *argv)

    @property
    def key_file(self) -> Path:
        return self.folder / "confidant-data" / "master.key"

    @property
    def url(self) -> str:
        return load_config(self.config).store.url

    def with_store(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``work`` in one store transaction with the current key file."""

        async def go() -> T:
            store = Store.open(self.url, load_master_key(self.key_file))
            try:
                async with store.tx() as tx:
                    return await work(tx)
            finally:
                await store.close()

        return asyncio.run(go())


def make_env(folder: Path, *, init: bool = True) -> CliEnv:
    """A copy of config.example.toml in ``folder``, optionally initialised."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    shutil.copy(REPO / "config.example.toml", config)
    env = CliEnv(folder, config)
    if init:
        result = env("init")
        assert result.rc == 0, result.err
    return env


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliEnv]:
    """An initialised temporary installation; the OS user is "hr-anna"."""
    monkeypatch.delenv("CONFIDANT_CONFIG", raising=False)
    monkeypatch.setenv("LOGNAME", "hr-anna")
    monkeypatch.chdir(tmp_path)
    yield make_env(tmp_path / "site")


def test_check_config_on_example_after_init(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFIDANT_CONFIG", raising=False)
    env = make_env(tmp_path, init=False)
    before = env("check-config")
    line = before.one_line_error()
    assert "store.key_file" in line and "confidant init" in line
    assert env("init").rc == 0
    after = env("check-config")
    assert after.rc == 0, after.err
    assert after.err == ""
    assert "ok" in after.out


def test_check_config_prints_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[organisation]\nname = "X"\ntimezone = "Mars/Base"\n'
                      '[privacy]\nretention_dayz = 3\n[telgram]\nenabled = true\n')
    result = run_main("check-config", "--config", str(config))
    assert result.rc == 1
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert any("organisation.timezone" in ln for ln in lines)
    assert any("privacy.retention_dayz" in ln for ln in lines)
    assert any("telgram" in ln and "telegram" in ln for ln in lines)  # did you mean
    assert all(ln.startswith(str(config)) for ln in lines)


def test_init_creates_private_key_and_migrated_database(tmp_path: Path) -> None:
    env = make_env(tmp_path, init=False)
    first = env("init")
    assert first.rc == 0, first.err
    assert "created master key file" in first.out and "created database" in first.out
    mode = stat.S_IMODE(env.key_file.stat().st_mode)
    assert mode == 0o600
    key = env.key_file.read_bytes()
    assert asyncio.run(current_revision(env.url)) == head_revision()
    second = env("init")
    assert second.rc == 0
    assert "kept existing master key file" in second.out and "up to date" in second.out
    assert env.key_file.read_bytes() == key  # idempotent: never a new key over old data


def test_init_refuses_world_readable_key(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    env.key_file.chmod(0o644)
    line = env("init").one_line_error()
    assert "readable by others" in line and "chmod 600" in line


def test_init_with_broken_config_prints_lines(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[organisation\nname = 1\n")
    result = run_main("init", "--config", str(config))
    line = result.one_line_error()
    assert "not valid TOML" in line and "line 1" in line
    assert not (tmp_path / "confidant-data").exists()


def test_migrate(tmp_path: Path) -> None:
    env = make_env(tmp_path, init=False)
    first = env("migrate")
    assert first.rc == 0, first.err
    assert "from revision empty to" in first.out
    assert asyncio.run(current_revision(env.url)) == head_revision()
    assert "up to date" in env("migrate").out


def test_admin_needs_an_initialised_database(tmp_path: Path) -> None:
    env = make_env(tmp_path, init=False)
    env.key_file.parent.mkdir()
    from store.crypto import create_key_file

    create_key_file(env.key_file)
    line = env("admin", "confidant", "list").one_line_error()
    assert "confidant init" in line


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    line = run_main("--config", str(tmp_path / "nope.toml"), "admin", "room", "list") \
        .one_line_error()
    assert "no such file" in line


def test_config_from_environment_then_cwd(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path / "a")
    monkeypatch.setenv("CONFIDANT_CONFIG", str(env.config))
    assert run_main("check-config").rc == 0
    monkeypatch.delenv("CONFIDANT_CONFIG")
    monkeypatch.chdir(tmp_path)
    result = run_main("check-config")  # ./config.toml does not exist here
    assert "config.toml: no such file" in result.one_line_error()
    monkeypatch.chdir(env.folder)
    assert run_main("check-config").rc == 0


def test_config_option_after_the_command(cli_env: CliEnv) -> None:
    result = run_main("admin", "room", "list", "--config", str(cli_env.config))
    assert result.rc == 0, result.err
    assert "no rooms" in result.out


def test_bad_usage_exits_2() -> None:
    assert run_main("frobnicate").rc == 2
    assert run_main("admin", "rota", "add", "--day", "mon").rc == 2
    assert run_main("report", "--from", "2025-01-01", "--to", "2025-02-01",
                    "--format", "xml").rc == 2
    assert run_main().rc == 2
    assert run_main("--help").rc == 0


def test_keys_rotate_keeps_data_readable(cli_env: CliEnv) -> None:
    assert cli_env("admin", "confidant", "add", "--name", "An", "--telegram", "424242",
                   "--matrix", "@an:example.org", "--attest-eligible").rc == 0

    async def declare(tx: Tx) -> None:
        from datetime import UTC, datetime

        await tx.register.add({"what": "a customer shouted at me"}, False, datetime.now(UTC))

    cli_env.with_store(declare)
    old_key = cli_env.key_file.read_bytes()

    result = cli_env("keys", "rotate")
    assert result.rc == 0, result.err
    assert "rotated" in result.out
    new_key = cli_env.key_file.read_bytes()
    assert new_key != old_key and len(new_key) == 32
    assert stat.S_IMODE(cli_env.key_file.stat().st_mode) == 0o600
    assert not list(cli_env.key_file.parent.glob("master.key.*"))

    async def readable(tx: Tx) -> tuple[str | None, list[str]]:
        found = await tx.confidants.find_by_address("telegram", "424242")
        assert found is not None
        addresses = [a.address for a in await tx.confidants.addresses(found)]
        return found.name, addresses

    name, addresses = cli_env.with_store(readable)
    assert name == "An"
    assert sorted(addresses) == ["424242", "@an:example.org"]
    exported = cli_env("admin", "register", "export", "--format", "json")
    assert exported.rc == 0, exported.err
    assert "a customer shouted at me" in exported.out
    assert cli_env("check-config").rc == 0

    # The old key no longer opens this database: it fails in one line.
    cli_env.key_file.write_bytes(old_key)
    line = cli_env("admin", "confidant", "list").one_line_error()
    assert "key file does not match" in line


def test_keys_rotate_without_key_file(cli_env: CliEnv) -> None:
    cli_env.key_file.unlink()
    line = cli_env("keys", "rotate").one_line_error()
    assert "does not exist" in line


def test_run_refuses_on_problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, init=False)
    started: list[Any] = []
    fake = types.ModuleType("bot.app")

    async def run_app(config: Any) -> None:
        started.append(config)

    fake.run_app = run_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bot.app", fake)
    monkeypatch.setattr("bot.cli._setup_logging", lambda level: None)
    line = env("run").one_line_error()
    assert "store.key_file" in line
    assert started == []
    assert env("init").rc == 0
    assert env("run").rc == 0
    assert len(started) == 1 and started[0].organisation.name == "Example organisation"


def test_demo_calls_run_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []
    fake = types.ModuleType("bot.demo")

    async def run_demo(data_dir: Path) -> None:
        seen.append(data_dir)

    fake.run_demo = run_demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bot.demo", fake)
    monkeypatch.setattr("bot.cli._setup_logging", lambda level: None)
    assert run_main("demo", "--data-dir", str(tmp_path / "d")).rc == 0
    assert seen == [tmp_path / "d"]


def test_run_without_app_module_is_one_line(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path)
    monkeypatch.setitem(sys.modules, "bot.app", None)  # import raises ModuleNotFoundError
    monkeypatch.setattr("bot.cli._setup_logging", lambda level: None)
    result = env("run")
    assert result.rc == 1
    assert "Traceback" not in result.err


def _python_m_bot(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CONFIDANT_CONFIG"}
    environ["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "bot", *argv], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=60, check=False)


def test_entry_point_python_m_bot(tmp_path: Path) -> None:
    shutil.copy(REPO / "config.example.toml", tmp_path / "config.toml")
    helped = _python_m_bot("--help", cwd=tmp_path)
    assert helped.returncode == 0 and "check-config" in helped.stdout
    before = _python_m_bot("check-config", cwd=tmp_path)
    assert before.returncode == 1
    assert "Traceback" not in before.stderr and len(before.stderr.strip().splitlines()) == 1
    init = _python_m_bot("init", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "confidant-data" / "master.key").is_file()
    after = _python_m_bot("check-config", cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    refused = _python_m_bot("admin", "confidant", "add", "--name", "An", cwd=tmp_path)
    assert refused.returncode == 1 and "--attest-eligible" in refused.stderr
    assert _python_m_bot("nonsense", cwd=tmp_path).returncode == 2


def test_commands_on_postgresql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                postgres_server: Any) -> None:
    """The same commands on PostgreSQL, the URL given as an env: secret."""
    name = asyncio.run(postgres_server.create_database())
    try:
        monkeypatch.setenv("CONFIDANT_STORE_URL", postgres_server.url(name))
        env = make_env(tmp_path, init=False)
        text = env.config.read_text().replace(
            'url = "sqlite+aiosqlite:///confidant-data/confidant.db"',
            'url = "env:CONFIDANT_STORE_URL"')
        env.config.write_text(text)
        first = env("init")
        assert first.rc == 0, first.err
        assert "created database" in first.out
        assert (postgres_server.admin_url.password or "\0") not in first.out
        assert env("init").rc == 0
        assert env("check-config").rc == 0
        assert env("admin", "confidant", "add", "--name", "An", "--telegram", "99",
                   "--attest-eligible").rc == 0
        assert env("admin", "rota", "add", "--confidant", "An", "--day", "mon", "--start",
                   "09:00", "--end", "10:00").rc == 0
        assert env("keys", "rotate").rc == 0

        async def lookup(tx: Tx) -> str | None:
            found = await tx.confidants.find_by_address("telegram", "99")
            return None if found is None else found.name

        assert env.with_store(lookup) == "An"
        assert "mon" in env("admin", "rota", "show").out
    finally:
        asyncio.run(postgres_server.drop_database(name))


def test_unreachable_database_is_one_line_without_password(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = make_env(tmp_path)
    text = env.config.read_text().replace(
        'url = "sqlite+aiosqlite:///confidant-data/confidant.db"',
        f'url = "postgresql+asyncpg://hr:s3cretpw@127.0.0.1:{port}/confidant"')
    env.config.write_text(text)
    for argv in (("admin", "room", "list"), ("migrate",), ("keys", "rotate"),
                 ("report", "--from", "2025-01", "--to", "2025-02")):
        result = env(*argv)
        line = result.one_line_error()
        assert "s3cretpw" not in line and "s3cretpw" not in result.out, argv


def test_unwritable_data_folder_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root writes anywhere: make the key file's parent a file instead.
        env = make_env(tmp_path, init=False)
        (tmp_path / "confidant-data").write_text("not a folder")
    else:
        env = make_env(tmp_path, init=False)
        tmp_path.chmod(0o500)
    try:
        line = env("init").one_line_error()
        assert "confidant-data" in line
    finally:
        tmp_path.chmod(0o700)
