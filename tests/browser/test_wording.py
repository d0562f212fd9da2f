"""Issue 12, point 13 in the browser: what the merchant sees is laid out and worded in the
interface language (the login page's language menu, the product chooser in Chinese)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.factories import make_product

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("language_cookie", ["zh-hans"])
@pytest.mark.parametrize("width", [1366, 1920, 800])
def test_the_login_pages_language_label_stays_on_one_line(page: Page, live_server, width):
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_server.url}/admin/login/")
    label = page.locator("#atom-language label")
    assert label.inner_text() == "语言"
    box = label.bounding_box()
    line = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('#atom-language label'))"
        ".lineHeight) || 0"
    )
    # One line: the label is wider than tall and no taller than one line of its text.
    assert box is not None and box["width"] > box["height"], box
    assert line == 0 or box["height"] <= line * 1.5, (box, line)
    assert box["x"] + box["width"] <= width, box  # and not pushed out of the page


@pytest.mark.parametrize("language_cookie", ["zh-hans"])
def test_the_product_chooser_speaks_chinese(login, owner, shop, live_server):
    make_product(shop=shop, product_id="P1", title="茶叶")
    page = login(owner)
    page.goto(f"{live_server.url}/admin/strategies/strategy/add/?scenario=post_shipment_refund")
    chooser = page.locator(".selector")
    chooser.wait_for()
    text = " ".join(
        [chooser.inner_text()]
        + [
            chooser.locator(f"[{attribute}]").first.get_attribute(attribute) or ""
            for attribute in ("title", "placeholder")
        ]
    )
    assert "商品" in text and "全选" in text, text
    for english in ("Choose", "Remove", "Available", "Chosen", "Filter", "click to"):
        assert english not in text, (english, text)
