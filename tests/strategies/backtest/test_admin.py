"""The backtest in the back office: the form's button (saved or not), the list's priority
order, the report with its status, trace and CSV; scoped to the shop, read-only for viewers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from strategies.backtest.services import backtest_execute, members_decode
from strategies.models import BacktestRun, Strategy
from tests.factories import make_membership, make_strategy
from tests.strategies.backtest.builders import payload, post_and_decide

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCENARIO = "post_shipment_refund"


def form_data(**overrides):
    data = {
        "name": "Small refunds",
        "remark": "",
        "status": "active",
        "valid_from_0": "",
        "valid_from_1": "",
        "valid_until_0": "",
        "valid_until_1": "",
        "window_start": "",
        "window_end": "",
        "covers_shipped": "on",
        "shipped_min_days": "",
        "shipped_max_days": "",
        "covers_received": "on",
        "received_min_days": "",
        "received_max_days": "",
        "daily_cap": "50000.00",
        "per_request_cap": "20.00",
        "max_hours_since_payment": "",
        "risk_control": "on",
        "max_per_buyer_30d": "",
        "backtest_days": "7",
        "_backtest": "1",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def traffic(shop):
    """Yesterday (shop time): a small strategy took two requests, two more went to review."""
    small = make_strategy(
        shop=shop, status="active", name="Small refunds", per_request_cap=Decimal("20.00")
    )
    yesterday = timezone.now().astimezone(SHANGHAI).date() - dt.timedelta(days=1)
    for hour, amount in ((9, "10.00"), (10, "15.00"), (11, "45.00"), (12, "60.00")):
        post_and_decide(
            shop,
            payload(
                applied_at=dt.datetime.combine(yesterday, dt.time(hour), tzinfo=SHANGHAI),
                amount=amount,
                buyer_id="BUYER-SECRET-7",
                items=[("P1", 1, "100.00")],
            ),
        )
    return small


def backtest_url(strategy: Strategy) -> str:
    return reverse("admin:strategies_strategy_backtest", args=[strategy.pk])


@pytest.mark.django_db
def test_the_form_offers_the_backtest_and_lists_the_strategys_reports(as_owner, traffic):
    page = as_owner.get(reverse("admin:strategies_strategy_change", args=[traffic.pk]))
    html = page.content.decode()
    assert f'formaction="{backtest_url(traffic)}"' in html
    assert 'name="backtest_days"' in html


@pytest.mark.django_db
def test_backtesting_an_unsaved_edit_saves_nothing_and_replays_it(as_owner, owner, shop, traffic):
    response = as_owner.post(backtest_url(traffic), form_data(per_request_cap="50.00"))
    run = BacktestRun.objects.get(shop=shop)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:strategies_backtestrun_change", args=[run.pk])
    traffic.refresh_from_db()
    assert traffic.per_request_cap == Decimal("20.00")  # nothing saved
    assert (run.kind, run.strategy, run.created_by, run.status) == (
        "edit",
        traffic,
        owner,
        "queued",
    )
    edited = {m.snapshot.id: m for m in members_decode(run.strategies)}[traffic.pk]
    assert (edited.snapshot.per_request_cap, edited.version) == (Decimal("50.00"), None)

    backtest_execute(run_id=run.pk)
    report = as_owner.get(response["Location"]).content.decode()
    # The 45.00 request would now be approved: it went to manual review.
    assert "Would have auto-refunded 45.00 on 1 requests" in report
    assert 'id="atom-backtest-strategies"' in report
    status = as_owner.get(reverse("admin:strategies_backtestrun_status", args=[run.pk])).json()
    assert (status["status"], status["percent"], status["finished"]) == ("done", 100, True)

    csv = as_owner.get(reverse("admin:strategies_backtestrun_export", args=[run.pk]))
    text = b"".join(csv.streaming_content).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert len(lines) == 2 and "Would be auto-approved" in lines[1]
    assert "BUYER-SECRET-7" not in text

    change = run.changes.get()
    trace = as_owner.get(
        reverse("admin:strategies_backtestrun_trace", args=[run.pk, change.pk])
    ).content.decode()
    assert "45.00 &lt;= 50.00" in trace  # the per-request cap, with the values compared
    assert "Amount 45.00 is over the per-request cap 20.00" in trace  # the live explanation
    # Listed under the strategy.
    form = as_owner.get(reverse("admin:strategies_strategy_change", args=[traffic.pk]))
    assert reverse("admin:strategies_backtestrun_change", args=[run.pk]) in form.content.decode()


@pytest.mark.django_db
def test_an_invalid_form_is_shown_again_with_the_error_and_starts_nothing(as_owner, traffic):
    response = as_owner.post(
        backtest_url(traffic), form_data(per_request_cap="90000.00", name="Typed name")
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "The per-request cap must not exceed the daily total cap." in html
    assert 'value="Typed name"' in html
    assert not BacktestRun.objects.exists()


@pytest.mark.django_db
def test_a_new_strategy_can_be_backtested_before_it_is_created(as_owner, shop, traffic):
    url = f"{reverse('admin:strategies_strategy_backtest_add')}?scenario={SCENARIO}"
    response = as_owner.post(url, form_data(name="Bigger", per_request_cap="100.00"))
    assert response.status_code == 302
    run = BacktestRun.objects.get(shop=shop)
    assert Strategy.objects.filter(shop=shop).count() == 1
    new = [m for m in members_decode(run.strategies) if m.snapshot.id < 0]
    assert [(m.snapshot.name, m.snapshot.position) for m in new] == [("Bigger", 2)]
    assert run.kind == "add"


@pytest.mark.django_db
def test_a_second_backtest_while_one_runs_is_refused_on_the_form(as_owner, traffic):
    as_owner.post(backtest_url(traffic), form_data())
    response = as_owner.post(backtest_url(traffic), form_data())
    assert response.status_code == 200
    assert "A backtest is already running for this shop" in response.content.decode()
    assert BacktestRun.objects.count() == 1


@pytest.mark.django_db
def test_a_priority_order_is_backtested_from_the_list(as_owner, shop, traffic):
    broad = make_strategy(shop=shop, status="active", name="Broad")
    url = f"{reverse('admin:strategies_strategy_backtest_order')}?scenario={SCENARIO}"
    listing = as_owner.get(f"{reverse('admin:strategies_strategy_changelist')}?scenario={SCENARIO}")
    assert reverse("admin:strategies_strategy_backtest_order") in listing.content.decode()
    assert as_owner.get(url).status_code == 200
    response = as_owner.post(
        url, {f"position_{traffic.pk}": "2", f"position_{broad.pk}": "1", "backtest_days": "7"}
    )
    assert response.status_code == 302
    run = BacktestRun.objects.get(shop=shop)
    positions = {m.snapshot.id: m.snapshot.position for m in members_decode(run.strategies)}
    assert (run.kind, positions[broad.pk], positions[traffic.pk]) == ("reorder", 1, 2)
    assert list(Strategy.objects.order_by("position").values_list("name", flat=True)) == [
        "Small refunds",
        "Broad",
    ]  # the live order is unchanged
    backtest_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.report["changes"]["moved"]["count"] == 2  # Broad takes the two small ones
    assert run.report["changes"]["gained"]["count"] == 2


@pytest.mark.django_db
def test_viewers_see_reports_but_cannot_start_and_other_shops_see_nothing(
    client, as_owner, shop, other_shop, traffic
):
    as_owner.post(backtest_url(traffic), form_data())
    run = BacktestRun.objects.get()
    viewer = make_membership(shop=shop, username="viewer-x", role="viewer").user
    outsider = make_membership(shop=other_shop, username="owner-x", role="owner").user
    client.force_login(viewer)
    assert client.post(backtest_url(traffic), form_data()).status_code == 403
    report = reverse("admin:strategies_backtestrun_change", args=[run.pk])
    assert client.get(report).status_code == 200
    assert (
        client.post(reverse("admin:strategies_backtestrun_cancel", args=[run.pk])).status_code
        == 403
    )
    client.force_login(outsider)
    assert client.get(report).status_code == 404
    assert (
        client.get(reverse("admin:strategies_backtestrun_export", args=[run.pk])).status_code == 404
    )
    assert client.post(backtest_url(traffic), form_data()).status_code == 404


@pytest.mark.django_db
def test_a_queued_run_can_be_cancelled_from_its_page(as_owner, traffic):
    as_owner.post(backtest_url(traffic), form_data())
    run = BacktestRun.objects.get()
    page = as_owner.get(reverse("admin:strategies_backtestrun_change", args=[run.pk]))
    assert 'id="atom-backtest-bar"' in page.content.decode()
    as_owner.post(reverse("admin:strategies_backtestrun_cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == "cancelled"


@pytest.mark.django_db
def test_a_period_without_requests_says_so(as_owner, shop):
    strategy = make_strategy(shop=shop, status="active", name="Small refunds")
    as_owner.post(backtest_url(strategy), form_data())
    run = BacktestRun.objects.get()
    backtest_execute(run_id=run.pk)
    page = as_owner.get(reverse("admin:strategies_backtestrun_change", args=[run.pk]))
    assert "No requests in this period" in page.content.decode()


@pytest.mark.django_db
def test_the_report_reads_in_chinese_by_default(client, owner, traffic):
    client.force_login(owner)  # no language chosen: the interface is Chinese
    client.post(backtest_url(traffic), form_data(per_request_cap="50.00"))
    run = BacktestRun.objects.get()
    backtest_execute(run_id=run.pk)
    html = client.get(reverse("admin:strategies_backtestrun_change", args=[run.pk])).content
    text = html.decode()
    assert "将会自动退款 45.00（1 单）" in text
    assert "结果发生变化的售后单" in text
    form = client.get(reverse("admin:strategies_strategy_change", args=[traffic.pk]))
    assert "回测" in form.content.decode()


@pytest.mark.django_db
def test_the_performance_view_shows_each_day_of_a_strategy(as_owner, shop, traffic):
    trial = make_strategy(shop=shop, status="trial", name="Trial", position=0)
    url = reverse("admin:strategies_strategy_performance", args=[traffic.pk])
    assert "No replay of the strategies as they are yet" in as_owner.get(url).content.decode()
    response = as_owner.post(url)
    run = BacktestRun.objects.get()
    assert response["Location"] == reverse("admin:strategies_backtestrun_change", args=[run.pk])
    assert (run.kind, run.first_day) == ("current", run.last_day - dt.timedelta(days=29))
    backtest_execute(run_id=run.pk)

    html = as_owner.get(url).content.decode()
    yesterday = run.last_day.isoformat()
    row = html[html.index(f"<td>{yesterday}</td>") :].split("</tr>")[0]
    # 4 requests of its scenario; it approved 2 (25.00), 50%; 2 over its per-request cap.
    cells = [c.split(">")[-1] for c in row.split("</td>")[:-1]]
    assert cells[:5] == [yesterday, "4", "2", "25.00", "50.0%"]
    assert "over_per_request_cap: 2" in row
    trial_page = as_owner.get(
        reverse("admin:strategies_strategy_performance", args=[trial.pk])
    ).content.decode()
    assert "4 · 130.00" in trial_page  # the trial would have approved all four
