"""Shop A's staff on every admin URL of shop B's objects: 403 or 404; dropdowns and filters list
only shop A's rows; a forged foreign id is a form error (RELIABILITY.md 19)."""

import json
import re

import pytest
from django.urls import reverse

from strategies.models import Strategy
from tests.factories import make_order, make_product, make_request, make_strategy

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop_b_data(other_shop):
    strategy = make_strategy(shop=other_shop, name="B secret strategy")
    strategy.name = "B renamed"
    strategy.save()
    second = make_strategy(shop=other_shop, name="B second")
    product = make_product(shop=other_shop, product_id="PB1", title="B product")
    order = make_order(shop=other_shop, order_id="OD-B-1")
    request = make_request(shop=other_shop, order=order, aftersale_id="AS-B-1")
    return {
        "strategy": strategy,
        "second": second,
        "version": strategy.history.first().history_id,
        "product": product,
        "order": order,
        "request": request,
    }


def _urls(b, other_shop):
    s, v = b["strategy"], b["version"]
    shop_q = f"shop={other_shop.pk}"
    urls = [
        ("get", reverse("admin:strategies_strategy_change", args=[s.pk])),
        ("post", reverse("admin:strategies_strategy_change", args=[s.pk])),
        ("get", reverse("admin:strategies_strategy_delete", args=[s.pk])),
        ("post", reverse("admin:strategies_strategy_delete", args=[s.pk])),
        ("get", reverse("admin:strategies_strategy_history", args=[s.pk])),
        ("get", reverse("admin:strategies_strategy_simple_history", args=[s.pk, v])),
        ("post", reverse("admin:strategies_strategy_simple_history", args=[s.pk, v])),
        (
            "get",
            reverse("admin:strategies_strategy_changelist") + f"?scenario={s.scenario}&id={s.pk}",
        ),
        (
            "get",
            reverse("admin:strategies_strategy_changelist")
            + f"?scenario={s.scenario}&id__in={s.pk}",
        ),
        (
            "get",
            reverse("admin:strategies_strategy_changelist") + f"?scenario={s.scenario}&{shop_q}",
        ),
        ("get", reverse("admin:strategies_strategy_add") + f"?scenario={s.scenario}&{shop_q}"),
        ("get", reverse("admin:strategies_strategy_template") + f"?{shop_q}"),
        ("post", reverse("admin:strategies_strategy_template") + f"?{shop_q}"),
        ("get", reverse("admin:strategies_strategy_export") + f"?{shop_q}"),
        ("get", reverse("admin:strategies_strategy_change", args=[s.pk]) + "?_popup=1"),
        ("get", reverse("admin:strategies_product_change", args=[b["product"].pk])),
        ("get", reverse("admin:strategies_product_history", args=[b["product"].pk])),
        ("get", reverse("admin:strategies_product_delete", args=[b["product"].pk])),
        ("get", reverse("admin:strategies_order_change", args=[b["order"].pk])),
        ("get", reverse("admin:strategies_order_history", args=[b["order"].pk])),
        ("get", reverse("admin:strategies_aftersalerequest_change", args=[b["request"].pk])),
        ("get", reverse("admin:strategies_aftersalerequest_history", args=[b["request"].pk])),
        ("get", reverse("admin:strategies_shop_change", args=[other_shop.pk])),
        ("get", reverse("admin:strategies_shop_history", args=[other_shop.pk])),
        ("get", reverse("admin:strategies_membership_changelist")),
    ]
    return urls


def test_every_admin_url_of_another_shops_objects_is_403_or_404(as_owner, other_shop, shop_b_data):
    for method, url in _urls(shop_b_data, other_shop):
        response = getattr(as_owner, method)(
            url, {"per_request_cap": "10.00"} if method == "post" else None
        )
        assert response.status_code in (403, 404), (method, url, response.status_code)
    # Nothing of B was changed, and A got nothing from the template URL.
    strategy = Strategy.objects.get(pk=shop_b_data["strategy"].pk)
    assert strategy.name == "B renamed"
    assert not Strategy.objects.exclude(shop=other_shop).exists()


def test_reorder_with_shop_b_in_the_url_is_refused(as_owner, other_shop, shop_b_data):
    s, second = shop_b_data["strategy"], shop_b_data["second"]
    url = reverse("admin:strategies_strategy_sortable_update")
    for query in (f"?scenario={s.scenario}&shop={other_shop.pk}", f"?scenario={s.scenario}"):
        response = as_owner.post(
            url + query,
            json.dumps({"updatedItems": [[second.pk, 1], [s.pk, 2]]}),
            content_type="application/json",
        )
        assert response.status_code in (400, 403, 404)
    assert Strategy.objects.get(pk=s.pk).position == 1
    assert Strategy.objects.get(pk=second.pk).position == 2


def test_delete_selected_ignores_another_shops_ids(as_owner, shop, shop_b_data):
    mine, foreign = make_strategy(shop=shop), shop_b_data["strategy"]
    url = reverse("admin:strategies_strategy_changelist") + "?scenario=post_shipment_refund"
    as_owner.post(
        url,
        {"action": "delete_selected", "_selected_action": [mine.pk, foreign.pk], "post": "yes"},
    )
    assert not Strategy.objects.filter(pk=mine.pk).exists()
    assert Strategy.objects.filter(pk=foreign.pk).exists()


def test_status_actions_ignore_another_shops_ids(as_owner, shop, shop_b_data):
    mine = make_strategy(shop=shop)
    foreign = shop_b_data["strategy"]
    as_owner.post(
        reverse("admin:strategies_strategy_changelist") + "?scenario=post_shipment_refund",
        {
            "action": "make_active",
            "_selected_action": [mine.pk, foreign.pk],
            "index": 0,
            "atom_confirm": "yes",
        },
    )
    assert Strategy.objects.get(pk=mine.pk).status == "active"
    assert Strategy.objects.get(pk=foreign.pk).status == "inactive"


def test_the_lists_show_only_the_shops_own_rows(as_owner, shop, shop_b_data):
    mine = make_request(shop=shop, aftersale_id="AS-A-1")
    make_product(shop=shop, product_id="PA1")
    make_strategy(shop=shop, name="A strategy")
    pages = {
        "strategies": reverse("admin:strategies_strategy_changelist")
        + "?scenario=post_shipment_refund",
        "products": reverse("admin:strategies_product_changelist"),
        "orders": reverse("admin:strategies_order_changelist"),
        "requests": reverse("admin:strategies_aftersalerequest_changelist"),
        "shops": reverse("admin:strategies_shop_changelist"),
    }
    for name, url in pages.items():
        html = as_owner.get(url).content.decode()
        assert "B secret strategy" not in html and "B renamed" not in html, name
        # As whole words: the CSRF token is random letters and digits and may hold "PB1".
        for foreign in ("PB1", "OD-B-1", "AS-B-1"):
            assert not re.search(rf"(?<![A-Za-z0-9]){foreign}(?![A-Za-z0-9])", html), name
        assert "Shop B" not in html, name  # no shop filter listing other shops
    html = as_owner.get(pages["requests"]).content.decode()
    assert mine.aftersale_id in html
    # Searching for B's ids finds nothing either.
    html = as_owner.get(pages["requests"], {"q": "AS-B-1"}).content.decode()
    assert "AS-B-1</a>" not in html


def test_the_product_dropdown_lists_only_the_shops_products(as_owner, shop, shop_b_data):
    make_product(shop=shop, product_id="PA1", title="A product")
    html = as_owner.get(
        reverse("admin:strategies_strategy_add") + "?scenario=post_shipment_refund"
    ).content.decode()
    assert "PA1" in html
    assert "PB1" not in html and "B product" not in html


def test_a_forged_product_id_of_another_shop_is_a_form_error(as_owner, shop, shop_b_data):
    mine = make_strategy(shop=shop, name="Mine")
    data = {
        "name": "Mine",
        "status": "inactive",
        "covers_shipped": "on",
        "covers_received": "on",
        "daily_cap": "100.00",
        "risk_control": "on",
        "products": [shop_b_data["product"].pk],
    }
    response = as_owner.post(reverse("admin:strategies_strategy_change", args=[mine.pk]), data)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert mine.products.count() == 0
    response = as_owner.post(
        reverse("admin:strategies_strategy_add") + "?scenario=post_shipment_refund", data
    )
    assert response.status_code == 200
    assert Strategy.objects.filter(shop=shop).count() == 1


def test_staff_never_see_the_api_secret(as_owner, shop):
    html = as_owner.get(reverse("admin:strategies_shop_change", args=[shop.pk])).content.decode()
    assert shop.name in html
    assert shop.api_secret not in html
