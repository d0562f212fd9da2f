"""The detail of one decision shows every explanation as a readable table."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse

from tests.factories import make_log_decision, make_strategy


def test_it_shows_every_explanation_in_a_table(client, viewer, shop):
    skipped = make_strategy(shop=shop, name="Tiny refunds", scenario="post_shipment_no_return")
    hit = make_strategy(shop=shop, name="Small refunds", scenario="post_shipment_refund")
    decision = make_log_decision(
        shop=shop,
        strategy=hit,
        aftersale_id="AS-EXPLAINED",
        decided_at=dt.datetime(2026, 3, 10, 4, 0, tzinfo=dt.UTC),
        explanations=[
            {
                "scenario": "post_shipment_no_return",
                "strategy": {"id": skipped.pk, "name": "Tiny refunds"},
                "code": "over_per_request_cap",
                "message": "Above the per-request cap of 5.00.",
            },
            {
                "scenario": "pre_shipment_refund",
                "strategy": {"id": 999, "name": "Gone"},
                "code": "inactive",
                "message": "The strategy is inactive.",
            },
        ],
    )
    client.force_login(viewer)
    response = client.get(
        reverse("admin:monitoring_decisionlogentry_change", args=[decision.pk]),
        HTTP_ACCEPT_LANGUAGE="en",  # the English labels; the interface defaults to Chinese
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="atom-explanations"' in html
    assert html.count("<tr><td>") == 2
    for text in (
        "After shipment: refund only, no return",
        "Tiny refunds",
        "<code>over_per_request_cap</code>",
        "Above the per-request cap of 5.00.",
        "<code>inactive</code>",
        "2026-03-10 12:00:00",  # decided at, shop-local (Asia/Shanghai)
    ):
        assert text in html
    # Read-only: no save button.
    assert 'name="_save"' not in html


def test_a_decision_without_explanations_says_so(client, viewer, shop):
    decision = make_log_decision(shop=shop, outcome="manual_review")
    client.force_login(viewer)
    response = client.get(
        reverse("admin:monitoring_decisionlogentry_change", args=[decision.pk]),
        HTTP_ACCEPT_LANGUAGE="en",  # the English labels; the interface defaults to Chinese
    )
    assert "No strategy was passed over before this decision." in response.content.decode()


def test_explanations_are_shown_in_the_viewers_language_from_their_params():
    from django.utils import translation

    from monitoring.selectors import explanation_row

    entry = {
        "scenario": "post_shipment_refund",
        "strategy": {"id": 1, "name": "Small"},
        "code": "over_per_request_cap",
        "message": "单笔金额 25.00 超过单笔金额上限 20.00",
        "params": {"amount": "25.00", "cap": "20.00"},
    }
    with translation.override("en"):
        message = explanation_row(entry)[3]
    assert message == "Amount 25.00 is over the per-request cap 20.00"
    # Without params (or with unusable ones) the stored text is shown as it is.
    assert explanation_row({**entry, "params": None})[3] == entry["message"]
