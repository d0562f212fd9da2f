"""The admin's page context (issue 10.5): one ``ShopContext`` per request, one ``?shop=<id>``
convention on every page, and the read-only and operator-only mixins."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications.services import alerts_check_ledger
from strategies.admin.tenancy import ShopContext, shop_context
from strategies.models import Membership, Order
from tests.factories import (
    make_ledger,
    make_log_decision,
    make_membership,
    make_order,
    make_product,
    make_request,
    make_strategy,
)

pytestmark = pytest.mark.django_db

STRATEGIES = reverse("admin:strategies_strategy_changelist")
LIST = f"{STRATEGIES}?scenario=post_shipment_refund"


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("root", password="pw-for-tests-1")


@pytest.fixture
def as_operator(client, operator):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(operator)
    return client


def _request(user, query: str = ""):
    request = RequestFactory().get(f"/admin/{query}")
    request.user = user
    return request


def _queries_on(captured, table: str) -> list[str]:
    return [q["sql"] for q in captured if f'FROM "{table}"' in q["sql"]]


# -- the context itself --------------------------------------------------------------------------


def test_a_members_context_is_resolved_once_and_kept_on_the_request(owner, shop):
    request = _request(owner)
    with CaptureQueriesContext(connection) as queries:
        first = shop_context(request)
        again = shop_context(request)
    assert len(queries) == 1  # the membership with its shop
    assert again is first
    assert first == ShopContext(user_id=owner.pk, operator=False, shop=shop, may_edit=True)
    assert first.member and first.may_view and not first.foreign_shop_asked
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.may_edit = False  # type: ignore[misc]


def test_a_viewer_may_view_but_not_edit(viewer, shop):
    context = shop_context(_request(viewer))
    assert context.shop == shop and context.may_view and not context.may_edit


def test_another_user_on_the_same_request_gets_their_own_context(owner, other_owner, other_shop):
    request = _request(owner)
    assert shop_context(request).shop != other_shop
    request.user = other_owner  # e.g. a login during the request
    assert shop_context(request).shop == other_shop


def test_an_operator_names_the_shop_by_id(operator, shop, other_shop):
    with CaptureQueriesContext(connection) as queries:
        chosen = shop_context(_request(operator, f"?shop={other_shop.pk}"))
        shop_context(_request(operator))
    assert len(queries) == 1  # the chosen shop; nothing without a choice
    assert chosen.operator and chosen.may_edit and chosen.shop == other_shop
    assert chosen.shop_query() == {"shop": other_shop.pk}
    for query in ("?shop=shop-b", f"?shop={other_shop.pk + 1000}", "?shop=\u00b2"):
        unknown = shop_context(_request(operator, query))
        assert unknown.shop is None and unknown.unknown_shop_asked, query


@pytest.mark.parametrize("asked", ["other", "code", "empty"])
def test_a_member_naming_another_shop_asks_for_a_foreign_one(owner, shop, other_shop, asked):
    value = {"other": str(other_shop.pk), "code": shop.code, "empty": ""}[asked]
    context = shop_context(_request(owner, f"?shop={value}"))
    assert context.foreign_shop_asked
    assert context.shop == shop  # never the other shop, whatever was asked
    assert not shop_context(_request(owner, f"?shop={shop.pk}")).foreign_shop_asked


def test_outsiders_and_anonymous_users_see_nothing(db, shop):
    drifter = get_user_model().objects.create_user("drifter", password="x", is_staff=True)
    from django.contrib.auth.models import AnonymousUser

    for user in (drifter, AnonymousUser()):
        context = shop_context(_request(user))
        assert not context.may_view and not context.may_edit and context.shop is None
        assert context.scope(Order.objects.all()).count() == 0


def test_scope_limits_rows_to_the_members_shop(owner, operator, shop, other_shop):
    mine, theirs = make_order(shop=shop), make_order(shop=other_shop)
    assert list(shop_context(_request(owner)).scope(Order.objects.all())) == [mine]
    assert set(shop_context(_request(operator)).scope(Order.objects.all())) == {mine, theirs}


# -- the strategy list: the query counts pinned --------------------------------------------------


def test_the_owners_strategy_list_pins_its_queries(as_owner, shop, django_assert_num_queries):
    for _ in range(3):
        make_strategy(shop=shop)
    as_owner.get(LIST)  # warm the session and content types
    # session, user, membership (once), tab counts, the list's count, the page, today's ledgers,
    # the sidebar's Django permissions for the auth and beat admins (2), the inbox badge, the
    # count of requests awaiting a paid/not-paid confirmation, the products per strategy (the
    # summaries).
    with django_assert_num_queries(12):
        response = as_owner.get(LIST)
    assert response.status_code == 200
    assert response.content.decode().count('class="drag handle"') == 3


def test_the_operators_strategy_list_pins_its_queries(
    as_operator, shop, other_shop, django_assert_num_queries
):
    for _ in range(3):
        make_strategy(shop=shop)
    make_strategy(shop=other_shop, name="Not this shop")
    url = f"{LIST}&shop={shop.pk}"
    as_operator.get(url)
    # session, user, the chosen shop (once: it was looked up six times before), the shop
    # filter's choices, tab counts, the list's count, the page, today's ledgers, the badge, the
    # count of requests awaiting confirmation, the products per strategy (the summaries).
    with CaptureQueriesContext(connection) as queries, django_assert_num_queries(11):
        response = as_operator.get(url)
    assert response.status_code == 200
    assert len(_queries_on(queries, "strategies_shop")) == 2  # the choice and the filter list
    assert "Not this shop" not in response.content.decode()


def test_a_members_page_resolves_the_membership_once(as_owner, shop):
    make_strategy(shop=shop)
    make_request(shop=shop)
    for url in (
        LIST,
        reverse("admin:strategies_aftersalerequest_changelist"),
        reverse("admin:index"),
    ):
        with CaptureQueriesContext(connection) as queries:
            assert as_owner.get(url).status_code == 200
        assert len(_queries_on(queries, "strategies_membership")) == 1, url


# -- one ?shop=<id> on every page ---------------------------------------------------------------

SHOP_PAGES = [
    "admin:strategies_strategy_changelist",
    "admin:strategies_product_changelist",
    "admin:strategies_order_changelist",
    "admin:strategies_aftersalerequest_changelist",
    "admin:monitoring_decisionlogentry_changelist",
    "admin:notifications_notice_changelist",
    "admin:notifications_delivery_changelist",
    "monitoring:consumption",
    "monitoring:decisions_export",
]


@pytest.mark.parametrize("name", SHOP_PAGES)
def test_staff_may_name_their_own_shop_and_no_other(as_owner, shop, other_shop, name):
    url = reverse(name)
    query = "scenario=post_shipment_refund&" if name.startswith("admin:strategies_strategy") else ""
    assert as_owner.get(f"{url}?{query}shop={shop.pk}").status_code == 200
    assert as_owner.get(f"{url}?{query}shop={other_shop.pk}").status_code == 404
    assert as_owner.get(f"{url}?{query}shop={other_shop.code}").status_code == 404


@pytest.fixture
def rows_of_both_shops(shop, other_shop):
    for each in (shop, other_shop):
        each.phone = "13800000000"
        each.save()
        strategy = make_strategy(shop=each, daily_cap=Decimal("100.00"))
        make_product(shop=each)
        make_request(shop=each, order=make_order(shop=each))
        make_log_decision(shop=each, outcome="manual_review")
        ledger = make_ledger(strategy=strategy, consumed="100.00")
        alerts_check_ledger(ledger_id=ledger.pk)  # a notice and a delivery


@pytest.mark.parametrize(
    "name",
    [n for n in SHOP_PAGES if n not in ("monitoring:consumption", "monitoring:decisions_export")],
)
def test_operators_narrow_every_list_by_shop_id(as_operator, other_shop, rows_of_both_shops, name):
    response = as_operator.get(reverse(name), {"shop": other_shop.pk})
    if response.status_code == 302:  # the strategy list picks the first scenario first
        response = as_operator.get(response["Location"])
    assert response.status_code == 200
    changelist = response.context["cl"]
    assert "shop" in [getattr(f, "parameter_name", None) for f in changelist.filter_specs]
    rows = changelist.queryset
    shop_field = changelist.model_admin.shop_field
    assert rows.exists()
    assert not rows.exclude(**{f"{shop_field}__pk": other_shop.pk}).exists()


def test_every_link_to_the_consumption_dashboard_names_the_shop_by_id(
    as_operator, shop, other_shop
):
    log = reverse("admin:monitoring_decisionlogentry_changelist")
    dashboard = reverse("monitoring:consumption")
    html = as_operator.get(log, {"shop": other_shop.pk}).content.decode()
    assert f'href="{dashboard}?shop={other_shop.pk}"' in html
    page = as_operator.get(dashboard, {"shop": other_shop.pk})
    assert page.context["shop"] == other_shop
    html = page.content.decode()
    assert f'<option value="{other_shop.pk}" selected>' in html
    assert f'<option value="{shop.pk}">' in html
    assert f'href="{log}?shop={other_shop.pk}"' in html
    entry = reverse("admin:monitoring_consumptionoverview_changelist")
    redirect = as_operator.get(entry, {"shop": other_shop.pk})
    assert redirect["Location"] == f"{dashboard}?shop={other_shop.pk}"


# -- the mixins ---------------------------------------------------------------------------------


def test_read_only_admins_refuse_writes_to_operators_too(as_operator, shop):
    order = make_order(shop=shop, order_id="OD-KEEP")
    change = reverse("admin:strategies_order_change", args=[order.pk])
    assert as_operator.get(change).status_code == 200
    assert as_operator.post(change, {"order_id": "OD-NEW"}).status_code == 403
    assert as_operator.get(reverse("admin:strategies_order_add")).status_code == 403
    delete = reverse("admin:strategies_order_delete", args=[order.pk])
    assert as_operator.post(delete, {"post": "yes"}).status_code == 403
    assert Order.objects.get(pk=order.pk).order_id == "OD-KEEP"


def test_operator_only_admins_are_invisible_to_staff(as_owner, shop, owner):
    membership = Membership.objects.get(user=owner)
    urls = [
        reverse("admin:strategies_membership_changelist"),
        reverse("admin:strategies_membership_change", args=[membership.pk]),
        reverse("admin:strategies_membership_add"),
    ]
    for url in urls:
        assert as_owner.get(url).status_code == 403, url
    assert (
        reverse("admin:strategies_membership_changelist")
        not in as_owner.get(reverse("admin:index")).content.decode()
    )


def test_operators_manage_memberships(client, operator, shop):
    client.force_login(operator)
    user = make_membership(shop=shop, username="new-viewer", role="viewer").user
    membership = Membership.objects.get(user=user)
    change = reverse("admin:strategies_membership_change", args=[membership.pk])
    response = client.post(change, {"user": user.pk, "shop": shop.pk, "role": "owner"})
    assert response.status_code == 302
    assert Membership.objects.get(pk=membership.pk).role == "owner"


def test_a_member_sees_their_shop_read_only(as_owner, shop, other_shop):
    change = reverse("admin:strategies_shop_change", args=[shop.pk])
    assert as_owner.get(change).status_code == 200
    assert as_owner.post(change, {"code": shop.code, "name": "Renamed"}).status_code == 403
    assert as_owner.get(reverse("admin:strategies_shop_add")).status_code == 403
    listed = as_owner.get(reverse("admin:strategies_shop_changelist")).context["cl"].result_list
    assert list(listed) == [shop]
    make_product(shop=shop)  # the scoped admins still answer for the member's rows
    assert as_owner.get(reverse("admin:strategies_product_changelist")).status_code == 200
