"""Drag-to-reorder through django-admin-sortable2's endpoint, restricted to one shop and scenario
(RELIABILITY.md 16, 17)."""

import json

import pytest
from django.urls import reverse

from strategies.models import Strategy
from tests.factories import make_strategy

pytestmark = pytest.mark.django_db

UPDATE = reverse("admin:strategies_strategy_sortable_update")
SCENARIO = "post_shipment_refund"


def post(client, body, **params):
    query = "&".join(f"{k}={v}" for k, v in {"scenario": SCENARIO, **params}.items())
    return client.post(f"{UPDATE}?{query}", json.dumps(body), content_type="application/json")


def order_of(shop, scenario=SCENARIO):
    return list(
        Strategy.objects.filter(shop=shop, scenario=scenario)
        .order_by("position", "id")
        .values_list("id", "position")
    )


def test_the_list_points_the_drag_at_the_scoped_endpoint(as_owner, shop):
    make_strategy(shop=shop)
    html = as_owner.get(
        reverse("admin:strategies_strategy_changelist"), {"scenario": SCENARIO}
    ).content.decode()
    assert f'"update_url": "{UPDATE}?scenario={SCENARIO}"' in html


def test_a_drag_renumbers_the_scenario_one_to_n(as_owner, shop):
    a, b, c = (make_strategy(shop=shop) for _ in range(3))
    other_scenario = make_strategy(shop=shop, scenario="pre_shipment_refund")
    # What the library posts when c is dragged to the top.
    response = post(as_owner, {"updatedItems": [[str(c.pk), 1], [str(a.pk), 2], [str(b.pk), 3]]})
    assert response.status_code == 200
    assert order_of(shop) == [(c.pk, 1), (a.pk, 2), (b.pk, 3)]
    assert response.json()["positions"] == {str(c.pk): 1, str(a.pk): 2, str(b.pk): 3}
    assert Strategy.objects.get(pk=other_scenario.pk).position == 1
    # The change is audited like any other.
    assert c.history.first().history_user.username == "owner-a"


def test_a_drag_heals_duplicate_positions(as_owner, shop):
    a, b, c = (make_strategy(shop=shop, position=2) for _ in range(3))
    response = post(as_owner, {"updatedItems": [[c.pk, 1]]})
    assert response.status_code == 200
    assert order_of(shop) == [(c.pk, 1), (a.pk, 2), (b.pk, 3)]


def test_a_whole_order_may_be_posted(as_owner, shop):
    a, b = make_strategy(shop=shop), make_strategy(shop=shop)
    assert post(as_owner, {"orderedIds": [b.pk, a.pk]}).status_code == 200
    assert order_of(shop) == [(b.pk, 1), (a.pk, 2)]


def test_another_shops_ids_are_rejected_and_nothing_changes(as_owner, shop, other_shop):
    make_strategy(shop=shop)
    b = make_strategy(shop=shop)
    x, y = make_strategy(shop=other_shop), make_strategy(shop=other_shop)
    before_b, before_a = order_of(other_shop), order_of(shop)
    for body in (
        {"updatedItems": [[y.pk, 1], [x.pk, 2]]},
        {"updatedItems": [[b.pk, 1], [y.pk, 2]]},
        {"orderedIds": [y.pk, x.pk]},
    ):
        response = post(as_owner, body)
        assert response.status_code in (400, 403)
    # Naming shop B in the URL does not help either.
    response = post(as_owner, {"updatedItems": [[y.pk, 1], [x.pk, 2]]}, shop=other_shop.pk)
    assert response.status_code in (403, 404)
    assert order_of(other_shop) == before_b
    assert order_of(shop) == before_a


def test_ids_of_another_scenario_are_rejected(as_owner, shop):
    a = make_strategy(shop=shop)
    elsewhere = make_strategy(shop=shop, scenario="pre_shipment_refund")
    response = post(as_owner, {"updatedItems": [[elsewhere.pk, 1], [a.pk, 2]]})
    assert response.status_code == 403
    assert order_of(shop) == [(a.pk, 1)]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b'{"updatedItems": [[1]]}', b'{"updatedItems": [["x", "y"]]}'],
)
def test_malformed_requests_are_400(as_owner, shop, body):
    a = make_strategy(shop=shop)
    response = as_owner.post(f"{UPDATE}?scenario={SCENARIO}", body, content_type="application/json")
    assert response.status_code in (400, 403)
    assert order_of(shop) == [(a.pk, 1)]


def test_a_reorder_without_one_scenario_is_refused(as_owner, shop):
    a, b = make_strategy(shop=shop), make_strategy(shop=shop)
    response = as_owner.post(
        UPDATE, json.dumps({"orderedIds": [b.pk, a.pk]}), content_type="application/json"
    )
    assert response.status_code == 400
    assert order_of(shop) == [(a.pk, 1), (b.pk, 2)]


def test_a_viewer_cannot_reorder(client, viewer, shop):
    client.force_login(viewer)
    a, b = make_strategy(shop=shop), make_strategy(shop=shop)
    assert post(client, {"orderedIds": [b.pk, a.pk]}).status_code == 403
    assert order_of(shop) == [(a.pk, 1), (b.pk, 2)]


def test_after_a_drag_the_other_strategy_is_tried_first(as_owner, shop):
    """RELIABILITY.md 16: the drag takes effect at once, in the decisions themselves."""
    from strategies.pipeline.decide import request_decide
    from strategies.selectors import strategies_for_shop
    from tests.factories import make_request

    first = make_strategy(shop=shop, name="first", status="active")
    second = make_strategy(shop=shop, name="second", status="active")
    assert request_decide(request_id=make_request(shop=shop).pk).strategy_id == first.pk
    post(as_owner, {"updatedItems": [[second.pk, 1], [first.pk, 2]]})
    names = [s.name for s in strategies_for_shop(shop=shop) if s.scenario == SCENARIO]
    assert names == ["second", "first"]
    assert request_decide(request_id=make_request(shop=shop).pk).strategy_id == second.pk


@pytest.mark.parametrize(
    "template",
    [
        '{"updatedItems": [[%(pk)d, 1e400]]}',  # parsed as infinity
        '{"updatedItems": [[%(pk)d, Infinity]]}',
        '{"updatedItems": [[%(pk)d, -Infinity]]}',
        '{"updatedItems": [[%(pk)d, NaN]]}',
        '{"updatedItems": [[%(pk)d, 2.5]]}',
        '{"updatedItems": [[%(pk)d, true]]}',
        '{"updatedItems": [[%(pk)d, -5]]}',
        '{"updatedItems": [[%(pk)d, 100000000000000000000000000000]]}',
        '{"updatedItems": [[%(pk)d, "\\u00b2"]]}',
        '{"updatedItems": [[1e400, 1]]}',
        '{"updatedItems": [[%(pk)d.7, 1]]}',
        '{"orderedIds": [1e400, %(pk)d]}',
        '{"orderedIds": [%(pk)d, Infinity]}',
    ],
)
def test_a_position_or_id_that_is_not_a_whole_number_is_400(as_owner, shop, template):
    a, b = make_strategy(shop=shop), make_strategy(shop=shop)
    body = template % {"pk": b.pk}
    response = as_owner.post(f"{UPDATE}?scenario={SCENARIO}", body, content_type="application/json")
    assert response.status_code == 400
    assert order_of(shop) == [(a.pk, 1), (b.pk, 2)]


def test_positions_as_the_library_may_post_them_still_work(as_owner, shop):
    a, b = make_strategy(shop=shop), make_strategy(shop=shop)
    response = post(as_owner, {"updatedItems": [[str(b.pk), "1"], [a.pk, 2]]})
    assert response.status_code == 200
    assert order_of(shop) == [(b.pk, 1), (a.pk, 2)]
