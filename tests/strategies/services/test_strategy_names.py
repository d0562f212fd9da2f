"""Strategy names are unique within a shop (issue 12 point 4): a database constraint whose
message is shown next to the name, in the services, the form and the strategy files."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from strategies.models import Strategy
from strategies.services.strategies import (
    strategy_create,
    strategy_create_from_template,
    strategy_update,
)
from strategies.services.strategy_files import strategies_export, strategies_import
from tests.factories import make_strategy

pytestmark = pytest.mark.django_db


def test_the_database_refuses_a_second_live_strategy_of_one_name(shop, other_shop):
    make_strategy(shop=shop, name="Night")
    make_strategy(shop=other_shop, name="Night")  # another shop may
    with pytest.raises(IntegrityError), transaction.atomic():
        Strategy.objects.create(shop=shop, scenario="pre_shipment_refund", name="Night", position=1)


def test_the_service_says_so_next_to_the_name(shop):
    make_strategy(shop=shop, name="Night")
    other = make_strategy(shop=shop, name="Day")
    with translation.override("en"), pytest.raises(ValidationError) as create:
        strategy_create(shop=shop, scenario="pre_shipment_refund", name="Night")
    assert create.value.message_dict["name"] == [
        "This shop already has a strategy of this name: choose another name."
    ]
    with pytest.raises(ValidationError) as update:
        strategy_update(strategy=other, name="Night")
    assert list(update.value.message_dict) == ["name"]


def test_an_archived_strategys_name_may_be_taken_again(shop):
    make_strategy(shop=shop, name="Old", archived_at=timezone.now())
    assert strategy_create(shop=shop, scenario="pre_shipment_refund", name="Old").pk


def test_the_template_numbers_its_name_when_taken(shop):
    first = strategy_create_from_template(shop=shop)
    second = strategy_create_from_template(shop=shop)
    assert second.name == f"{first.name} 2"


def test_a_file_may_not_name_two_strategies_alike_nor_an_existing_one(shop, other_shop):
    make_strategy(shop=shop, name="Night")
    make_strategy(shop=shop, name="Day")
    exported = strategies_export(shop=shop)
    with translation.override("en"), pytest.raises(ValidationError) as twice:
        strategies_import(shop=other_shop, entries=[exported[0], exported[0]])
    assert "names are unique in a shop" in " ".join(twice.value.message_dict["1.name"])
    with pytest.raises(ValidationError) as existing:
        strategies_import(shop=shop, entries=exported)
    assert set(existing.value.message_dict) == {"0.name", "1.name"}
    assert not Strategy.objects.filter(shop=other_shop).exists()
