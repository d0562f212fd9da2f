"""Time in the matcher: daily windows (across midnight, in the shop's zone, over DST changes) and
days since shipment / receipt, counted as calendar days in the shop's zone. No database."""

import datetime as dt

import pytest
from django.utils import translation

from tests.strategies.matching_builders import (
    LOS_ANGELES,
    SHANGHAI,
    at,
    codes,
    request,
    run,
    strategy,
)

UTC = dt.UTC
NIGHT = {"window_start": dt.time(22), "window_end": dt.time(8)}


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def verdict(evaluation) -> str:
    return "hit" if evaluation.hit else evaluation.explanations[0].code


# -- daily window ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local_time", "expected"),
    [
        ("2026-11-22 22:00:00", "hit"),
        ("2026-11-22 23:30:00", "hit"),
        ("2026-11-23 00:00:00", "hit"),
        ("2026-11-23 07:59:00", "hit"),
        ("2026-11-23 07:59:59", "hit"),
        ("2026-11-23 08:00:00", "outside_window"),
        ("2026-11-23 12:00:00", "outside_window"),
        ("2026-11-22 21:59:59", "outside_window"),
    ],
)
def test_a_window_across_midnight_covers_the_night_in_the_shops_zone(local_time, expected):
    req = request(applied_at=at(local_time, SHANGHAI))
    assert verdict(run(req, strategy(**NIGHT), zone=SHANGHAI)) == expected


def test_the_window_is_judged_in_the_shops_zone_not_the_requests_offset():
    # 02:00 in Shanghai is 10:00 the day before in Los Angeles.
    req = request(applied_at=at("2026-11-23 02:00", SHANGHAI))
    assert verdict(run(req, strategy(**NIGHT), zone=SHANGHAI)) == "hit"
    evaluation = run(req, strategy(**NIGHT), zone=LOS_ANGELES)
    assert codes(evaluation) == [(1, "outside_window")]
    assert evaluation.explanations[0].message == (
        "Applied at 10:00 (America/Los_Angeles), outside the daily window 22:00-08:00"
    )


def test_a_daytime_window_follows_the_clock_when_daylight_saving_starts():
    # DST starts in Los Angeles on 2026-03-08: 16:30 UTC is 08:30 before and 09:30 after.
    office = strategy(window_start=dt.time(9), window_end=dt.time(17))
    before = request(applied_at=dt.datetime(2026, 3, 7, 16, 30, tzinfo=UTC))
    after = request(applied_at=dt.datetime(2026, 3, 9, 16, 30, tzinfo=UTC))
    assert verdict(run(before, office, zone=LOS_ANGELES)) == "outside_window"
    assert verdict(run(after, office, zone=LOS_ANGELES)) == "hit"


def test_a_night_window_follows_the_clock_when_daylight_saving_ends():
    # DST ends in Los Angeles on 2026-11-01: 15:30 UTC is 08:30 before and 07:30 after.
    before = request(applied_at=dt.datetime(2026, 10, 31, 15, 30, tzinfo=UTC))
    after = request(applied_at=dt.datetime(2026, 11, 1, 15, 30, tzinfo=UTC))
    assert verdict(run(before, strategy(**NIGHT), zone=LOS_ANGELES)) == "outside_window"
    assert verdict(run(after, strategy(**NIGHT), zone=LOS_ANGELES)) == "hit"


def test_no_window_covers_the_whole_day():
    for local in ("2026-11-22 00:00", "2026-11-22 12:00", "2026-11-22 23:59:59"):
        assert verdict(run(request(applied_at=at(local)), strategy())) == "hit"


# -- days since shipment / receipt ------------------------------------------------------------


def shipped(shipped_at: dt.datetime, applied_at: dt.datetime):
    return request(applied_at=applied_at, order_fields={"shipped_at": shipped_at})


def test_days_since_shipment_count_calendar_days_not_24_hour_periods():
    # 20 minutes apart, across local midnight: "shipped yesterday".
    req = shipped(at("2026-11-21 23:50"), at("2026-11-22 00:10"))
    assert verdict(run(req, strategy(shipped_max_days=0))) == "order_status_not_covered"
    assert verdict(run(req, strategy(shipped_min_days=1, shipped_max_days=1))) == "hit"


def test_the_same_local_day_is_zero_days_even_almost_24_hours_apart():
    req = shipped(at("2026-11-21 00:10"), at("2026-11-21 23:50"))
    assert verdict(run(req, strategy(shipped_max_days=0))) == "hit"
    assert verdict(run(req, strategy(shipped_min_days=1))) == "order_status_not_covered"


@pytest.mark.parametrize(
    ("min_days", "max_days", "expected"),
    [
        (3, 3, "hit"),
        (None, 3, "hit"),
        (3, None, "hit"),
        (0, 7, "hit"),
        (4, None, "order_status_not_covered"),
        (None, 2, "order_status_not_covered"),
        (4, 7, "order_status_not_covered"),
    ],
)
def test_day_range_bounds_are_inclusive(min_days, max_days, expected):
    req = shipped(at("2026-11-19 18:00"), at("2026-11-22 10:15"))  # 3 calendar days
    ranged = strategy(shipped_min_days=min_days, shipped_max_days=max_days)
    assert verdict(run(req, ranged)) == expected


def test_days_are_counted_on_the_shops_local_dates():
    # Shipped 15:50 UTC, applied 16:10 UTC the same day: in Shanghai that crosses midnight
    # (23:50 -> 00:10), in Los Angeles it does not (07:50 -> 08:10).
    req = shipped(
        dt.datetime(2026, 11, 21, 15, 50, tzinfo=UTC), dt.datetime(2026, 11, 21, 16, 10, tzinfo=UTC)
    )
    ranged = strategy(shipped_min_days=1)
    assert verdict(run(req, ranged, zone=SHANGHAI)) == "hit"
    assert verdict(run(req, ranged, zone=LOS_ANGELES)) == "order_status_not_covered"


def test_a_daylight_saving_change_does_not_shift_the_day_count():
    # 2026-03-07 12:00 PST to 2026-03-10 11:00 PDT: 70 hours, but three calendar days.
    req = shipped(at("2026-03-07 12:00", LOS_ANGELES), at("2026-03-10 11:00", LOS_ANGELES))
    assert verdict(run(req, strategy(shipped_min_days=3), zone=LOS_ANGELES)) == "hit"


def test_days_since_receipt_use_the_receipt_time():
    req = request(
        applied_at=at("2026-11-22 10:15"),
        order_fields={
            "status": "received",
            "shipped_at": at("2026-11-10 08:00"),
            "received_at": at("2026-11-20 23:59"),
        },
    )
    assert verdict(run(req, strategy(received_min_days=2, received_max_days=2))) == "hit"
    evaluation = run(req, strategy(received_max_days=1))
    assert evaluation.explanations[0].message == (
        "Order status Received for 2 days, outside the strategy's … to 1 days"
    )
