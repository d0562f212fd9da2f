"""Every manual review explains itself (issue 12, 9): a request no scenario covers, or whose
scenarios have no strategy, gets a request-level explanation (``strategy`` null) in the
decision, the monitor's detail and CSV, and the API's GET (as ``decision.reason`` there)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from strategies.pipeline.decide import request_decide
from tests.factories import make_order, make_request, make_strategy
from tests.strategies.platforms.generic.api_client import get_signed


def decide(shop, **fields):
    order_fields = {k: fields.pop(k) for k in ("status", "tags") if k in fields}
    request = make_request(shop=shop, order=make_order(shop=shop, **order_fields), **fields)
    return request_decide(request_id=request.pk)


@pytest.mark.parametrize(
    ("order", "kind", "code"),
    [
        ({"status": "completed"}, "refund_only", "order_completed"),
        ({"status": "pending_shipment"}, "return_refund", "type_not_covered"),
        ({"status": "shipped"}, "refund_no_return", "type_not_covered"),
        ({"status": "shipped"}, "refund_only", "no_strategy"),
    ],
)
def test_a_manual_review_with_nothing_to_try_says_why(shop, sent, order, kind, code):
    # A strategy in a scenario the request does not fall under: nothing is tried.
    make_strategy(shop=shop, scenario="pre_shipment_refund", status="active")
    decision = decide(shop, type=kind, **order)
    assert decision.outcome == "manual_review"
    [entry] = decision.explanations
    assert entry["code"] == code
    assert entry["strategy"] is None
    assert entry["message"]


def test_the_reason_is_in_the_detail_the_csv_and_the_api(client, shop, viewer, sent):
    decision = decide(shop, type="refund_only", status="completed")
    client.force_login(viewer)
    with translation.override("en"):
        detail = client.get(
            reverse("admin:monitoring_decisionlogentry_change", args=[decision.pk]),
            headers={"accept-language": "en"},
        ).content.decode()
    assert "order_completed" in detail
    assert "The order is completed" in detail
    assert "No strategy was passed over" not in detail

    csv = b"".join(
        client.get(
            reverse("monitoring:decisions_export"), headers={"accept-language": "en"}
        ).streaming_content
    ).decode("utf-8-sig")
    assert "[order_completed] The order is completed" in csv

    body = get_signed(client, shop, decision.aftersale_id).json()
    assert body["status"] == "manual_review"
    # API.md's explanations are the strategies tried: the request-level reason is the
    # decision's own, so no client meets a null strategy there.
    assert body["explanations"] == []
    assert body["decision"]["reason"]["code"] == "order_completed"
    assert body["decision"]["reason"]["message"].startswith("The order is completed")


def test_the_reason_is_shown_in_chinese(client, shop, viewer, sent):
    decision = decide(shop, type="refund_no_return", status="shipped")
    client.force_login(viewer)
    detail = client.get(
        reverse("admin:monitoring_decisionlogentry_change", args=[decision.pk]),
        headers={"accept-language": "zh-hans"},
    ).content.decode()
    assert "type_not_covered" in detail
    assert "人工" in detail


def test_a_manual_review_after_tried_strategies_keeps_only_their_reasons(shop, sent):
    make_strategy(shop=shop, status="inactive")
    decision = decide(shop, type="refund_only", status="shipped")
    assert [e["code"] for e in decision.explanations] == ["inactive"]
