"""The layering DESIGN.md promises, checked on the source: handlers/ is
channel-neutral and SQL-free, and only store/ speaks SQL."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_LIBS = {"telegram", "nio", "aiohttp", "prometheus_client"}
SQL_LIBS = {"sqlalchemy", "aiosqlite", "asyncpg", "alembic"}


HARMLESS = {"sqlalchemy.exc", "sqlalchemy.engine"}
"""Error classes and URL parsing: naming a database is not talking SQL to it."""


def imported_roots(path: Path, allow: set[str] | None = None) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names
                         if alias.name not in (allow or set()))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module not in (allow or set()):
                roots.add(node.module.split(".")[0])
    return roots


def test_handlers_never_import_a_platform_or_sql_library() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(imported_roots(p) & (PLATFORM_LIBS | SQL_LIBS))
        for p in (ROOT / "handlers").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_store_speaks_sql() -> None:
    offenders = {}
    for folder in ("bot", "handlers"):
        for p in (ROOT / folder).rglob("*.py"):
            found = imported_roots(p, HARMLESS) & SQL_LIBS
            if found:
                offenders[str(p.relative_to(ROOT))] = sorted(found)
    assert offenders == {}


def test_store_knows_no_platform() -> None:
    offenders = {}
    for p in (ROOT / "store").rglob("*.py"):
        found = imported_roots(p) & PLATFORM_LIBS
        if found:
            offenders[str(p.relative_to(ROOT))] = sorted(found)
    assert offenders == {}
