"""Ids in admin URLs that are not ids ("²" passes ``str.isdigit()``, a 30-digit number is beyond
bigint): a 404, or an empty list for the operator's shop filter, never a 500."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from strategies.admin.tenancy import parse_id
from tests.factories import make_product, make_strategy

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:strategies_strategy_changelist")
SUPERSCRIPT_TWO = "%C2%B2"  # "²"
ARABIC_INDIC_ONE = "%D9%A1"  # "١"
BEYOND_BIGINT = "9" * 30
NOT_IDS = [SUPERSCRIPT_TWO, ARABIC_INDIC_ONE, BEYOND_BIGINT]


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("root", password="pw-for-tests-1")
    client.force_login(user)
    return client


@pytest.mark.parametrize("value", NOT_IDS)
def test_a_list_filtered_by_a_non_id_is_404(as_owner, shop, value):
    make_strategy(shop=shop)
    for key in ("id", "id__exact", "pk", "id__in"):
        response = as_owner.get(f"{CHANGELIST}?scenario=post_shipment_refund&{key}={value}")
        assert response.status_code == 404, key


@pytest.mark.parametrize("value", NOT_IDS)
def test_the_history_of_a_non_id_is_404(as_owner, shop, value):
    assert as_owner.get(f"{CHANGELIST}{value}/history/").status_code == 404


@pytest.mark.parametrize("value", NOT_IDS)
def test_a_past_version_with_a_non_id_is_404(as_owner, shop, value):
    strategy = make_strategy(shop=shop)
    assert as_owner.get(f"{CHANGELIST}{strategy.pk}/history/{value}/").status_code == 404


@pytest.mark.parametrize("value", NOT_IDS)
def test_the_operators_shop_filter_with_a_non_id_lists_nothing(operator, shop, value):
    make_strategy(shop=shop, name="Shop A's")
    make_product(shop=shop, title="Shop A's product")
    response = operator.get(f"{CHANGELIST}?scenario=post_shipment_refund&shop={value}")
    assert response.status_code == 200
    assert "Shop A&#x27;s" not in response.content.decode()
    products = operator.get(f"{reverse('admin:strategies_product_changelist')}?shop={value}")
    assert products.status_code == 200
    assert "Shop A&#x27;s product" not in products.content.decode()


def test_the_operators_pages_with_a_non_id_shop_do_not_fail(operator, shop, value="%C2%B2"):
    # Add, template and export name the shop the same way: no shop chosen, not a crash.
    query = f"scenario=post_shipment_refund&shop={value}"
    assert operator.get(f"{reverse('admin:strategies_strategy_add')}?{query}").status_code == 302
    template = reverse("admin:strategies_strategy_template")
    assert operator.get(f"{template}?shop={value}").status_code == 404
    export = reverse("admin:strategies_strategy_export")
    assert operator.get(f"{export}?shop={value}").status_code == 404


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", 42),
        ("0", 0),
        (str(2**63 - 1), 2**63 - 1),
        (str(2**63), None),
        ("²", None),
        ("١", None),
        ("", None),
        (" 4", None),
        ("-4", None),
        ("4.0", None),
        ("9" * 5000, None),
        (None, None),
    ],
)
def test_parse_id_takes_ascii_digits_within_bigint(value, expected):
    assert parse_id(value) == expected
