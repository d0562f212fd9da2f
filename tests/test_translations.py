"""The merchant interface is Chinese by default: the zh-hans catalogue must be complete and the
compiled catalogue must match its source."""

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
COMPILED = CATALOGUE.with_suffix(".mo")
SOURCE_DIRS = ("atomsite", "strategies", "monitoring", "notifications", "templates")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> polib.POFile:
    """The catalogue makemessages would produce from the code as it is now."""
    work = tmp_path_factory.mktemp("messages")
    for name in SOURCE_DIRS:
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "manage.py", work / "manage.py")
    (work / "locale").mkdir()
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-location", "-v", "0"],
        cwd=work,
        check=True,
        env={"DEBUG": "true", "PATH": "/usr/bin:/bin", "DATABASE_URL": "sqlite:///:memory:"},
    )
    return polib.pofile(str(work / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))


def test_every_merchant_visible_string_has_a_chinese_translation(extracted):
    committed = polib.pofile(str(CATALOGUE))
    translated = {
        (entry.msgctxt, entry.msgid): entry
        for entry in committed
        if entry.translated() and not entry.obsolete
    }
    missing = [entry.msgid for entry in extracted if (entry.msgctxt, entry.msgid) not in translated]
    assert missing == [], f"{len(missing)} strings have no zh-hans translation: {missing[:20]}"


def test_plural_and_format_placeholders_survive_translation():
    for entry in polib.pofile(str(CATALOGUE)):
        if not entry.translated() or entry.obsolete:
            continue
        if "python-format" in entry.flags and not entry.msgid_plural:
            for placeholder in _placeholders(entry.msgid):
                assert placeholder in entry.msgstr, (entry.msgid, entry.msgstr)


def test_the_compiled_catalogue_is_not_stale(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", str(fresh), str(CATALOGUE)], check=True)
    assert COMPILED.exists(), "run `make messages` (make test does it)"
    assert polib.mofile(str(fresh)) == polib.mofile(str(COMPILED)) or _same_entries(
        fresh, COMPILED
    ), "locale/zh_Hans/LC_MESSAGES/django.mo is stale: run `make messages`"


def _same_entries(left: Path, right: Path) -> bool:
    def entries(path: Path) -> set[tuple[str, str]]:
        return {(e.msgid, e.msgstr) for e in polib.mofile(str(path))}

    return entries(left) == entries(right)


def _placeholders(text: str) -> list[str]:
    import re

    return re.findall(r"%\([a-z_]+\)[sd]|\{[a-z_]*\}", text)
