"""The pure matcher, one condition at a time: each check lets a request through when it holds
and explains the miss with its stable code when it does not. No database."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import translation

from strategies.matching import CHECKS, explanation_message
from tests.strategies.matching_builders import at, codes, replace, request, run, strategy


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def assert_hit(evaluation, strategy_id=1):
    assert evaluation.hit is not None and evaluation.hit.id == strategy_id, evaluation
    return evaluation


def assert_miss(evaluation, code):
    assert evaluation.hit is None
    assert codes(evaluation) == [(1, code)]
    return evaluation.explanations[0]


# -- status ------------------------------------------------------------------------------------


def test_it_approves_with_an_active_strategy_without_restrictions():
    evaluation = assert_hit(run(request(), strategy()))
    assert evaluation.scenario == "post_shipment_refund"
    assert evaluation.action == "approve_refund"
    assert evaluation.explanations == ()


def test_it_passes_over_an_inactive_strategy():
    explanation = assert_miss(run(request(), strategy(status="inactive")), "inactive")
    assert explanation.message == "The strategy is inactive"


def test_it_never_hits_with_a_status_it_does_not_know():
    assert_miss(run(request(), strategy(status="paused")), "inactive")


# -- validity ----------------------------------------------------------------------------------


def test_it_hits_inside_the_validity_period_including_its_first_instant():
    applied = at("2026-11-22 10:15")
    valid = strategy(valid_from=applied, valid_until=applied + dt.timedelta(seconds=1))
    assert_hit(run(request(applied_at=applied), valid))


def test_it_misses_before_the_validity_period():
    valid = strategy(valid_from=at("2026-11-22 10:15:01"))
    explanation = assert_miss(run(request(), valid), "outside_validity")
    assert explanation.message == (
        "Applied at 2026-11-22 10:15 (Asia/Shanghai), before the strategy is valid from "
        "2026-11-22 10:15"
    )


def test_it_misses_at_the_end_of_the_validity_period_which_is_excluded():
    valid = strategy(valid_until=at("2026-11-22 10:15"))
    explanation = assert_miss(run(request(), valid), "outside_validity")
    assert "valid until 2026-11-22 10:15" in explanation.message


def test_open_validity_bounds_cover_any_time():
    assert_hit(run(request(), strategy(valid_from=at("2020-01-01 00:00"), valid_until=None)))
    assert_hit(run(request(), strategy(valid_from=None, valid_until=at("2030-01-01 00:00"))))


# -- window (more in test_matching_time.py) ----------------------------------------------------


def test_it_hits_inside_the_daily_window():
    assert_hit(run(request(), strategy(window_start=dt.time(9), window_end=dt.time(18))))


def test_it_misses_outside_the_daily_window():
    windowed = strategy(window_start=dt.time(12), window_end=dt.time(18))
    explanation = assert_miss(run(request(), windowed), "outside_window")
    assert explanation.message == (
        "Applied at 10:15 (Asia/Shanghai), outside the daily window 12:00-18:00"
    )


# -- products ----------------------------------------------------------------------------------


def test_it_hits_when_every_product_of_the_order_is_covered():
    req = request(order_fields={"product_ids": frozenset({"P1", "P2"})})
    assert_hit(run(req, strategy(product_ids=frozenset({"P1", "P2", "P3"}))))


def test_it_misses_when_one_product_of_the_order_is_not_covered():
    req = request(order_fields={"product_ids": frozenset({"P1", "P9"})})
    explanation = assert_miss(
        run(req, strategy(product_ids=frozenset({"P1", "P2"}))), "product_not_covered"
    )
    assert explanation.message == "Products P9 are not covered by the strategy"


def test_an_empty_product_set_covers_every_product():
    assert_hit(run(request(), strategy(product_ids=frozenset())))


def test_an_order_without_items_is_not_covered_by_a_product_restriction():
    req = request(order_fields={"product_ids": frozenset()})
    assert_miss(run(req, strategy(product_ids=frozenset({"P1"}))), "product_not_covered")


def test_products_are_ignored_in_the_tagged_scenario():
    req = request(
        type="refund_no_return",
        order_fields={"tags": frozenset({"refund_no_return"}), "product_ids": frozenset({"P9"})},
    )
    tagged = strategy(scenario="tagged_refund_no_return", product_ids=frozenset({"P1"}))
    assert_hit(run(req, tagged))


# -- order status (day boundaries in test_matching_time.py) ------------------------------------


def test_it_misses_a_shipped_order_when_shipped_is_not_covered():
    explanation = assert_miss(
        run(request(), strategy(covers_shipped=False)), "order_status_not_covered"
    )
    assert (
        explanation.message == "Order status Shipped, not received is not covered by the strategy"
    )


def test_it_misses_a_received_order_when_received_is_not_covered():
    req = request(order_fields={"status": "received", "received_at": at("2026-11-22 09:00")})
    assert_hit(run(req, strategy(covers_shipped=False)))
    assert_miss(run(req, strategy(covers_received=False)), "order_status_not_covered")


def test_it_hits_a_shipped_order_within_the_days_since_shipment():
    # Shipped 2026-11-21, applied 2026-11-22: one day since shipment.
    assert_hit(run(request(), strategy(shipped_min_days=1, shipped_max_days=1)))


def test_it_misses_a_shipped_order_outside_the_days_since_shipment():
    explanation = assert_miss(
        run(request(), strategy(shipped_min_days=2, shipped_max_days=7)),
        "order_status_not_covered",
    )
    assert explanation.message == (
        "Order status Shipped, not received for 1 days, outside the strategy's 2 to 7 days"
    )


def test_it_uses_the_received_range_for_a_received_order():
    req = request(order_fields={"status": "received", "received_at": at("2026-11-19 09:00")})
    # The shipped range would not cover, but the order is received 3 days before.
    assert_hit(run(req, strategy(shipped_max_days=0, received_min_days=3, received_max_days=3)))
    assert_miss(run(req, strategy(received_max_days=2)), "order_status_not_covered")


def test_a_missing_shipment_time_does_not_cover_a_day_range():
    req = request(order_fields={"shipped_at": None})
    assert_hit(run(req, strategy()))  # no range: the whole status is covered
    explanation = assert_miss(run(req, strategy(shipped_max_days=7)), "order_status_not_covered")
    assert explanation.message == (
        "Order status Shipped, not received has no date to count days from; "
        "the strategy needs … to 7 days"
    )


def test_a_missing_receipt_time_does_not_cover_a_day_range():
    req = request(order_fields={"status": "received", "received_at": None})
    assert_hit(run(req, strategy()))
    assert_miss(run(req, strategy(received_min_days=0)), "order_status_not_covered")


def test_order_status_is_ignored_before_shipment():
    req = request(order_fields={"status": "pending_shipment", "shipped_at": None})
    pre = strategy(scenario="pre_shipment_refund", covers_shipped=False, covers_received=False)
    assert_hit(run(req, pre))


# -- reasons -----------------------------------------------------------------------------------


def test_it_hits_when_the_reason_is_accepted():
    assert_hit(run(request(), strategy(reasons=frozenset({"no_longer_needed", "other"}))))


def test_it_misses_when_the_reason_is_not_accepted():
    explanation = assert_miss(
        run(request(), strategy(reasons=frozenset({"quality_issue"}))), "reason_not_covered"
    )
    assert (
        explanation.message
        == "Reason No longer needed / ordered by mistake is not accepted by the strategy"
    )


def test_an_empty_reason_set_accepts_any_reason():
    assert_hit(run(request(reason="other"), strategy(reasons=frozenset())))


# -- application time limit --------------------------------------------------------------------


def test_it_hits_exactly_at_the_application_time_limit():
    # Paid 2026-11-20 09:00, applied 2026-11-22 10:15: 49.25 hours.
    req = request(applied_at=at("2026-11-22 09:00"))
    assert_hit(run(req, strategy(max_hours_since_payment=48)))


def test_it_misses_after_the_application_time_limit():
    explanation = assert_miss(
        run(request(), strategy(max_hours_since_payment=48)), "application_too_late"
    )
    assert explanation.message == (
        "Applied 49.25 hours after payment, later than the limit of 48 hours"
    )


def test_one_second_over_the_application_time_limit_misses():
    req = request(applied_at=at("2026-11-22 09:00:01"))
    explanation = assert_miss(
        run(req, strategy(max_hours_since_payment=48)), "application_too_late"
    )
    assert explanation.params["hours"] == "48.01"


# -- risk --------------------------------------------------------------------------------------


def test_it_misses_a_flagged_request_with_risk_control_on():
    explanation = assert_miss(run(request(risk_flag=True), strategy()), "risk_flagged")
    assert "flagged" in explanation.message


def test_it_hits_a_flagged_request_with_risk_control_off():
    assert_hit(run(request(risk_flag=True), strategy(risk_control=False)))


def test_it_hits_an_unflagged_request_with_risk_control_on():
    assert_hit(run(request(risk_flag=False), strategy(risk_control=True)))


# -- per-request cap ---------------------------------------------------------------------------


def test_it_hits_at_exactly_the_per_request_cap():
    assert_hit(run(request(amount=Decimal("20.00")), strategy(per_request_cap=Decimal("20.00"))))


def test_it_misses_over_the_per_request_cap():
    explanation = assert_miss(
        run(request(amount=Decimal("25.00")), strategy(per_request_cap=Decimal("20.00"))),
        "over_per_request_cap",
    )
    assert explanation.message == "Amount 25.00 is over the per-request cap 20.00"
    assert explanation.params == {"amount": "25.00", "cap": "20.00"}


def test_one_cent_over_the_per_request_cap_misses():
    req = request(amount=Decimal("20.01"))
    assert_miss(run(req, strategy(per_request_cap=Decimal("20.00"))), "over_per_request_cap")


# -- order total -------------------------------------------------------------------------------


def test_it_hits_when_the_order_still_has_the_amount_left():
    req = request(amount=Decimal("5.00"), order_fields={"total": Decimal("9.90")})
    assert_hit(run(req, strategy(), order_refunded=Decimal("4.90")))


def test_it_misses_when_earlier_approvals_on_the_order_leave_too_little():
    req = request(amount=Decimal("5.00"), order_fields={"total": Decimal("9.90")})
    explanation = assert_miss(
        run(req, strategy(), order_refunded=Decimal("4.91")), "order_total_exceeded"
    )
    assert explanation.message == (
        "Amount 5.00 on top of 4.91 already auto-approved on this order would pass the order "
        "total 9.90"
    )
    assert explanation.params == {"amount": "5.00", "refunded": "4.91", "total": "9.90"}


# -- per-buyer limit ---------------------------------------------------------------------------


def test_it_hits_below_the_per_buyer_limit():
    assert_hit(run(request(), strategy(max_per_buyer_30d=3), buyer_approvals=2))


def test_it_misses_at_the_per_buyer_limit():
    explanation = assert_miss(
        run(request(), strategy(max_per_buyer_30d=3), buyer_approvals=3), "buyer_limit_reached"
    )
    assert explanation.message == (
        "Buyer B7781 already has 3 auto-approvals in 30 days, the limit is 3"
    )


def test_no_per_buyer_limit_ignores_the_buyers_history():
    assert_hit(run(request(), strategy(max_per_buyer_30d=None), buyer_approvals=1000))


# -- daily cap ---------------------------------------------------------------------------------


def test_reaching_the_daily_cap_exactly_hits():
    capped = strategy(daily_cap=Decimal("100.00"))
    assert_hit(run(request(amount=Decimal("9.90")), capped, consumed={1: Decimal("90.10")}))


def test_a_request_that_would_cross_the_daily_cap_by_one_cent_does_not_hit():
    capped = strategy(daily_cap=Decimal("100.00"))
    explanation = assert_miss(
        run(request(amount=Decimal("9.90")), capped, consumed={1: Decimal("90.11")}),
        "daily_cap_reached",
    )
    assert explanation.message == (
        "Amount 9.90 on top of 90.11 approved today would pass the daily cap 100.00"
    )


def test_a_strategy_without_consumption_today_starts_from_zero():
    capped = strategy(daily_cap=Decimal("9.90"))
    assert_hit(run(request(amount=Decimal("9.90")), capped, consumed={2: Decimal("9.90")}))
    assert_miss(run(request(amount=Decimal("9.91")), capped), "daily_cap_reached")


# -- the order of the checks -------------------------------------------------------------------


def test_the_first_failing_check_in_the_fixed_order_explains_the_miss():
    failing_everything = strategy(
        unreadable=True,
        status="inactive",
        valid_until=at("2020-01-01 00:00"),
        window_start=dt.time(1),
        window_end=dt.time(2),
        product_ids=frozenset({"P0"}),
        covers_shipped=False,
        reasons=frozenset({"other"}),
        max_hours_since_payment=1,
        per_request_cap=Decimal("1.00"),
        max_per_buyer_30d=1,
        daily_cap=Decimal("1.00"),
    )
    expected = [
        ("unreadable", False, "strategy_unreadable"),
        ("status", "active", "inactive"),
        ("valid_until", None, "outside_validity"),
        ("window_start", None, "outside_window"),
        ("product_ids", frozenset(), "product_not_covered"),
        ("covers_shipped", True, "order_status_not_covered"),
        ("reasons", frozenset(), "reason_not_covered"),
        ("max_hours_since_payment", None, "application_too_late"),
        ("risk_control", False, "risk_flagged"),
        ("per_request_cap", None, "over_per_request_cap"),
        ("order_refunded", Decimal("0.00"), "order_total_exceeded"),  # the order, not a setting
        ("max_per_buyer_30d", None, "buyer_limit_reached"),
        ("daily_cap", Decimal("50000.00"), "daily_cap_reached"),
    ]
    assert len(expected) == len(CHECKS)
    req = request(risk_flag=True, order_fields={"total": Decimal("9.90")})
    current = failing_everything
    refunded = Decimal("0.01")
    for field, passing_value, code in expected:
        assert codes(run(req, current, buyer_approvals=1, order_refunded=refunded)) == [(1, code)]
        if field == "order_refunded":
            refunded = passing_value
            continue
        changes = {field: passing_value}
        if field == "window_start":
            changes["window_end"] = None
        current = replace(current, **changes)
    assert_hit(run(req, current, buyer_approvals=1, order_refunded=refunded))


# -- explanations ------------------------------------------------------------------------------


def test_explanations_have_the_json_shape_of_the_api():
    evaluation = run(
        request(amount=Decimal("25.00")),
        strategy(1, name="Small refunds", per_request_cap=Decimal("20.00")),
        strategy(2, name="Later"),
    )
    entry = evaluation.explanations[0].as_json()
    assert entry == {
        "scenario": "post_shipment_refund",
        "strategy": {"id": 1, "name": "Small refunds"},
        "code": "over_per_request_cap",
        "message": "Amount 25.00 is over the per-request cap 20.00",
        "params": {"amount": "25.00", "cap": "20.00"},
    }
    assert json.loads(json.dumps(entry)) == entry
    assert type(entry["scenario"]) is str


def test_every_explanation_can_be_rendered_again_from_its_code_and_params():
    req = request(risk_flag=True, order_fields={"shipped_at": None})
    strategies = [
        strategy(1, status="inactive"),
        strategy(2, valid_from=at("2030-01-01 00:00")),
        strategy(3, valid_until=at("2020-01-01 00:00")),
        strategy(4, window_start=dt.time(22), window_end=dt.time(8)),
        strategy(5, product_ids=frozenset({"P0"})),
        strategy(6, covers_shipped=False),
        strategy(7, shipped_min_days=1),
        strategy(8, reasons=frozenset({"other"})),
        strategy(9, max_hours_since_payment=1),
        strategy(10),
        strategy(11, risk_control=False, per_request_cap=Decimal("1.00")),
        strategy(12, risk_control=False, max_per_buyer_30d=1),
        strategy(13, risk_control=False, daily_cap=Decimal("1.00")),
        strategy(14, risk_control=False, status="trial"),
    ]
    evaluation = run(req, *strategies, buyer_approvals=1)
    assert [e.code for e in evaluation.explanations] == [
        "inactive",
        "outside_validity",
        "outside_validity",
        "outside_window",
        "product_not_covered",
        "order_status_not_covered",
        "order_status_not_covered",
        "reason_not_covered",
        "application_too_late",
        "risk_flagged",
        "over_per_request_cap",
        "buyer_limit_reached",
        "daily_cap_reached",
        "trial_would_hit",
    ]
    for explanation in evaluation.explanations:
        params = explanation.as_json()["params"]
        assert all(isinstance(v, str) for v in params.values())
        assert explanation_message(explanation.code, params) == explanation.message
        assert "%(" not in explanation.message


def test_messages_show_statuses_and_reasons_by_their_label_not_their_code():
    from django.utils import translation

    from strategies.matching import explanation_message

    with translation.override("en"):
        message = explanation_message("reason_not_covered", {"reason": "quality_issue"})
    assert "Quality issue" in message and "quality_issue" not in message
    with translation.override("zh-hans"):
        message = explanation_message(
            "order_status_not_covered", {"detail": "status", "status": "shipped"}
        )
    assert "shipped" not in message
