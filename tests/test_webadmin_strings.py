"""The admin console's strings: every key its templates and code ask for
exists (``handlers/content/ui-webadmin.*.toml``; the parity of nl, fr and en
is checked with all other strings in test_ui_strings), and every key of the
file is used somewhere, so no text is left behind that no page shows."""

from __future__ import annotations

import re
from pathlib import Path

import bot.webadmin
from bot.webadmin import absences_pages, confidants_pages, rooms_pages, rota_pages
from handlers.i18n import load_strings

FOLDER = Path(bot.webadmin.__file__).parent
PREFIX = "webadmin."
DYNAMIC = ("nav.", "figures.row_")
"""Keys built from a value (``"nav." + section``, ``f"figures.row_{value}"``)."""
LOOKUP = re.compile(r"""\b(?:view\.)?t\(\s*["']([a-z_][a-z0-9_.-]*)["']""")
FULL_LOOKUP = re.compile(r"""\b(?:view\.)?tt\(\s*["']([a-z_][a-z0-9_.-]*)["']""")
QUOTED = re.compile(r"""["']([a-z_][a-z0-9_.-]*)["']""")


def sources() -> list[tuple[Path, str]]:
    files = sorted(FOLDER.glob("*.py")) + sorted((FOLDER / "templates").glob("*"))
    return [(p, p.read_text("utf-8")) for p in files]


def test_every_key_asked_for_exists() -> None:
    en = load_strings("en")
    missing = []
    for module in (absences_pages, confidants_pages, rooms_pages, rota_pages):
        missing += [f"{module.__name__}.DONE: {key}" for key in module.DONE.values()
                    if PREFIX + key not in en]
    for path, text in sources():
        for key in LOOKUP.findall(text):
            if key.endswith("."):
                continue  # built from a value: see DYNAMIC
            if PREFIX + key not in en:
                missing.append(f"{path.name}: {key}")
        for key in FULL_LOOKUP.findall(text):
            if not key.endswith(".") and key not in en:
                missing.append(f"{path.name}: {key}")
    assert not missing, missing


def test_the_scan_sees_the_lookups() -> None:
    """Guard: a scan that found nothing would make the test above pass vacuously."""
    found = {key for _, text in sources() for key in LOOKUP.findall(text)}
    assert {"rota.title", "confidants.attest", "figures.marks", "login.intro"} <= found


def test_every_key_is_used() -> None:
    quoted = {key for _, text in sources() for key in QUOTED.findall(text)}
    unused = sorted(key for key in load_strings("en") if key.startswith(PREFIX)
                    and key[len(PREFIX):] not in quoted
                    and not key[len(PREFIX):].startswith(DYNAMIC))
    assert not unused, unused
