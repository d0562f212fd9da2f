"""The generated sentence of a strategy (issue 12 point 4) and the precedence between scenarios
(point 5), in Chinese and English, from the one list of settings."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import translation

from strategies.models import STRATEGY_SETTING_GROUPS, Scenario
from strategies.services.summary import (
    backtest_headline,
    phrase_keys,
    scenario_order_text,
    scenario_precedence,
    strategy_save_risks,
    strategy_summary,
)
from tests.factories import make_finished_backtest, make_product, make_strategy

pytestmark = pytest.mark.django_db


@pytest.fixture
def night(shop):
    return make_strategy(
        shop=shop,
        name="Night",
        shipped_max_days=10,
        per_request_cap=Decimal("25.50"),
        daily_cap=Decimal("3000.00"),
        window_start=dt.time(22, 0),
        window_end=dt.time(8, 0),
        reasons=["no_longer_needed", "seven_day_no_reason"],
        risk_control=True,
    )


def test_the_sentence_reads_as_the_issue_shows_in_chinese(night):
    with translation.override("zh-hans"):
        text = strategy_summary(strategy=night)
    assert text == (
        "自动同意 已发货（10 天内）/已签收 订单的仅退款申请：单笔 ≤ 25.50，每日 ≤ 3,000.00，"
        "22:00-08:00，原因：不想要了/拍错了、七天无理由退货；开启风控"
    )


def test_the_sentence_is_in_english_in_an_english_interface(night):
    with translation.override("en"):
        text = strategy_summary(strategy=night)
    assert text == (
        "Automatically approves refund-only requests on shipped (within 10 days)/received "
        "orders: each ≤ 25.50, per day ≤ 3,000.00, 22:00-08:00, reasons: No longer needed / "
        "ordered by mistake, Seven-day no-reason return; risk control on"
    )


def test_strategies_that_differ_only_in_window_reasons_or_days_read_differently(shop):
    base = {"per_request_cap": Decimal("20.00")}
    variants = [
        make_strategy(shop=shop, **base),
        make_strategy(shop=shop, window_start=dt.time(9), window_end=dt.time(18), **base),
        make_strategy(shop=shop, reasons=["not_received"], **base),
        make_strategy(shop=shop, shipped_min_days=3, shipped_max_days=7, **base),
        make_strategy(shop=shop, received_min_days=2, **base),
        make_strategy(shop=shop, covers_received=False, **base),
        make_strategy(shop=shop, max_hours_since_payment=48, **base),
        make_strategy(shop=shop, max_per_buyer_30d=2, **base),
        make_strategy(shop=shop, risk_control=False, **base),
        make_strategy(shop=shop, valid_until=dt.datetime(2027, 1, 1, tzinfo=dt.UTC), **base),
    ]
    with translation.override("en"):
        texts = [strategy_summary(strategy=s) for s in variants]
    assert len(set(texts)) == len(texts)
    assert "shipped (3-7 days)" in texts[3]
    assert "received (after 2 days)" in texts[4]
    assert "on shipped orders" in texts[5]
    assert "valid until 2027-01-01 08:00" in texts[9]  # the shop's time (Shanghai)


def test_every_group_of_settings_has_its_phrase():
    # A setting added to the one list without saying how the sentence reads fails here.
    assert phrase_keys() == {g.names()[0] for g in STRATEGY_SETTING_GROUPS}


def test_products_and_no_per_request_cap_are_said(shop):
    strategy = make_strategy(shop=shop, per_request_cap=None)
    strategy.products.set([make_product(shop=shop), make_product(shop=shop)])
    with translation.override("en"):
        text = strategy_summary(strategy=strategy)
    assert "no per-request cap" in text and "only 2 chosen products" in text


def test_an_unsaved_forms_values_override_the_stored_ones(night):
    with translation.override("en"):
        text = strategy_summary(strategy=night, values={"daily_cap": Decimal("100000.00")})
    assert "per day ≤ 100,000.00" in text


def test_the_no_return_scenario_says_it_refunds_return_requests_first():
    with translation.override("en"):
        no_return = " ".join(scenario_precedence(Scenario.POST_SHIPMENT_NO_RETURN))
        returns = " ".join(scenario_precedence(Scenario.POST_SHIPMENT_RETURN_REFUND))
        refund = " ".join(scenario_precedence(Scenario.POST_SHIPMENT_REFUND))
        tagged = scenario_precedence(Scenario.TAGGED_REFUND_NO_RETURN)
    assert "also take “Return and refund” requests" in no_return
    assert "After shipment: automatic return and refund" in no_return
    assert "without the goods coming back" in no_return
    assert "tried first by “After shipment: refund only, no return”" in returns
    assert "without the goods coming back" in returns
    assert "“Refund only” requests are tried first" in refund
    assert tagged == []  # no other scenario takes refund-without-return requests


def test_the_fixed_order_is_said_in_chinese():
    with translation.override("zh-hans"):
        text = scenario_order_text()
    assert text.startswith("各场景按以下固定顺序尝试")
    assert text.index("1. ") < text.index("5. ")


def test_the_backtest_headline_names_the_strategys_own_hits(shop, night):
    run = make_finished_backtest(shop=shop, strategy=night, kind="current", candidate_count=9999)
    with translation.override("en"):
        text = backtest_headline(run=run, strategy_id=night.pk)
    assert text == "backtested 30 days: would approve 1,204 requests, 8,310.50"


def test_a_save_asks_to_confirm_switching_on_and_raising_an_active_cap(shop):
    inactive = make_strategy(shop=shop, per_request_cap=Decimal("10.00"))
    active = make_strategy(shop=shop, status="active", per_request_cap=Decimal("10.00"))
    with translation.override("en"):
        assert strategy_save_risks(before=inactive, values={"status": "active"}, used_today=None)
        # An inactive strategy's cap moves no money.
        assert not strategy_save_risks(
            before=inactive, values={"daily_cap": Decimal("90000")}, used_today=None
        )
        raised = strategy_save_risks(
            before=active,
            values={"status": "active", "per_request_cap": None, "daily_cap": active.daily_cap},
            used_today=None,
        )
        lowered = strategy_save_risks(
            before=active,
            values={"status": "active", "daily_cap": Decimal("500.00")},
            used_today=Decimal("999.91"),
        )
    assert raised == ["The per-request cap is raised from 10.00 to no limit."]
    assert lowered == [
        "Today 999.91 is already used, at or above the daily total cap of 500.00: no more "
        "requests today."
    ]
