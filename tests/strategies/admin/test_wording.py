"""Issue 12, point 13: the back office says everything in the interface language, in the
merchant's words, with one money and one date format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import django
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

ADMIN_JS = Path(django.__file__).parent / "contrib" / "admin" / "static" / "admin" / "js"


def _catalog(response) -> dict:
    """The ``newcatalog`` object of a JavaScriptCatalog response."""
    text = response.content.decode()
    body = text[text.index("const newcatalog = ") + len("const newcatalog = ") :]
    return json.loads(body[: body.index("};") + 1])


def test_every_string_of_the_product_chooser_is_chinese(owner_client):
    # The strategy form's product chooser is the admin's SelectFilter2.js (filter_horizontal):
    # each of its gettext() strings must be in the catalogue admin:jsi18n serves in Chinese.
    source = (ADMIN_JS / "SelectFilter2.js").read_text()
    wanted = {
        m.group(2).replace('\\"', '"')
        for m in re.finditer(r"\bgettext\(\s*(['\"])((?:\\.|(?!\1).)*)\1", source)
    }
    assert "Choose all %s" in wanted  # the regex reads the script
    catalog = _catalog(owner_client.get(reverse("admin:jsi18n")))
    missing = sorted(w for w in wanted if not catalog.get(w))
    assert missing == []
    assert catalog["Choose all %s"] == "全选%s"


def test_the_chooser_stays_english_in_english(owner_client):
    owner_client.cookies["django_language"] = "en"
    assert "全选" not in owner_client.get(reverse("admin:jsi18n")).content.decode()
