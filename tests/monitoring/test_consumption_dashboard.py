"""The consumption dashboard (资金消耗): today's share of each cap (red above 90%), and the last
30 shop-local days, with the day boundary in Asia/Shanghai and in a DST time zone."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from monitoring.charts import bar_chart
from monitoring.selectors import consumption_series, consumption_today
from tests.factories import make_ledger, make_log_decision, make_shop, make_strategy

URL = reverse("monitoring:consumption")
UTC = dt.UTC


def row_of(response, strategy) -> str:
    html = response.content.decode()
    start = html.index(f'data-strategy="{strategy.pk}"')
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


def test_it_shows_each_strategys_share_and_turns_red_only_above_90_percent(client, viewer, shop):
    at_90 = make_strategy(shop=shop, name="Exactly ninety", daily_cap=Decimal("10000.00"))
    above = make_strategy(shop=shop, name="Just above", daily_cap=Decimal("10000.00"))
    idle = make_strategy(shop=shop, name="Idle", daily_cap=Decimal("500.00"))
    make_ledger(strategy=at_90, consumed="9000.00", approved_count=900)
    make_ledger(strategy=above, consumed="9001.00", approved_count=901)
    client.force_login(viewer)
    response = client.get(URL)
    assert response.status_code == 200
    normal, red, zero = row_of(response, at_90), row_of(response, above), row_of(response, idle)
    assert "90.00%" in normal and "atom-warning" not in normal
    assert "9,000.00 / 10,000.00" in normal and ">900<" in normal
    assert "90.01%" in red and "atom-warning" in red
    assert "0.00%" in zero and "atom-warning" not in zero


def test_a_bar_never_overflows_past_a_full_cap(client, viewer, shop):
    over = make_strategy(shop=shop, name="Over", daily_cap=Decimal("100.00"))
    make_ledger(strategy=over, consumed="150.00", approved_count=3)
    client.force_login(viewer)
    row = row_of(client.get(URL), over)
    # A cap lowered below what was used shows full, never above (issue 12 point 6); the
    # amounts say by how much.
    assert "width:100.00%" in row and "100.00%" in row
    assert "150.00%" not in row and "150.00 / 100.00" in row


@pytest.mark.parametrize(
    ("zone", "before", "after", "day_before", "day_after"),
    [
        # Shanghai (UTC+8): the day turns at 16:00 UTC.
        (
            "Asia/Shanghai",
            dt.datetime(2026, 3, 10, 15, 59, 59, 900000, tzinfo=UTC),
            dt.datetime(2026, 3, 10, 16, 0, 0, 100000, tzinfo=UTC),
            dt.date(2026, 3, 10),
            dt.date(2026, 3, 11),
        ),
        # Los Angeles on the day DST starts (8 March 2026): PST (UTC-8) until 02:00, so the 8th
        # ends at 07:00 UTC on the 9th... the 9th already being PDT (UTC-7).
        (
            "America/Los_Angeles",
            dt.datetime(2026, 3, 9, 6, 59, 59, 900000, tzinfo=UTC),
            dt.datetime(2026, 3, 9, 7, 0, 0, 100000, tzinfo=UTC),
            dt.date(2026, 3, 8),
            dt.date(2026, 3, 9),
        ),
        # ... and the day DST ends (1 November 2026, 25 hours long): PST from 02:00.
        (
            "America/Los_Angeles",
            dt.datetime(2026, 11, 2, 7, 59, 59, 900000, tzinfo=UTC),
            dt.datetime(2026, 11, 2, 8, 0, 0, 100000, tzinfo=UTC),
            dt.date(2026, 11, 1),
            dt.date(2026, 11, 2),
        ),
    ],
)
def test_today_and_the_30_days_follow_the_shops_midnight(
    db, zone, before, after, day_before, day_after
):
    shop = make_shop(code="tz", timezone=zone)
    strategy = make_strategy(shop=shop, name="S", daily_cap=Decimal("100.00"))
    make_ledger(strategy=strategy, day=day_before, consumed="95.00", approved_count=5)
    make_log_decision(shop=shop, outcome="manual_review", decided_at=before)
    make_log_decision(shop=shop, outcome="manual_review", decided_at=after)
    make_log_decision(shop=shop, outcome="manual_review", decided_at=after)

    # Just before midnight: yesterday's ledger is today's.
    (late,) = consumption_today(shop=shop, now=before)
    assert late.consumption.consumed == Decimal("95.00")
    assert late.consumption.is_warning
    # Just after: a new day, starting from zero.
    (early,) = consumption_today(shop=shop, now=after)
    assert early.consumption.consumed == Decimal("0.00")
    assert not early.consumption.is_warning

    series = consumption_series(shop=shop, now=after)
    assert len(series.days) == 30
    assert series.days[-1] == day_after
    assert series.days[0] == day_after - dt.timedelta(days=29)
    assert series.hits[strategy.pk][-2:] == [5, 0]
    assert series.amounts[strategy.pk][-2:] == [Decimal("95.00"), Decimal("0.00")]
    # Manual reviews counted on the shop-local date of decided_at.
    assert series.manual_reviews[-2:] == [1, 2]
    assert sum(series.manual_reviews) == 3

    # Seen from just before midnight, the window ends a day earlier.
    earlier = consumption_series(shop=shop, now=before)
    assert earlier.days[-1] == day_before
    assert earlier.manual_reviews[-1] == 1 and sum(earlier.manual_reviews) == 1


def test_the_30_day_series_leaves_out_older_days_and_other_shops(db, shop, other_shop):
    strategy = make_strategy(shop=shop, name="Mine")
    theirs = make_strategy(shop=other_shop, name="Theirs")
    now = dt.datetime(2026, 3, 31, 4, 0, tzinfo=UTC)  # 31 March in Shanghai
    make_ledger(strategy=strategy, day=dt.date(2026, 3, 1), consumed="7.00", approved_count=1)
    make_ledger(strategy=strategy, day=dt.date(2026, 3, 2), consumed="8.00", approved_count=2)
    make_ledger(strategy=theirs, day=dt.date(2026, 3, 31), consumed="9.00", approved_count=3)
    make_log_decision(shop=other_shop, outcome="manual_review", decided_at=now)
    series = consumption_series(shop=shop, now=now)
    assert series.days[0] == dt.date(2026, 3, 2)
    assert set(series.hits) == {strategy.pk}
    assert series.hits[strategy.pk][0] == 2 and sum(series.hits[strategy.pk]) == 2
    assert sum(series.manual_reviews) == 0


def test_the_charts_are_inline_svg_with_no_external_resource(client, viewer, shop):
    strategy = make_strategy(shop=shop, name="Charted")
    make_ledger(strategy=strategy, consumed="42.00", approved_count=4)
    make_log_decision(shop=shop, outcome="manual_review")
    client.force_login(viewer)
    response = client.get(URL)
    html = response.content.decode()
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') == 3
    assert "<rect" in html and "Charted: 4" in html and "Charted: 42.00" in html
    assert "cdn" not in html.lower()
    assert '<script src="http' not in html


def test_bars_are_stacked_and_scaled_to_the_highest_day():
    days = [dt.date(2026, 3, 1), dt.date(2026, 3, 2)]
    chart = bar_chart(days=days, series=[("a", [1, 4]), ("b", [1, 6])])
    assert chart.maximum == 10
    day2 = [r for r in chart.rects if r.title.startswith("2026-03-02")]
    assert len(day2) == 2
    # Stacked: together they fill the full plot height for the highest day.
    assert round(sum(r.height for r in day2), 1) == round(chart.plot_bottom - 10, 1)
    assert bar_chart(days=days, series=[("a", [0, 0])]).empty


def test_staff_see_only_their_own_shop(client, viewer, shop, other_shop):
    theirs = make_strategy(shop=other_shop, name="Not yours")
    client.force_login(viewer)
    assert client.get(URL, {"shop": other_shop.pk}).status_code == 404
    assert client.get(URL, {"shop": shop.pk}).context["shop"] == shop
    response = client.get(URL)
    assert response.context["shop"] == shop
    assert f'data-strategy="{theirs.pk}"' not in response.content.decode()


def test_operators_choose_the_shop(client, shop, other_shop):
    theirs = make_strategy(shop=other_shop, name="Theirs")
    operator = get_user_model().objects.create_superuser(username="op", password="x")
    client.force_login(operator)
    response = client.get(URL, {"shop": other_shop.pk})
    assert response.context["shop"] == other_shop
    assert f'data-strategy="{theirs.pk}"' in response.content.decode()
    # One convention on every page: the shop's id, never its code (a code is no shop).
    assert client.get(URL, {"shop": other_shop.code}).status_code == 404
    assert client.get(URL, {"shop": "nope"}).status_code == 404
    assert client.get(URL, {"shop": other_shop.pk + 1000}).status_code == 404
    assert client.get(URL).context["shop"] == shop  # the first shop by code until they choose


def test_the_admin_sidebar_entry_opens_the_dashboard(client, viewer, shop):
    client.force_login(viewer)
    index = client.get(reverse("admin:index")).content.decode()
    entry = reverse("admin:monitoring_consumptionoverview_changelist")
    assert entry in index
    assert reverse("admin:monitoring_decisionlogentry_changelist") in index
    response = client.get(entry)
    assert response.status_code == 302 and response["Location"] == URL


def test_outsiders_cannot_open_the_dashboard(client, db):
    user = get_user_model().objects.create_user(username="x", password="x", is_staff=True)
    client.force_login(user)
    assert client.get(URL).status_code == 404
    client.logout()
    assert client.get(URL).status_code == 302  # to the login page
