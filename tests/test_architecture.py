"""The layering DESIGN.md promises, checked on the source: handlers/ is
channel-neutral and SQL-free, only store/ speaks SQL, domain/ is the leaf
vocabulary, and store/ and bot/channels/ lean on nothing of ours above them."""

import ast
import sys
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
    for folder in ("bot", "handlers", "domain"):
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


# ------------------------------------------------- which of our packages a package may use

OURS = {"bot", "handlers", "store", "domain"}
"""Our top-level packages (tests and bench only ever import them, never the reverse)."""


def module_name(path: Path, root: Path = ROOT) -> str:
    """``store/outbox.py`` → ``store.outbox``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module an import statement anywhere in the file names (also inside
    functions), relative imports resolved against the file's package; for
    ``from x import y`` both ``x`` and ``x.y`` (``y`` may be a module)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[: len(parts) - (node.level - 1)]
                assert len(base_parts) == len(parts) - (node.level - 1) and base_parts, \
                    f"{path}: relative import beyond the top-level package"
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def ours_outside(folder: str, allowed: tuple[str, ...],
                 root: Path = ROOT) -> dict[str, list[str]]:
    """Modules of ours that files under ``folder`` import although they are
    not in (or under) one of the ``allowed`` packages."""
    offenders: dict[str, list[str]] = {}
    for p in sorted((root / folder).rglob("*.py")):
        bad = sorted(m for m in imported_modules(p, root) if m.split(".")[0] in OURS
                     and not any(m == a or m.startswith(a + ".") for a in allowed))
        if bad:
            offenders[str(p.relative_to(root))] = bad
    return offenders


def test_import_scan_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Guard: the scan must catch imports inside functions and relative ones."""
    pkg = tmp_path / "store" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "store" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from .. import models\n")
    (pkg / "mod.py").write_text(
        "import os\n"
        "def f():\n    from handlers.core import Ctx\n"
        "from . import sibling\nfrom ..outbox import x\nimport bot.app as a\n")
    assert imported_modules(pkg / "mod.py", tmp_path) >= {
        "os", "handlers.core", "handlers.core.Ctx", "store.sub", "store.sub.sibling",
        "store.outbox", "store.outbox.x", "bot.app"}
    assert imported_modules(pkg / "__init__.py", tmp_path) == {"store", "store.models"}
    assert ours_outside("store", ("store",), tmp_path) == {
        "store/sub/mod.py": ["bot.app", "handlers.core", "handlers.core.Ctx"]}


def test_domain_imports_nothing_of_ours() -> None:
    """The vocabulary is the leaf every other package stands on."""
    assert ours_outside("domain", ("domain",)) == {}


def test_domain_needs_only_the_standard_library() -> None:
    """Anything may import the vocabulary, so it drags no library along."""
    offenders = {str(p.relative_to(ROOT)): sorted(found) for p in (ROOT / "domain").rglob("*.py")
                 if (found := imported_roots(p) - set(sys.stdlib_module_names) - {"domain"})}
    assert offenders == {}


def test_store_imports_only_store_and_domain() -> None:
    """Persistence sits under the conversation: it never reaches up into it."""
    assert ours_outside("store", ("store", "domain")) == {}


def test_channels_import_only_channels_and_domain() -> None:
    """A channel is a thin adapter: it knows the vocabulary and its own kind,
    not the conversation, the config or the app."""
    assert ours_outside("bot/channels", ("bot.channels", "domain")) == {}


# ------------------------------------------------------------ the module graph

def our_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of ours, by dotted name."""
    return {module_name(p, root): p for folder in sorted(OURS)
            for p in sorted((root / folder).rglob("*.py"))}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the modules of ours it imports (anywhere in the file).
    ``from pkg import name`` counts as importing ``pkg.name`` when that is a
    module, else ``pkg``; a package's ``__init__`` is the package itself."""
    modules = our_modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in imported_modules(path, root) if m in modules} - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


STEP_MODULES = {"handlers.employee", "handlers.confidant", "handlers.admin",
                "handlers.appointments", "handlers.declare", "handlers.timers"}
"""What the router runs; they stand on `handlers.context` and shared helpers."""


def test_the_web_admin_console_reaches_only_the_admin_service() -> None:
    """The admin console's pages get the admin service and nothing else of
    the store or the conversation: they cannot ask for a case, a message or
    a note, because nothing they import could fetch one."""
    assert ours_outside("bot/webadmin", ("bot.webadmin", "handlers.administration",
                                         "handlers.i18n", "domain")) == {}


def test_only_the_router_imports_the_steps() -> None:
    """A step never calls another role's step or the router: so a change to
    one role's steps cannot reach into another's, and the import graph
    stays a tree a newcomer can read from the router down."""
    offenders = {name: sorted(deps & STEP_MODULES)
                 for name, deps in import_graph().items()
                 if name != "handlers.router" and deps & STEP_MODULES}
    assert offenders == {}


def test_no_import_cycle_between_our_modules() -> None:
    assert cycles(import_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    """Guard: a finder that never reports would make the test above pass vacuously."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


# ------------------------------------------------------------ one direction

LAYERS = ("domain", "store", "handlers", "bot")
"""``bot → handlers → store → domain``: a package may import its own modules
and those of the packages before it in this tuple, never one after it."""


def upward_imports(root: Path = ROOT) -> dict[str, list[str]]:
    """Imports of ours that run against the direction, per module."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    offenders: dict[str, list[str]] = {}
    for module, deps in import_graph(root).items():
        bad = sorted(d for d in deps if rank[d.split(".")[0]] > rank[module.split(".")[0]])
        if bad:
            offenders[module] = bad
    return offenders


def test_imports_run_one_way() -> None:
    """Every import of ours, also inside functions and relative ones."""
    assert set(LAYERS) == OURS
    assert upward_imports() == {}


def test_direction_check_catches_an_upward_import(tmp_path: Path) -> None:
    """Guard: a check that sees nothing would pass vacuously."""
    for package in LAYERS:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "store" / "models.py").write_text("def f():\n    from handlers import steps\n")
    (tmp_path / "handlers" / "steps.py").write_text("from store import models\n")
    (tmp_path / "bot" / "app.py").write_text("from handlers.steps import run\n")
    assert upward_imports(tmp_path) == {"store.models": ["handlers", "handlers.steps"]}


# ------------------------------------------------------------ small modules

MAX_LINES = 500

BEING_SPLIT: dict[str, str] = {
}
"""Modules over `MAX_LINES` allowed for now, each with the reason.  This list
may only shrink: a module that is split must leave it (the test below fails
while an entry is no longer needed), and nothing new joins it."""

NOT_MODULES_ONE_EDITS = ("store/migrations/versions/",)
"""Migrations are history: once released they are never edited, so their
length says nothing about the code a newcomer works in."""


def long_modules(root: Path = ROOT) -> dict[str, int]:
    """Modules of ours over `MAX_LINES` lines."""
    found = {}
    for folder in sorted(OURS):
        for p in sorted((root / folder).rglob("*.py")):
            rel = p.relative_to(root).as_posix()
            if rel.startswith(NOT_MODULES_ONE_EDITS):
                continue
            lines = len(p.read_text("utf-8").splitlines())
            if lines > MAX_LINES:
                found[rel] = lines
    return found


def test_no_module_of_ours_is_over_500_lines() -> None:
    """Small modules whose names say what they hold."""
    assert {k: v for k, v in long_modules().items() if k not in BEING_SPLIT} == {}


def test_the_allow_list_only_shrinks() -> None:
    """An entry whose module got short (or went) must leave the list."""
    assert sorted(set(BEING_SPLIT) - set(long_modules())) == []
