"""The consumption dashboard as the strategy list orders it (issue 12, 16): scenario tabs then
priority, the priority next to the name, inactive strategies folded away, a past day picked,
colours that never repeat within one chart, and a trial strategy's figures (7)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.urls import reverse
from django.utils import timezone

from monitoring.charts import bar_chart, series_colour
from strategies.models import TrialHit
from tests.factories import make_ledger, make_log_decision, make_strategy

URL = reverse("monitoring:consumption")


def test_rows_follow_the_tabs_and_priorities_with_inactive_ones_folded(client, viewer, shop):
    # Created out of order; "post_shipment_refund" sorts before "pre_shipment_refund" by name
    # but comes after it in the tabs.
    late = make_strategy(shop=shop, scenario="post_shipment_refund", name="Post A", status="active")
    early = make_strategy(shop=shop, scenario="pre_shipment_refund", name="Pre A", status="active")
    off = make_strategy(
        shop=shop, scenario="pre_shipment_refund", name="Pre off", status="inactive"
    )
    client.force_login(viewer)
    html = client.get(URL).content.decode()
    table, folded = html.split('<details class="atom-folded">')
    assert table.index(f'data-strategy="{early.pk}"') < table.index(f'data-strategy="{late.pk}"')
    assert f'data-strategy="{off.pk}"' not in table
    assert f'data-strategy="{off.pk}"' in folded
    assert f'<td class="atom-priority">#{early.position}</td>' in table


def test_a_past_day_is_shown_when_picked(client, viewer, shop):
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("100.00"))
    today = timezone.now().astimezone(shop.zone).date()
    make_ledger(strategy=strategy, day=today - dt.timedelta(days=3), consumed="42.00")
    client.force_login(viewer)
    assert "42.00 / 100.00" not in client.get(URL).content.decode()
    past = (today - dt.timedelta(days=3)).isoformat()
    html = client.get(URL, {"day": past}).content.decode()
    assert "42.00 / 100.00" in html
    assert f'value="{past}"' in html


def test_a_day_it_cannot_show_is_said(client, viewer, shop):
    client.force_login(viewer)
    response = client.get(URL, {"day": "2999-01-01"}, headers={"accept-language": "en"})
    assert response.status_code == 200
    assert "is in the future: today is shown" in response.content.decode()
    response = client.get(URL, {"day": "yesterday"}, headers={"accept-language": "en"})
    assert "is not a day (YYYY-MM-DD)" in response.content.decode()


def test_colours_never_repeat_within_one_chart():
    days = [dt.date(2026, 11, 1)]
    chart = bar_chart(days=days, series=[(f"S{i}", [1]) for i in range(40)])
    colours = [colour for _label, colour in chart.legend]
    assert len(set(colours)) == 40
    assert len({series_colour(i) for i in range(200)}) == 200


def test_a_trial_strategy_shows_what_it_would_approve(client, viewer, shop):
    trial = make_strategy(shop=shop, status="trial", name="Trying")
    TrialHit.objects.create(
        decision=make_log_decision(shop=shop, outcome="manual_review"),
        shop=shop,
        strategy=trial,
        day=timezone.now().astimezone(shop.zone).date() - dt.timedelta(days=2),
        amount=Decimal("100000.00"),
    )
    client.force_login(viewer)
    html = client.get(URL, headers={"accept-language": "en"}).content.decode()
    assert "today: would approve 0 requests / 0.00" in html
    assert "7 days: would approve 1 request / 100,000.00" in html
