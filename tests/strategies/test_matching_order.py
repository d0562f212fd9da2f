"""Which strategy decides: scenario order, priority within a scenario, at most one hit, trial
strategies passed over, completed orders left alone, and re-evaluation after a lost cap race.
No database."""

from decimal import Decimal

import pytest
from django.utils import translation

from strategies.matching import scenarios_for
from tests.strategies.matching_builders import codes, request, run, strategy


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def tagged_request(**fields):
    return request(
        type="refund_no_return",
        order_fields={"tags": frozenset({"refund_no_return"}), **fields.pop("order_fields", {})},
        **fields,
    )


# -- which scenarios a request falls under -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "type", "tags", "expected"),
    [
        ("pending_shipment", "refund_only", (), ["pre_shipment_refund"]),
        ("pending_shipment", "return_refund", (), []),
        ("pending_shipment", "refund_no_return", ("refund_no_return",), []),
        ("shipped", "refund_only", (), ["post_shipment_no_return", "post_shipment_refund"]),
        ("received", "refund_only", (), ["post_shipment_no_return", "post_shipment_refund"]),
        (
            "shipped",
            "return_refund",
            (),
            ["post_shipment_no_return", "post_shipment_return_refund"],
        ),
        ("received", "refund_no_return", ("refund_no_return",), ["tagged_refund_no_return"]),
        ("shipped", "refund_no_return", (), []),  # not tagged
        ("completed", "refund_only", (), []),
        ("completed", "return_refund", (), []),
        ("completed", "refund_no_return", ("refund_no_return",), []),
    ],
)
def test_the_scenarios_a_request_falls_under(status, type, tags, expected):
    req = request(type=type, order_fields={"status": status, "tags": frozenset(tags)})
    assert list(scenarios_for(req)) == expected


# -- scenario order ----------------------------------------------------------------------------


def test_post_shipment_no_return_is_tried_before_post_shipment_refund():
    refund = strategy(1, scenario="post_shipment_refund", position=1)
    no_return = strategy(2, scenario="post_shipment_no_return", position=5)
    evaluation = run(request(), refund, no_return)
    assert evaluation.hit.id == 2
    assert evaluation.scenario == "post_shipment_no_return"
    assert evaluation.action == "approve_refund"


def test_a_return_refund_request_under_post_shipment_no_return_is_approved_as_refund_only():
    return_refund = strategy(1, scenario="post_shipment_return_refund")
    no_return = strategy(2, scenario="post_shipment_no_return")
    req = request(type="return_refund")
    evaluation = run(req, return_refund, no_return)
    assert (evaluation.hit.id, evaluation.action) == (2, "approve_refund")


def test_post_shipment_return_refund_approves_the_return():
    evaluation = run(
        request(type="return_refund"), strategy(scenario="post_shipment_return_refund")
    )
    assert evaluation.scenario == "post_shipment_return_refund"
    assert evaluation.action == "approve_return"


def test_later_scenarios_are_tried_when_earlier_ones_miss_and_explained_in_order():
    strategies = [
        strategy(1, scenario="post_shipment_refund", position=1),
        strategy(2, scenario="post_shipment_no_return", position=1, status="inactive"),
        strategy(3, scenario="post_shipment_no_return", position=2, reasons=frozenset({"other"})),
    ]
    evaluation = run(request(), *strategies)
    assert evaluation.hit.id == 1
    assert evaluation.scenario == "post_shipment_refund"
    assert codes(evaluation) == [(2, "inactive"), (3, "reason_not_covered")]
    assert [e.scenario for e in evaluation.explanations] == ["post_shipment_no_return"] * 2


def test_the_tagged_scenario_is_tried_first():
    tagged = strategy(1, scenario="tagged_refund_no_return", position=3)
    evaluation = run(tagged_request(), tagged)
    assert (evaluation.hit.id, evaluation.scenario, evaluation.action) == (
        1,
        "tagged_refund_no_return",
        "approve_refund",
    )


def test_strategies_of_scenarios_the_request_is_not_under_are_neither_tried_nor_explained():
    strategies = [
        strategy(1, scenario="pre_shipment_refund"),
        strategy(2, scenario="post_shipment_return_refund"),
        strategy(3, scenario="tagged_refund_no_return"),
        strategy(4, scenario="post_shipment_refund", status="inactive"),
    ]
    evaluation = run(request(), *strategies)
    assert evaluation.hit is None
    assert codes(evaluation) == [(4, "inactive")]


def test_pre_shipment_refund_covers_a_pending_order():
    req = request(order_fields={"status": "pending_shipment", "shipped_at": None})
    post = strategy(1, scenario="post_shipment_refund")
    pre = strategy(2, scenario="pre_shipment_refund")
    evaluation = run(req, post, pre)
    assert (evaluation.hit.id, evaluation.action) == (2, "approve_refund")


@pytest.mark.parametrize("type", ["refund_only", "return_refund", "refund_no_return"])
def test_a_completed_order_is_never_auto_decided(type):
    req = request(
        type=type, order_fields={"status": "completed", "tags": frozenset({"refund_no_return"})}
    )
    every_scenario = [
        strategy(i, scenario=scenario)
        for i, scenario in enumerate(
            [
                "tagged_refund_no_return",
                "pre_shipment_refund",
                "post_shipment_no_return",
                "post_shipment_refund",
                "post_shipment_return_refund",
            ],
            start=1,
        )
    ]
    evaluation = run(req, *every_scenario)
    assert (evaluation.hit, evaluation.scenario, evaluation.action) == (None, "", "")
    assert evaluation.explanations == ()


# -- priority within a scenario ----------------------------------------------------------------


def test_strategies_are_tried_by_priority_whatever_order_they_are_given_in():
    low = strategy(1, position=2)
    high = strategy(2, position=1)
    assert run(request(), low, high).hit.id == 2
    assert run(request(), high, low).hit.id == 2


def test_equal_priorities_are_tried_by_id():
    assert run(request(), strategy(7, position=1), strategy(3, position=1)).hit.id == 3


def test_a_request_hits_at_most_one_strategy_and_later_ones_are_not_explained():
    strategies = [strategy(i, position=i) for i in range(1, 6)]
    evaluation = run(request(), *strategies)
    assert evaluation.hit.id == 1
    assert evaluation.explanations == ()


def test_the_hit_is_not_in_its_own_explanations():
    evaluation = run(request(), strategy(1, status="inactive"), strategy(2), strategy(3))
    assert evaluation.hit.id == 2
    assert codes(evaluation) == [(1, "inactive")]


# -- trial strategies --------------------------------------------------------------------------


def test_a_trial_strategy_that_would_hit_is_logged_and_passed_over():
    trial = strategy(1, status="trial", position=1)
    active = strategy(2, position=2)
    evaluation = run(request(amount=Decimal("9.90")), trial, active)
    assert evaluation.hit.id == 2
    assert codes(evaluation) == [(1, "trial_would_hit")]
    assert evaluation.explanations[0].message == (
        "Trial run: would approve 9.90; nothing is executed and the next strategy is tried"
    )


def test_a_trial_strategy_alone_leaves_the_request_for_manual_review():
    evaluation = run(request(), strategy(1, status="trial"))
    assert (evaluation.hit, evaluation.action) == (None, "")
    assert codes(evaluation) == [(1, "trial_would_hit")]


def test_a_trial_strategy_that_fails_a_check_gives_that_check():
    trial = strategy(1, status="trial", reasons=frozenset({"other"}))
    assert codes(run(request(), trial)) == [(1, "reason_not_covered")]


def test_trial_strategies_in_an_earlier_scenario_do_not_stop_later_scenarios():
    trial = strategy(1, scenario="post_shipment_no_return", status="trial")
    active = strategy(2, scenario="post_shipment_refund")
    evaluation = run(request(), trial, active)
    assert (evaluation.hit.id, evaluation.scenario) == (2, "post_shipment_refund")
    assert codes(evaluation) == [(1, "trial_would_hit")]


# -- manual review -----------------------------------------------------------------------------


def test_no_hit_leaves_the_request_for_manual_review_with_every_strategy_tried():
    strategies = [
        strategy(1, scenario="post_shipment_no_return", per_request_cap=Decimal("5.00")),
        strategy(2, scenario="post_shipment_refund", position=1, status="inactive"),
        strategy(3, scenario="post_shipment_refund", position=2, max_per_buyer_30d=1),
    ]
    evaluation = run(request(), *strategies, buyer_approvals=1)
    assert (evaluation.hit, evaluation.scenario, evaluation.action) == (None, "", "")
    assert codes(evaluation) == [
        (1, "over_per_request_cap"),
        (2, "inactive"),
        (3, "buyer_limit_reached"),
    ]


def test_a_shop_without_strategies_leaves_every_request_for_manual_review():
    evaluation = run(request())
    assert (evaluation.hit, evaluation.explanations) == (None, ())


# -- the decision service's cap race -----------------------------------------------------------


def test_after_losing_the_cap_race_the_next_strategy_by_priority_takes_the_request():
    first = strategy(1, position=1, daily_cap=Decimal("100.00"))
    second = strategy(2, position=2, daily_cap=Decimal("100.00"))
    consumed = {1: Decimal("50.00")}
    assert run(request(), first, second, consumed=consumed).hit.id == 1

    # The conditional UPDATE on strategy 1's ledger lost: the service marks it full.
    again = run(request(), first, second, consumed={**consumed, 1: first.daily_cap})
    assert again.hit.id == 2
    assert codes(again) == [(1, "daily_cap_reached")]


def test_after_losing_the_race_on_the_last_strategy_the_request_goes_to_manual_review():
    only = strategy(1, daily_cap=Decimal("100.00"))
    evaluation = run(request(), only, consumed={1: only.daily_cap})
    assert evaluation.hit is None
    assert codes(evaluation) == [(1, "daily_cap_reached")]


def test_a_full_strategy_in_an_earlier_scenario_passes_the_request_to_the_next_scenario():
    full = strategy(1, scenario="post_shipment_no_return", daily_cap=Decimal("10.00"))
    open_ = strategy(2, scenario="post_shipment_refund")
    evaluation = run(request(), full, open_, consumed={1: Decimal("10.00")})
    assert (evaluation.hit.id, evaluation.scenario) == (2, "post_shipment_refund")
