"""The replay engine on small, hand-made periods: each simulated rule against what the live
decision service did with the same requests, and what a changed set would have done."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from strategies.backtest.loaders import strategy_set
from strategies.backtest.replay import REACHED, WARNING
from strategies.models import AfterSaleRequest, Strategy
from tests.factories import make_order, make_request, make_shop, make_strategy
from tests.strategies.backtest.builders import payload, post, post_and_decide, replay_all

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
DAY = dt.date(2026, 9, 10)


def at(day: dt.date, hour: int, minute: int = 0, zone: ZoneInfo = SHANGHAI) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)


def changed_set(shop, changes: dict[Strategy, dict]) -> list:
    """The shop's set as it is now, with ``{strategy: {field: value}}`` applied."""
    by_id = {s.pk: fields for s, fields in changes.items()}
    return [
        dataclasses.replace(m.snapshot, **by_id.get(m.snapshot.id, {}))
        for m in strategy_set(shop=shop)
    ]


def hits(replayed) -> list[int | None]:
    return [item.hit.id if item.hit else None for item, _seen in replayed]


def live_hits(decisions) -> list[int | None]:
    return [d.strategy_id for d in decisions]


@pytest.mark.django_db
def test_a_cap_that_runs_out_mid_day_passes_the_rest_to_the_next_strategy(shop):
    small = make_strategy(shop=shop, status="active", daily_cap=Decimal("30.00"))
    spare = make_strategy(shop=shop, status="active")
    decisions = [
        post_and_decide(shop, payload(applied_at=at(DAY, hour), amount="10.00"))
        for hour in (9, 10, 11, 12, 13)
    ]
    assert live_hits(decisions) == [small.pk] * 3 + [spare.pk] * 2

    replayed = replay_all(shop, DAY, DAY)
    assert hits(replayed) == live_hits(decisions)
    # 95% and 100% at the third approval (11:00); the fourth is turned away for the cap.
    assert [item.events for item, _ in replayed] == [
        [],
        [],
        [(small.pk, WARNING), (small.pk, REACHED)],
        [],
        [],
    ]
    fourth, seen = replayed[3]
    assert fourth.verdict.codes() == [(small.pk, "daily_cap_reached")]
    assert seen["moment"].consumed == {small.pk: Decimal("30.00")}

    # With a cap of 20.00 it runs out at 10:00 and the third request goes to the spare one.
    lowered = replay_all(shop, DAY, DAY, changed_set(shop, {small: {"daily_cap": Decimal("20")}}))
    assert hits(lowered) == [small.pk] * 2 + [spare.pk] * 3
    assert [item.changed for item, _ in lowered] == [False, False, True, False, False]


@pytest.mark.django_db
def test_in_a_western_zone_the_ledger_day_ends_at_the_shops_midnight():
    shop = make_shop(code="shop-la", timezone="America/Los_Angeles")
    capped = make_strategy(shop=shop, status="active", daily_cap=Decimal("10.00"))
    # 23:50 and 00:10 Los Angeles: one UTC day (07:50 and 08:10 UTC), two local days.
    late = at(DAY, 23, 50, LOS_ANGELES)
    early = at(DAY + dt.timedelta(days=1), 0, 10, LOS_ANGELES)
    after = at(DAY + dt.timedelta(days=1), 0, 20, LOS_ANGELES)
    assert late.astimezone(dt.UTC).date() == early.astimezone(dt.UTC).date()
    decisions = [
        post_and_decide(shop, payload(applied_at=moment, amount="10.00"))
        for moment in (late, early, after)
    ]
    assert live_hits(decisions) == [capped.pk, capped.pk, None]

    replayed = replay_all(shop, DAY, DAY + dt.timedelta(days=1))
    assert hits(replayed) == live_hits(decisions)
    next_day = DAY + dt.timedelta(days=1)
    assert [item.day for item, _ in replayed] == [DAY, next_day, next_day]
    # The period is whole local days: the first day alone holds only the 23:50 request.
    assert hits(replay_all(shop, DAY, DAY)) == [capped.pk]


@pytest.mark.django_db
def test_a_request_applied_before_midnight_and_decided_after_counts_on_the_new_day(shop):
    capped = make_strategy(shop=shop, status="active", daily_cap=Decimal("10.00"))
    first = post_and_decide(shop, payload(applied_at=at(DAY, 20), amount="10.00"))
    # Applied at 23:59:59, decided at 00:00:05: the approval is the new day's.
    second = post_and_decide(
        shop,
        payload(applied_at=at(DAY, 23, 59) + dt.timedelta(seconds=59), amount="10.00"),
        now=at(DAY + dt.timedelta(days=1), 0) + dt.timedelta(seconds=5),
    )
    assert live_hits([first, second]) == [capped.pk, capped.pk]
    replayed = replay_all(shop, DAY, DAY + dt.timedelta(days=1))
    assert hits(replayed) == [capped.pk, capped.pk]
    assert [item.day for item, _ in replayed] == [DAY, DAY + dt.timedelta(days=1)]


@pytest.mark.django_db
def test_a_trial_strategy_is_logged_as_would_approve_and_consumes_nothing_until_switched_on(
    shop,
):
    trial = make_strategy(shop=shop, status="trial", daily_cap=Decimal("20.00"))
    active = make_strategy(shop=shop, status="active")
    decisions = [
        post_and_decide(shop, payload(applied_at=at(DAY, hour), amount="10.00"))
        for hour in (9, 10, 11)
    ]
    assert live_hits(decisions) == [active.pk] * 3

    replayed = replay_all(shop, DAY, DAY)
    assert hits(replayed) == live_hits(decisions)
    assert [item.verdict.codes() for item, _ in replayed] == [[(trial.pk, "trial_would_hit")]] * 3
    assert all(trial.pk not in seen["moment"].consumed for _item, seen in replayed)

    # Switched on, it takes the first two and its cap sends the third to the other one.
    switched = replay_all(shop, DAY, DAY, changed_set(shop, {trial: {"status": "active"}}))
    assert hits(switched) == [trial.pk, trial.pk, active.pk]
    assert [item.changed for item, _ in switched] == [True, True, False]
    assert switched[2][0].verdict.codes() == [(trial.pk, "daily_cap_reached")]


@pytest.mark.django_db
def test_a_reorder_gives_the_requests_to_the_strategy_moved_up_and_shadows_the_other(shop):
    broad = make_strategy(shop=shop, status="active", name="Broad")
    narrow = make_strategy(
        shop=shop, status="active", name="Narrow", per_request_cap=Decimal("15.00")
    )
    decisions = [
        post_and_decide(shop, payload(applied_at=at(DAY, hour), amount=amount))
        for hour, amount in ((9, "10.00"), (10, "50.00"), (11, "12.00"))
    ]
    assert live_hits(decisions) == [broad.pk] * 3
    replayed = replay_all(shop, DAY, DAY)
    # Narrow would also have taken the two small ones: shadowed by Broad.
    assert [[s.id for s in item.verdict.shadowed] for item, _ in replayed] == [
        [narrow.pk],
        [],
        [narrow.pk],
    ]

    swapped = replay_all(
        shop, DAY, DAY, changed_set(shop, {broad: {"position": 2}, narrow: {"position": 1}})
    )
    assert hits(swapped) == [narrow.pk, broad.pk, narrow.pk]
    assert [item.changed for item, _ in swapped] == [True, False, True]
    assert [[s.id for s in item.verdict.shadowed] for item, _ in swapped] == [
        [broad.pk],
        [],
        [broad.pk],
    ]


@pytest.mark.django_db
def test_the_per_buyer_limit_counts_the_live_approvals_before_the_period(shop):
    limited = make_strategy(shop=shop, status="active", max_per_buyer_30d=3)
    start = DAY
    before = [
        post_and_decide(shop, payload(applied_at=at(start - dt.timedelta(days=d), 12)))
        for d in (40, 20, 5)  # the first is outside the 30 days of any request of the period
    ]
    assert live_hits(before) == [limited.pk] * 3
    inside = [
        post_and_decide(shop, payload(applied_at=at(start, 9))),  # 20 and 5 days ago: 2 < 3
        post_and_decide(shop, payload(applied_at=at(start, 10))),  # 3 in 30 days: refused
        post_and_decide(shop, payload(applied_at=at(start + dt.timedelta(days=11), 13))),
        post_and_decide(shop, payload(applied_at=at(start + dt.timedelta(days=11), 14))),
    ]
    # Day 12: the approval of 20 days before the start has left the 30 days, one more fits.
    assert live_hits(inside) == [limited.pk, None, limited.pk, None]

    replayed = replay_all(shop, start, start + dt.timedelta(days=11))
    assert hits(replayed) == live_hits(inside)
    assert [seen["moment"].buyer_approvals for _item, seen in replayed] == [2, 3, 2, 3]
    assert replayed[1][0].verdict.codes() == [(limited.pk, "buyer_limit_reached")]


@pytest.mark.django_db
def test_the_order_total_counts_what_the_order_had_approved_before_the_period(shop):
    strategy = make_strategy(shop=shop, status="active")
    items = [("P1", 1, "30.00")]
    first = post_and_decide(
        shop,
        payload(
            applied_at=at(DAY - dt.timedelta(days=1), 12),
            amount="20.00",
            order_id="OD-TOTAL",
            items=items,
        ),
    )
    second = post_and_decide(
        shop, payload(applied_at=at(DAY, 9), amount="15.00", order_id="OD-TOTAL", items=items)
    )
    third = post_and_decide(
        shop, payload(applied_at=at(DAY, 10), amount="10.00", order_id="OD-TOTAL", items=items)
    )
    assert live_hits([first, second, third]) == [strategy.pk, None, strategy.pk]
    replayed = replay_all(shop, DAY, DAY)
    assert hits(replayed) == [None, strategy.pk]
    assert [seen["moment"].order_refunded for _i, seen in replayed] == [Decimal("20.00")] * 2


@pytest.mark.django_db
def test_requests_never_decided_and_payloads_without_an_order_are_replayed_too(shop):
    strategy = make_strategy(shop=shop, status="active")
    waiting = post(shop, payload(applied_at=at(DAY, 9)))  # stored, never decided
    # A payload without API.md's order block: the order row's state is used.
    bare = make_request(shop=shop, order=make_order(shop=shop, status="shipped"), amount="5.00")
    noon = at(DAY, 12)
    AfterSaleRequest.objects.filter(pk__in=[waiting.pk, bare.pk]).update(received_at=noon)
    replayed = replay_all(shop, DAY, DAY)
    assert sorted(item.stored.request_id for item, _ in replayed) == sorted([waiting.pk, bare.pk])
    assert {item.stored.request_id: item.stored.from_payload for item, _ in replayed} == {
        waiting.pk: True,
        bare.pk: False,
    }
    assert hits(replayed) == [strategy.pk, strategy.pk]
    assert all(item.changed for item, _ in replayed)  # approved here, never decided live
