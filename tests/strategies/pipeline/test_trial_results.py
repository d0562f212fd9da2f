"""Trial results in aggregate (issue 12, 7): each trial strategy that would have approved is
recorded, the decision log's strategy filter finds those requests (marked), and the strategy
list shows "would approve N / amount" today and over 7 and 30 days."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.urls import reverse
from django.utils import timezone

from strategies.models import TrialHit
from strategies.pipeline.decide import request_decide
from strategies.selectors import trial_figures
from tests.factories import make_log_decision, make_request, make_strategy

LOG = reverse("admin:monitoring_decisionlogentry_changelist")


def test_a_would_hit_is_recorded_and_found_by_the_strategy_filter(client, shop, viewer, sent):
    trial = make_strategy(shop=shop, status="trial", name="Trial all")
    request = make_request(shop=shop, amount="12.50")
    decision = request_decide(request_id=request.pk)
    assert decision.outcome == "manual_review"
    [hit] = TrialHit.objects.all()
    assert (hit.strategy_id, hit.decision_id, hit.amount) == (
        trial.pk,
        decision.pk,
        Decimal("12.50"),
    )
    other = make_log_decision(shop=shop, outcome="manual_review", aftersale_id="AS-other")

    client.force_login(viewer)
    response = client.get(LOG, {"strategy": trial.pk}, headers={"accept-language": "en"})
    assert [d.pk for d in response.context["cl"].result_list] == [decision.pk]
    assert other.pk not in [d.pk for d in response.context["cl"].result_list]
    assert "trial: Trial all would approve" in response.content.decode()


def test_the_figures_cover_today_7_and_30_days(shop):
    trial = make_strategy(shop=shop, status="trial")
    active = make_strategy(shop=shop, status="active")
    now = timezone.now()
    today = now.astimezone(shop.zone).date()
    for days_ago, amount in [(0, "1.00"), (0, "2.00"), (3, "4.00"), (20, "8.00"), (40, "16.00")]:
        decision = make_log_decision(shop=shop, outcome="manual_review")
        TrialHit.objects.create(
            decision=decision,
            shop=shop,
            strategy=trial,
            day=today - dt.timedelta(days=days_ago),
            amount=Decimal(amount),
        )
    figures = trial_figures(strategies=[trial, active], now=now)
    assert list(figures) == [trial.pk]
    assert [(f.days, f.count, f.amount) for f in figures[trial.pk]] == [
        (1, 2, Decimal("3.00")),
        (7, 3, Decimal("7.00")),
        (30, 4, Decimal("15.00")),
    ]


def test_the_strategy_list_shows_a_trial_strategys_figures(client, owner, shop):
    trial = make_strategy(shop=shop, status="trial")
    decision = make_log_decision(shop=shop, outcome="manual_review")
    TrialHit.objects.create(
        decision=decision,
        shop=shop,
        strategy=trial,
        day=timezone.now().astimezone(shop.zone).date(),
        amount=Decimal("1234.50"),
    )
    client.force_login(owner)
    html = client.get(
        reverse("admin:strategies_strategy_changelist"),
        {"scenario": trial.scenario},
        headers={"accept-language": "en"},
    ).content.decode()
    assert "today: would approve 1 request / 1,234.50" in html
    assert "30 days: would approve 1 request / 1,234.50" in html
