"""``config.toml`` validation: the shipped example, each malformed case, secrets, paths.

Each problem must come out as one line ``<file as given>: <key path>: <what>``;
the database checks run against real SQLite files and a real PostgreSQL on
127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import tomllib
from pathlib import Path

import pytest

from bot.config import (
    SECTIONS,
    AdminEntry,
    Config,
    ConfigError,
    check_config,
    check_config_async,
    default_config,
    load_config,
    runtime_problems,
)
from store.ping import ping
from tests.support.postgres import PostgresServer

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.toml"
MINIMAL = '[organisation]\nname = "Acme"\n'


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CONFIDANT_* variable from the developer's shell leaks into a test; run in tmp."""
    for name in list(os.environ):
        if name.startswith("CONFIDANT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(text: str, where: Path | None = None) -> Path:
    """Write a config file; returned as a relative path when in the cwd, like a user types it."""
    if where is None:
        Path("config.toml").write_text(text, encoding="utf-8")
        return Path("config.toml")
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(text, encoding="utf-8")
    return where


def make_key(path: Path, mode: int = 0o600) -> Path:
    """A key file like ``confidant init`` leaves it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(32))
    path.chmod(mode)
    return path


def static(text: str) -> list[str]:
    """Problems without the key file and database checks."""
    return check_config(write(text), check_runtime=False)


def one(problems: list[str], key: str) -> str:
    """The single problem line about ``key`` (fails if there is none or several)."""
    hits = [p for p in problems if p.startswith(f"config.toml: {key}: ")]
    assert len(hits) == 1, f"expected one problem for {key}, got {problems}"
    return hits[0]


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the shipped example -------------------------------------------------------------


def test_example_passes_once_init_made_the_key(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "config.toml")
    before = check_config(Path("config.toml"))
    assert before == [
        f"config.toml: store.key_file: {tmp_path}/confidant-data/master.key does not exist "
        '(run "confidant init" to create it)'
    ]
    assert check_config(Path("config.toml"), check_runtime=False) == []
    make_key(tmp_path / "confidant-data" / "master.key")
    assert check_config(Path("config.toml")) == []
    config = load_config(Path("config.toml"))
    assert config.enabled_channels == ["web"]
    assert config.web.host_port == ("127.0.0.1", 8080)
    assert not (tmp_path / "confidant-data" / "confidant.db").exists(), "check must not create"


def test_example_documents_every_key_with_a_comment() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    tomllib.loads(text)
    section = ""
    documented: dict[str, set[str]] = {}
    previous = ""
    for line in text.splitlines():
        header = re.match(r"^#?\s*\[\[?(\w+)\]\]?\s*$", line)
        if header:
            section = header.group(1)
            continue
        key = re.match(r"^#?\s*(\w+)\s*=", line)
        if key and section:
            assert previous.startswith("#"), f"{section}.{key.group(1)} has no comment above"
            documented.setdefault(section, set()).add(key.group(1))
        previous = line.strip() or previous
    models = {**SECTIONS, "admins": AdminEntry}
    for name, model in models.items():
        missing = set(model.model_fields) - documented.get(name, set())
        assert not missing, f"[{name}] lacks {sorted(missing)} in config.example.toml"


# --- malformed files -----------------------------------------------------------------


def test_unparsable_toml_names_the_line() -> None:
    problems = static('[organisation]\nname = "Acme"\nlanguages = ["nl",\ntimezone\n')
    assert len(problems) == 1
    assert problems[0].startswith("config.toml: not valid TOML: ")
    assert re.search(r"line \d+", problems[0])


def test_missing_file_and_binary_file_are_lines_not_tracebacks(tmp_path: Path) -> None:
    assert check_config(Path("nope.toml")) == [
        "nope.toml: no such file (copy config.example.toml and edit it)"
    ]
    Path("bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    [line] = check_config(Path("bin.toml"))
    assert line.startswith("bin.toml: not UTF-8 text")
    with pytest.raises(ConfigError) as err:
        load_config(Path("nope.toml"))
    assert err.value.problems == ["nope.toml: no such file (copy config.example.toml and edit it)"]


def test_unknown_key_suggests_the_close_one() -> None:
    problems = static("whatever = 3\n" + MINIMAL + "[telegram]\nenabeld = true\n[telgram]\nx = 1\n")
    assert one(problems, "telegram.enabeld") == (
        "config.toml: telegram.enabeld: unknown key (did you mean 'enabled'?)"
    )
    assert one(problems, "telgram") == (
        "config.toml: telgram: unknown section (did you mean 'telegram'?)"
    )
    assert one(problems, "whatever") == "config.toml: whatever: unknown key"


def test_unknown_key_in_admin_entry() -> None:
    problems = static(MINIMAL + '[[admins]]\nmatrx = "@hr:example.org"\n')
    assert one(problems, "admins[0].matrx").endswith("unknown key (did you mean 'matrix'?)")


def test_wrong_types_are_named_not_coerced() -> None:
    problems = static(
        MINIMAL
        + '[privacy]\nretention_days = "90"\n[web]\nenabled = "yes"\n'
        + "[logging]\nlevel = 3\n"
    )
    assert one(problems, "privacy.retention_days") == (
        "config.toml: privacy.retention_days: expected a whole number, got a string"
    )
    assert one(problems, "web.enabled") == (
        "config.toml: web.enabled: expected true or false, got a string"
    )
    assert "logging.level: must be 'DEBUG'" in one(problems, "logging.level")


def test_section_given_as_a_value_and_missing_name() -> None:
    problems = static("organisation = 5\n[store]\nkey_file = 7\n")
    assert (
        one(problems, "organisation") == "config.toml: organisation: expected a table, got a number"
    )
    assert one(problems, "store.key_file").startswith(
        "config.toml: store.key_file: expected a path"
    )
    assert static("[organisation]\n") == ["config.toml: organisation.name: missing"]


def test_out_of_range_numbers_and_bad_listen() -> None:
    problems = static(
        MINIMAL + '[privacy]\nretention_days = 0\n[metrics]\nlisten = "localhost"\n'
        "[support]\nresponse_hours = 8\nescalation_hours = 12\n"
    )
    assert one(problems, "privacy.retention_days").endswith("must be at least 1")
    assert "host:port" in one(problems, "metrics.listen")
    assert "more than support.response_hours (8)" in one(problems, "support.escalation_hours")


def test_enabled_telegram_without_token() -> None:
    problems = static(MINIMAL + "[telegram]\nenabled = true\n")
    assert problems == [
        'config.toml: telegram.token: missing (set it, or write "env:CONFIDANT_TELEGRAM_TOKEN")'
    ]


def test_disabled_channels_may_keep_placeholders_and_unset_env() -> None:
    problems = static(
        MINIMAL + '[telegram]\nenabled = false\ntoken = "env:NOT_SET_ANYWHERE"\n'
        '[matrix]\nenabled = false\npassword = "CHANGE-ME"\n'
    )
    assert problems == []


def test_unset_env_variable() -> None:
    problems = static(MINIMAL + '[telegram]\nenabled = true\ntoken = "env:CONFIDANT_TG"\n')
    assert problems == ["config.toml: telegram.token: environment variable CONFIDANT_TG is not set"]


def test_env_secret_is_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIDANT_TG", " 123456789:AAbbCC_dd-ee \n")
    config = load_config(
        write(MINIMAL + '[telegram]\nenabled = true\ntoken = "env:CONFIDANT_TG"\n')
    )
    assert config.telegram.token == "123456789:AAbbCC_dd-ee"
    assert "AAbbCC" not in repr(config), "secrets stay out of repr (and so out of logs)"


def test_file_secret_relative_to_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc" / "confidant"
    (folder / "secrets").mkdir(parents=True)
    (folder / "secrets" / "pw").write_text("  s3cret-pass\n")
    path = write(
        MINIMAL + '[matrix]\nenabled = true\nhomeserver = "http://127.0.0.1:8008"\n'
        'user_id = "@bot:localhost"\npassword = "file:secrets/pw"\n',
        folder / "config.toml",
    )
    config = load_config(path)
    assert config.matrix.password == "s3cret-pass"
    assert config.matrix.access_token is None


def test_unreadable_file_secret() -> None:
    problems = static(MINIMAL + '[telegram]\nenabled = true\ntoken = "file:missing-token"\n')
    line = one(problems, "telegram.token")
    assert "cannot read secret file" in line and "missing-token" in line
    assert "No such file" in line


def test_unedited_example_token_is_refused() -> None:
    problems = static(MINIMAL + '[telegram]\nenabled = true\ntoken = "123456:CHANGE-ME"\n')
    assert problems == [
        "config.toml: telegram.token: still the example value; replace it "
        '(or write "env:CONFIDANT_TELEGRAM_TOKEN")'
    ]


def test_example_marker_through_env_and_in_plain_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIDANT_MX", "change-me")
    problems = static(
        MINIMAL + '[matrix]\nenabled = true\nhomeserver = "https://CHANGE-ME.example"\n'
        'user_id = "@bot:example.org"\naccess_token = "env:CONFIDANT_MX"\n'
    )
    assert "still the example value" in one(problems, "matrix.access_token")
    assert "still the example value" in one(problems, "matrix.homeserver")


def test_words_merely_containing_the_marker_are_fine() -> None:
    assert static('[organisation]\nname = "Exchange Media"\n') == []


def test_malformed_token() -> None:
    problems = static(MINIMAL + '[telegram]\nenabled = true\ntoken = "not a token"\n')
    assert "does not look like a bot token" in one(problems, "telegram.token")
    assert "not a token" not in problems[0], "secrets are never echoed"


def test_webhook_mode_without_url_and_secret() -> None:
    problems = static(MINIMAL + '[telegram]\nenabled = true\ntoken = "1:abc"\nmode = "webhook"\n')
    assert one(problems, "telegram.webhook_url") == (
        'config.toml: telegram.webhook_url: missing (required when mode = "webhook")'
    )
    assert "missing" in one(problems, "telegram.webhook_secret")
    ok = static(
        MINIMAL + '[telegram]\nenabled = true\ntoken = "1:abc"\nmode = "webhook"\n'
        'webhook_url = "https://bot.example.org/tg"\nwebhook_secret = "abc_DEF-123"\n'
    )
    assert ok == []


def test_bad_mode_is_a_literal_error() -> None:
    problems = static(MINIMAL + '[telegram]\nmode = "push"\n')
    assert one(problems, "telegram.mode") == (
        "config.toml: telegram.mode: must be 'polling' or 'webhook', got 'push'"
    )


def test_matrix_without_password_or_access_token() -> None:
    problems = static(
        MINIMAL + '[matrix]\nenabled = true\nhomeserver = "http://127.0.0.1:8008"\n'
        'user_id = "bot"\n'
    )
    assert one(problems, "matrix.password") == (
        "config.toml: matrix.password: missing: give matrix.password or matrix.access_token "
        '(e.g. "env:CONFIDANT_MATRIX_PASSWORD")'
    )
    assert "@confidant:server" in one(problems, "matrix.user_id")


def test_admin_entry_needs_an_id() -> None:
    problems = static(
        MINIMAL + '[[admins]]\ntelegram = 12345\n[[admins]]\n[[admins]]\nmatrix = "hr"\n'
    )
    assert problems == [
        "config.toml: admins[1]: give name, telegram, matrix or web (at least one)",
        'config.toml: admins[2].matrix: expected a Matrix id like "@name:server"',
    ]
    config = load_config(write(MINIMAL + "[[admins]]\ntelegram = 12345\n"))
    assert config.admins[0].telegram == "12345"


def test_unknown_languages() -> None:
    problems = static(
        '[organisation]\nname = "Acme"\nlanguages = ["nl", "de"]\ndefault_language = "en"\n'
    )
    assert one(problems, "organisation.languages[1]") == (
        "config.toml: organisation.languages[1]: unknown language 'de' (supported: nl, fr, en)"
    )
    assert one(problems, "organisation.default_language") == (
        "config.toml: organisation.default_language: 'en' is not in organisation.languages"
    )
    problems = static('[organisation]\nname = "Acme"\ndefault_language = "es"\n')
    assert "unknown language 'es'" in one(problems, "organisation.default_language")


def test_bad_timezone_with_suggestion() -> None:
    problems = static('[organisation]\nname = "Acme"\ntimezone = "Europe/Brusels"\n')
    assert problems == [
        "config.toml: organisation.timezone: unknown timezone 'Europe/Brusels' "
        "(did you mean 'Europe/Brussels'?)"
    ]
    problems = static('[organisation]\nname = "Acme"\ntimezone = "../../etc/passwd"\n')
    assert "unknown timezone" in one(problems, "organisation.timezone")


def test_no_channel_enabled() -> None:
    problems = static(MINIMAL + "[web]\nenabled = false\n")
    assert "no channel is enabled" in one(problems, "web.enabled")


def test_unsupported_database_driver() -> None:
    problems = static(MINIMAL + '[store]\nurl = "sqlite:///x.db"\n')
    assert "write 'sqlite+aiosqlite://…'" in one(problems, "store.url")
    problems = static(MINIMAL + '[store]\nurl = "not a url"\n')
    assert "not a database URL" in one(problems, "store.url")


def test_several_problems_reported_at_once() -> None:
    problems = static(
        '[organisation]\nname = "Acme"\ntimezone = "Mars/Olympus"\nlanguages = ["xx"]\n'
        'default_language = "xx"\n'
        '[telegram]\nenabled = true\nmode = "webhook"\n'
        "[privacy]\nretention_days = true\n"
        "[web]\nlisten = 8080\n"
        "[[admins]]\n"
    )
    keys = {line.split(": ")[1] for line in problems}
    assert {
        "organisation.timezone",
        "organisation.languages[0]",
        "organisation.default_language",
        "telegram.token",
        "telegram.webhook_url",
        "telegram.webhook_secret",
        "privacy.retention_days",
        "web.listen",
        "admins[0]",
    } <= keys
    assert all(line.startswith("config.toml: ") for line in problems)
    with pytest.raises(ConfigError) as err:
        load_config(Path("config.toml"))
    assert err.value.problems == problems


def test_runtime_problems_still_reported_next_to_static_ones(tmp_path: Path) -> None:
    port = free_port()
    path = write(
        '[organisation]\nname = "Acme"\ntimezone = "Nowhere/Land"\n'
        f'[store]\nurl = "postgresql+asyncpg://u:p@127.0.0.1:{port}/db"\n'
    )
    keys = [line.split(": ")[1] for line in check_config(path)]
    assert keys == ["organisation.timezone", "store.key_file", "store.url"]
    assert check_config(path, check_runtime=False) == [check_config(path)[0]]


# --- paths ---------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "deploy"
    (folder / "pages.toml").parent.mkdir(parents=True)
    (folder / "pages.toml").write_text("")
    path = write(
        '[organisation]\nname = "Acme"\ncontent_override = "pages.toml"\n'
        '[store]\nurl = "sqlite+aiosqlite:///data/bot.db"\nkey_file = "keys/master.key"\n'
        '[matrix]\nstore_dir = "mx"\n',
        folder / "config.toml",
    )
    (tmp_path / "elsewhere").mkdir()
    os.chdir(tmp_path / "elsewhere")
    config = load_config(path)
    assert config.organisation.content_override == folder / "pages.toml"
    assert config.store.key_file == folder / "keys" / "master.key"
    assert config.store.url == f"sqlite+aiosqlite:///{folder}/data/bot.db"
    assert config.matrix.store_dir == folder / "mx"
    assert config.source == path


def test_absolute_paths_stay_and_missing_override_is_reported(tmp_path: Path) -> None:
    key = tmp_path / "abs.key"
    config = load_config(write(MINIMAL + f'[store]\nkey_file = "{key}"\n'))
    assert config.store.key_file == key
    problems = static('[organisation]\nname = "Acme"\ncontent_override = "nope.toml"\n')
    assert one(problems, "organisation.content_override") == (
        f"config.toml: organisation.content_override: {tmp_path}/nope.toml does not exist"
    )


# --- runtime checks: key file, database ----------------------------------------------


def test_key_file_missing_and_too_open(tmp_path: Path) -> None:
    path = write(MINIMAL)
    [line] = check_config(path)
    assert line.startswith("config.toml: store.key_file: ") and "does not exist" in line
    key = make_key(tmp_path / "confidant-data" / "master.key", mode=0o644)
    assert check_config(path) == [
        f"config.toml: store.key_file: {key} is readable by group or others (mode 0644); "
        f"run: chmod 600 {key}"
    ]
    key.chmod(0o640)
    assert "mode 0640" in one(check_config(path), "store.key_file")
    key.chmod(0o600)
    assert check_config(path) == []


def test_key_file_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "confidant-data" / "master.key").mkdir(parents=True)
    assert "is not a file" in one(check_config(write(MINIMAL)), "store.key_file")


def test_sqlite_folder_that_cannot_be_created(tmp_path: Path) -> None:
    make_key(tmp_path / "k.key")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    problems = check_config(
        write(MINIMAL + '[store]\nkey_file = "k.key"\nurl = "sqlite+aiosqlite:///blocker/d/x.db"\n')
    )
    assert one(problems, "store.url") == (
        f"config.toml: store.url: cannot create {tmp_path}/blocker/d/x.db: "
        f"{tmp_path}/blocker is not a folder"
    )


async def test_sqlite_ping_reads_without_creating(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "new.db"
    assert await ping(f"sqlite+aiosqlite:///{db}") is None
    assert not db.parent.exists()
    real = tmp_path / "real.db"
    with sqlite3.connect(real) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    assert await ping(f"sqlite+aiosqlite:///{real}") is None
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite database, just bytes " * 100)
    reason = await ping(f"sqlite+aiosqlite:///{junk}")
    assert reason is not None and reason.startswith(f"cannot open the SQLite database {junk}")
    assert await ping("nonsense") == "not a database URL"


async def test_unreachable_postgres_is_one_line_without_password(tmp_path: Path) -> None:
    make_key(tmp_path / "k.key")
    port = free_port()
    path = write(
        MINIMAL + '[store]\nkey_file = "k.key"\n'
        f'url = "postgresql+asyncpg://bot:Hunter2pw@127.0.0.1:{port}/confidant"\n'
    )
    problems = await check_config_async(path)
    line = one(problems, "store.url")
    assert line.startswith(f"config.toml: store.url: cannot connect to 127.0.0.1:{port} (")
    assert "Hunter2pw" not in line and "\n" not in line
    assert check_config(path) == problems, "the sync entry point works inside a running loop"


async def test_postgres_ping_against_a_real_server(
    postgres_server: PostgresServer,
) -> None:
    good = postgres_server.url("postgres")
    assert await ping(good) is None
    admin = postgres_server.admin_url
    # A database named like the password makes the server's own message carry it.
    leaky = admin.set(
        drivername="postgresql+asyncpg", password="Sekr1tWord", database="Sekr1tWord"
    ).render_as_string(hide_password=False)
    reason = await ping(leaky, timeout=10)
    assert reason is not None and "does not exist" in reason
    assert "Sekr1tWord" not in reason and "***" in reason


async def test_env_store_url_is_resolved_and_pinged(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    postgres_server: PostgresServer,
) -> None:
    make_key(tmp_path / "k.key")
    monkeypatch.setenv("CONFIDANT_STORE_URL", postgres_server.url("postgres"))
    path = write(MINIMAL + '[store]\nkey_file = "k.key"\nurl = "env:CONFIDANT_STORE_URL"\n')
    assert await check_config_async(path) == []
    assert load_config(path).store.url == postgres_server.url("postgres")


# --- the embedded default ------------------------------------------------------------


async def test_default_config_is_sqlite_and_web_in_the_data_dir(tmp_path: Path) -> None:
    config = default_config(tmp_path / "data")
    assert isinstance(config, Config)
    assert config.enabled_channels == ["web"]
    assert config.web.listen == "127.0.0.1:8080"
    assert config.store.url == f"sqlite+aiosqlite:///{tmp_path}/data/confidant.db"
    assert config.store.key_file == tmp_path / "data" / "master.key"
    assert config.source is None
    problems = await runtime_problems(config)
    assert problems == [
        f"built-in defaults: store.key_file: {tmp_path}/data/master.key does not exist "
        '(run "confidant init" to create it)'
    ]
    make_key(tmp_path / "data" / "master.key")
    assert await runtime_problems(config) == []


def test_office_hours_are_read_and_checked() -> None:
    """``[rota] office_hours`` is read like the admin commands read days and
    times; a value they would not read is one line naming the key."""
    config = load_config(write(MINIMAL + '[rota]\noffice_hours = "ma-do 8:30-17, vr 8:30-12"\n'))
    assert [d for d, _, _ in config.rota.hours] == [0, 1, 2, 3, 4]
    assert load_config(write(MINIMAL)).rota.office_hours == "mon-fri 09:00-17:00"
    assert load_config(write(MINIMAL + '[rota]\noffice_hours = ""\n')).rota.hours == ()
    assert one(static(MINIMAL + '[rota]\noffice_hours = "weekdays"\n'), "rota.office_hours") \
        .endswith("'weekdays' is not office hours (write e.g. mon-fri 09:00-17:00)")
    assert "the end must be after the start" in one(
        static(MINIMAL + '[rota]\noffice_hours = "mon 17-9"\n'), "rota.office_hours")
    assert one(static(MINIMAL + "[rota]\noffice_hours = 9\n"), "rota.office_hours") \
        .endswith("expected a string (in quotes), got a number")
    assert one(static(MINIMAL + "[rota]\nhours = 'x'\n"), "rota.hours").endswith("unknown key")


def test_an_admin_may_be_only_a_name() -> None:
    config = load_config(write(MINIMAL + '[[admins]]\nname = "Els Janssens"\n'))
    assert config.admins[0].name == "Els Janssens"
    assert one(static(MINIMAL + '[[admins]]\nname = " "\n'), "admins[0].name") \
        .endswith("must be 1 to 80 characters")
