"""Adding a strategy starts with the scenario picker (issue 12, 11): one sentence per scenario
on which requests it covers, each linking to that scenario's form; after saving, the list opens
on that scenario's tab (not the first one)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from strategies.models import SCENARIO_ORDER, Strategy
from tests.factories import make_strategy
from tests.strategies.admin.test_admin_strategies import form_data

ADD = reverse("admin:strategies_strategy_add")
CHANGELIST = reverse("admin:strategies_strategy_changelist")


@pytest.fixture
def as_owner(client, owner):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(owner)
    return client


def test_the_picker_lists_every_scenario_in_order_with_its_sentence(as_owner, shop):
    make_strategy(shop=shop, scenario="post_shipment_refund")
    html = as_owner.get(ADD).content.decode()
    found = re.findall(r'data-scenario="([a-z_]+)"', html)
    assert found == list(SCENARIO_ORDER)
    assert f'href="{ADD}?scenario=post_shipment_refund"' in html
    assert "Refund-only requests on orders not shipped yet" in html
    assert "Return-and-refund requests on shipped or received orders" in html
    assert "1 strategy" in html and "0 strategies" in html


def test_the_picker_speaks_chinese(client, owner, shop):
    client.force_login(owner)
    html = client.get(ADD, headers={"accept-language": "zh-hans"}).content.decode()
    assert "选择" in html and "未发货订单" in html


def test_saving_lands_on_the_scenarios_tab(as_owner, shop):
    response = as_owner.post(f"{ADD}?scenario=post_shipment_return_refund", form_data())
    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}?scenario=post_shipment_return_refund"
    strategy = Strategy.objects.get()
    change = reverse("admin:strategies_strategy_change", args=[strategy.pk])
    response = as_owner.post(change, form_data(name="Renamed", version=str(strategy.version)))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == f"{CHANGELIST}?scenario=post_shipment_return_refund"


def test_save_and_add_another_stays_in_the_scenario(as_owner, shop):
    response = as_owner.post(f"{ADD}?scenario=pre_shipment_refund", form_data(_addanother="1"))
    assert response.status_code == 302
    assert response["Location"] == f"{ADD}?scenario=pre_shipment_refund"


def test_an_operator_picks_for_the_chosen_shop(client, shop):
    operator = get_user_model().objects.create_superuser(username="op", password="x")
    client.force_login(operator)
    html = client.get(ADD, {"shop": shop.pk}).content.decode()
    assert f"{ADD}?shop={shop.pk}&amp;scenario=pre_shipment_refund" in html
    # Without a shop, the operator is asked to pick one first.
    assert client.get(ADD).status_code == 302
