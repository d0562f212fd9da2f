"""A shop's staff see only their shop's decisions: in the list, the detail, the filters and
the CSV export. Operators see every shop and may filter by shop."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.factories import make_log_decision, make_strategy

LIST = reverse("admin:monitoring_decisionlogentry_changelist")
EXPORT = reverse("monitoring:decisions_export")


def detail(decision) -> str:
    return reverse("admin:monitoring_decisionlogentry_change", args=[decision.pk])


@pytest.fixture
def two_shops(shop, other_shop):
    mine = make_strategy(shop=shop, name="Mine")
    theirs = make_strategy(shop=other_shop, name="Theirs")
    a = make_log_decision(shop=shop, strategy=mine, aftersale_id="AS-MINE")
    b = make_log_decision(shop=other_shop, strategy=theirs, aftersale_id="AS-THEIRS")
    return mine, theirs, a, b


def export_text(client, **params) -> str:
    response = client.get(EXPORT, params)
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode("utf-8-sig")


def test_staff_list_shows_only_their_shop(client, viewer, two_shops):
    client.force_login(viewer)
    response = client.get(LIST)
    assert [d.aftersale_id for d in response.context["cl"].result_list] == ["AS-MINE"]
    assert b"AS-THEIRS" not in response.content


def test_another_shops_decision_detail_is_not_found(client, viewer, two_shops):
    _mine, _theirs, a, b = two_shops
    client.force_login(viewer)
    assert client.get(detail(a)).status_code == 200
    assert client.get(detail(b)).status_code == 404
    history = reverse("admin:monitoring_decisionlogentry_history", args=[b.pk])
    assert client.get(history).status_code == 404


def test_another_shops_rows_never_reach_the_export(client, viewer, two_shops):
    client.force_login(viewer)
    text = export_text(client)
    assert "AS-MINE" in text
    assert "AS-THEIRS" not in text
    assert "AS-THEIRS" not in export_text(client, q="AS-THEIRS")


def test_the_strategy_filter_lists_only_the_callers_strategies(client, viewer, two_shops):
    mine, _theirs, _a, _b = two_shops
    client.force_login(viewer)
    response = client.get(LIST)
    specs = response.context["cl"].filter_specs
    spec = next(f for f in specs if getattr(f, "parameter_name", None) == "strategy")
    assert spec.lookup_choices == [(str(mine.pk), "Mine")]
    assert b"Theirs" not in response.content


def test_a_forged_strategy_id_of_another_shop_shows_nothing_of_it(client, viewer, two_shops):
    _mine, theirs, _a, _b = two_shops
    client.force_login(viewer)
    response = client.get(LIST, {"strategy": theirs.pk})
    assert list(response.context["cl"].result_list) == []
    assert "AS-THEIRS" not in export_text(client, strategy=theirs.pk)


def test_staff_get_no_shop_filter_and_cannot_forge_one(client, viewer, other_shop, two_shops):
    client.force_login(viewer)
    response = client.get(LIST)
    names = [getattr(f, "parameter_name", None) for f in response.context["cl"].filter_specs]
    assert "shop" not in names
    forged = client.get(LIST, {"shop": other_shop.pk})
    # Another shop's id is "not found", as on every page (?shop=<id>): it never widens.
    assert forged.status_code == 404
    assert b"AS-THEIRS" not in forged.content


def test_a_user_without_a_shop_sees_nothing(client, two_shops):
    user = get_user_model().objects.create_user(username="drifter", password="x", is_staff=True)
    client.force_login(user)
    assert client.get(LIST).status_code == 403
    assert client.get(EXPORT).status_code == 403


def test_operators_see_every_shop_and_filter_by_shop(client, shop, other_shop, two_shops):
    admin_user = get_user_model().objects.create_superuser(username="op", password="x")
    client.force_login(admin_user)
    response = client.get(LIST)
    assert {d.aftersale_id for d in response.context["cl"].result_list} == {"AS-MINE", "AS-THEIRS"}
    response = client.get(LIST, {"shop": other_shop.pk})
    assert [d.aftersale_id for d in response.context["cl"].result_list] == ["AS-THEIRS"]
    text = export_text(client, shop=other_shop.pk)
    assert "AS-THEIRS" in text and "AS-MINE" not in text


def test_the_log_is_read_only_even_for_operators(client, two_shops):
    _mine, _theirs, a, _b = two_shops
    admin_user = get_user_model().objects.create_superuser(username="op", password="x")
    client.force_login(admin_user)
    assert client.get(reverse("admin:monitoring_decisionlogentry_add")).status_code == 403
    delete = reverse("admin:monitoring_decisionlogentry_delete", args=[a.pk])
    assert client.get(delete).status_code == 403
    response = client.post(detail(a), {"amount": "1.00"})
    assert response.status_code == 403
    a.refresh_from_db()
    assert str(a.amount) == "9.90"
