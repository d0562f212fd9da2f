"""The demo seed: idempotent, and a strategy in every scenario."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import translation

from strategies.demo.seed import demo_seed
from strategies.models import (
    Membership,
    Product,
    Scenario,
    Shop,
    Strategy,
    StrategyStatus,
    StrategyTemplate,
)


def counts() -> dict[str, int]:
    return {
        "shops": Shop.objects.count(),
        "users": get_user_model().objects.count(),
        "memberships": Membership.objects.count(),
        "products": Product.objects.count(),
        "strategies": Strategy.objects.count(),
        "history": Strategy.history.count(),
    }


@pytest.mark.django_db
@translation.override("en")  # what an earlier test left active must not pick the language
def test_it_seeds_the_same_rows_when_run_twice(capsys):
    call_command("seed_demo")
    first = counts()
    secret = Shop.objects.get(code="demo").api_secret
    call_command("seed_demo")
    assert counts() == first
    assert Shop.objects.get(code="demo").api_secret == secret
    assert "nothing new" in capsys.readouterr().out
    assert first["products"] == 12 and first["shops"] == 1


@pytest.mark.django_db
def test_it_creates_a_strategy_in_every_scenario_with_priority_and_a_trial():
    seed = demo_seed()
    shop = seed.shop
    assert (shop.timezone, bool(shop.phone), bool(shop.alert_email)) == ("Asia/Shanghai", 1, 1)
    strategies = Strategy.objects.filter(shop=shop)
    assert {s.scenario for s in strategies} == set(Scenario.values)
    small = strategies.get(template=StrategyTemplate.SMALL_AMOUNT)
    assert small.status == StrategyStatus.ACTIVE
    assert (small.scenario, small.position) == (Scenario.POST_SHIPMENT_REFUND, 1)
    second = strategies.get(scenario=Scenario.POST_SHIPMENT_REFUND, position=2)
    assert second.status == StrategyStatus.ACTIVE
    assert strategies.filter(status=StrategyStatus.TRIAL).count() == 1
    for scenario in Scenario.values:
        positions = list(
            strategies.filter(scenario=scenario)
            .order_by("position")
            .values_list("position", flat=True)
        )
        assert positions == list(range(1, len(positions) + 1))


@pytest.mark.django_db
def test_its_logins_work_with_the_documented_passwords(client):
    seed = demo_seed()
    for username, password, role in seed.logins:
        # Through the login form, as a person logs in (the lockout backend needs a request).
        response = client.post(
            "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
        )
        assert response.status_code == 302 and response["Location"] == "/admin/", username
        user = get_user_model().objects.get(username=username)
        if role is None:
            assert user.is_superuser
        else:
            assert user.membership.shop == seed.shop and user.membership.role == role
        client.logout()


@pytest.mark.django_db
def test_it_keeps_what_a_person_changed_and_fills_what_was_deleted():
    seed = demo_seed()
    small = Strategy.objects.get(shop=seed.shop, template=StrategyTemplate.SMALL_AMOUNT)
    small.status = StrategyStatus.INACTIVE
    small.save()
    Strategy.objects.filter(shop=seed.shop, status=StrategyStatus.TRIAL).delete()
    again = demo_seed()
    small.refresh_from_db()
    assert small.status == StrategyStatus.INACTIVE  # a person's choice is kept
    assert again.created["strategies"] == 1  # the deleted trial strategy is back
