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
# Everything at the top level is scanned except these, as in the refresh command:
# manage.py makemessages -l zh_Hans --no-location --ignore=.venv --ignore=bench --ignore=tests ...
NOT_SCANNED = {"bench", "tests", "var", "locale", "docs"}


def _source_dirs() -> list[Path]:
    """Every app and template folder, so a new app's strings are checked without editing here."""
    return [
        path
        for path in sorted(ROOT.iterdir())
        if path.is_dir()
        and not path.name.startswith(".")
        and not path.name.endswith(".egg-info")
        and path.name not in NOT_SCANNED
    ]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> polib.POFile:
    """The catalogue makemessages would produce from the code as it is now."""
    work = tmp_path_factory.mktemp("messages")
    for path in _source_dirs():
        shutil.copytree(path, work / path.name, ignore=shutil.ignore_patterns("__pycache__"))
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


def test_the_catalogue_scans_the_apps_and_templates():
    names = {path.name for path in _source_dirs()}
    assert {"atomsite", "strategies", "monitoring", "notifications", "templates"} <= names


def test_plural_and_format_placeholders_survive_translation():
    catalogue = polib.pofile(str(CATALOGUE))
    assert catalogue.metadata["Plural-Forms"].replace(" ", "") == "nplurals=1;plural=0;"
    checked = 0
    for entry in catalogue:
        if not entry.translated() or entry.obsolete:
            continue
        if not {"python-format", "python-brace-format"} & set(entry.flags):
            continue
        # Chinese has one plural form: it must carry the plural source's placeholders.
        source = entry.msgid_plural or entry.msgid
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for translation in translations:
            assert sorted(_placeholders(source)) == sorted(_placeholders(translation)), (
                entry.msgid,
                translation,
            )
            checked += 1
    assert checked > 0


def test_the_compiled_catalogue_is_not_stale(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", str(fresh), str(CATALOGUE)], check=True)
    assert COMPILED.exists(), "run `make messages` (make test does it)"
    assert polib.mofile(str(fresh)) == polib.mofile(str(COMPILED)) or _same_entries(
        fresh, COMPILED
    ), "locale/zh_Hans/LC_MESSAGES/django.mo is stale: run `make messages`"


def _same_entries(left: Path, right: Path) -> bool:
    def entries(path: Path) -> set[tuple[str | None, str, str, tuple[str, ...]]]:
        return {
            (e.msgctxt, e.msgid, e.msgstr, tuple(e.msgstr_plural.values()))
            for e in polib.mofile(str(path))
        }

    return entries(left) == entries(right)


def _placeholders(text: str) -> list[str]:
    import re

    return re.findall(r"%\([a-z_]+\)[sd]|%%|%[sd]|\{[a-z_]*\}", text)
