"""The back office works offline: no template loads a script, style sheet, font or image from
another host (the browser tests also fail on any request that leaves the server)."""

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
TEMPLATE_DIRS = ("templates", "strategies", "monitoring", "notifications", "atomsite")
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|srcset|action)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:@import\s+["'](?:https?:)?//)""",
    re.IGNORECASE,
)


def templates() -> list[Path]:
    return sorted(
        path for name in TEMPLATE_DIRS for path in (ROOT / name).rglob("*.html") if path.is_file()
    )


def test_it_checks_the_admin_templates():
    names = {path.name for path in templates()}
    assert {"base_site.html", "strategy_change_list.html", "consumption.html"} <= names


def test_no_template_loads_anything_from_another_host():
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in templates()
        for match in EXTERNAL.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_pattern_catches_a_cdn():
    assert EXTERNAL.search('<script src="https://cdn.example.com/x.js">')
    assert EXTERNAL.search("<link href='//fonts.example.com/css'>")
    assert EXTERNAL.search("background: url(https://img.example.com/a.png)")
    assert not EXTERNAL.search('<svg xmlns="http://www.w3.org/2000/svg">')
