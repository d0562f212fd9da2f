"""The strategy monitor's decision log: search and filters, each alone and combined."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from tests.factories import make_log_decision, make_order, make_request, make_strategy

URL = reverse("admin:monitoring_decisionlogentry_changelist")
UTC = dt.UTC


@pytest.fixture
def log(shop):
    refund = make_strategy(shop=shop, name="Small refunds", scenario="post_shipment_refund")
    pre = make_strategy(shop=shop, name="Before shipment", scenario="pre_shipment_refund")
    at = dt.datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
    rows = {
        "a": make_log_decision(
            shop=shop,
            strategy=refund,
            reason="quality_issue",
            aftersale_id="AS-A",
            order=make_order(shop=shop, order_id="OD-A"),
            decided_at=at,
        ),
        "b": make_log_decision(
            shop=shop,
            strategy=pre,
            reason="no_longer_needed",
            aftersale_id="AS-B",
            order=make_order(shop=shop, order_id="OD-B"),
            decided_at=at - dt.timedelta(days=1),
        ),
        "c": make_log_decision(
            shop=shop,
            outcome="manual_review",
            reason="quality_issue",
            aftersale_id="AS-C",
            order=make_order(shop=shop, order_id="OD-C"),
            decided_at=at - dt.timedelta(days=2),
        ),
    }
    # Two requests of one order: an order-id search finds both.
    rows["d"] = make_log_decision(
        shop=shop,
        strategy=refund,
        request=make_request(
            shop=shop, aftersale_id="AS-D", order=rows["a"].request.order, reason="other"
        ),
        decided_at=at + dt.timedelta(hours=1),
    )
    return rows, refund, pre


def shown(client, **params) -> set[str]:
    response = client.get(URL, params)
    assert response.status_code == 200
    return {obj.aftersale_id for obj in response.context["cl"].result_list}


def test_it_lists_every_decision_of_the_shop_newest_first(staff_client, log):
    response = staff_client.get(URL)
    ids = [obj.aftersale_id for obj in response.context["cl"].result_list]
    assert ids == ["AS-D", "AS-A", "AS-B", "AS-C"]


def test_it_finds_a_decision_by_exact_aftersales_id(staff_client, log):
    assert shown(staff_client, q="AS-B") == {"AS-B"}
    assert shown(staff_client, q="  AS-B ") == {"AS-B"}
    assert shown(staff_client, q="AS-") == set()  # exact, not a substring search


def test_it_finds_every_decision_of_an_order_id(staff_client, log):
    assert shown(staff_client, q="OD-A") == {"AS-A", "AS-D"}


def test_it_filters_by_scenario(staff_client, log):
    assert shown(staff_client, scenario__exact="pre_shipment_refund") == {"AS-B"}


def test_it_filters_by_reason(staff_client, log):
    assert shown(staff_client, reason__exact="quality_issue") == {"AS-A", "AS-C"}


def test_it_filters_by_outcome(staff_client, log):
    assert shown(staff_client, outcome__exact="manual_review") == {"AS-C"}
    assert shown(staff_client, outcome__exact="approved") == {"AS-A", "AS-B", "AS-D"}


def test_it_filters_by_strategy(staff_client, log):
    _rows, refund, pre = log
    assert shown(staff_client, strategy=refund.pk) == {"AS-A", "AS-D"}
    assert shown(staff_client, strategy=pre.pk) == {"AS-B"}
    # Not an id: said as an invalid filter (issue 12, 15), never a silent empty list.
    assert staff_client.get(URL, {"strategy": "not-a-number"}).status_code == 302


def test_it_filters_by_shop_local_date_range(staff_client, log):
    # AS-A: 2026-03-10 12:00 Shanghai, AS-D 13:00, AS-B on the 9th, AS-C on the 8th.
    assert shown(staff_client, decided_from="2026-03-10", decided_until="2026-03-10") == {
        "AS-A",
        "AS-D",
    }
    assert shown(staff_client, decided_from="2026-03-09") == {"AS-A", "AS-B", "AS-D"}
    assert shown(staff_client, decided_until="2026-03-08") == {"AS-C"}


def test_the_date_range_follows_the_shops_midnight_not_utcs(staff_client, shop):
    # 15:59:59.9 UTC is still the 10th in Shanghai; 16:00:00.1 UTC is already the 11th.
    make_log_decision(
        shop=shop,
        outcome="manual_review",
        aftersale_id="LATE",
        decided_at=dt.datetime(2026, 3, 10, 15, 59, 59, 900000, tzinfo=UTC),
    )
    make_log_decision(
        shop=shop,
        outcome="manual_review",
        aftersale_id="EARLY",
        decided_at=dt.datetime(2026, 3, 10, 16, 0, 0, 100000, tzinfo=UTC),
    )
    assert shown(staff_client, decided_from="2026-03-10", decided_until="2026-03-10") == {"LATE"}
    assert shown(staff_client, decided_from="2026-03-11", decided_until="2026-03-11") == {"EARLY"}


def test_an_invalid_date_is_refused_not_ignored(staff_client, log):
    response = staff_client.get(URL, {"decided_from": "yesterday"})
    # The admin redirects to ?e=1 on an invalid lookup instead of listing everything.
    assert response.status_code == 302
    assert "e=1" in response["Location"]


def test_it_combines_filters_search_and_dates(staff_client, log):
    _rows, refund, _pre = log
    assert shown(
        staff_client,
        reason__exact="quality_issue",
        outcome__exact="approved",
        strategy=refund.pk,
        scenario__exact="post_shipment_refund",
        decided_from="2026-03-10",
        decided_until="2026-03-10",
        q="OD-A",
    ) == {"AS-A"}
    assert shown(staff_client, reason__exact="other", q="AS-A") == set()
