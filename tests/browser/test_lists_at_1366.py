"""Every list of the back office is usable on a 1366 x 768 laptop with the sidebar open, in
Chinese and in English (issue 12.8): the decision log's strategy name was one character wide at
1400 px and its last columns lay under the filter panel; the 售后单 list overflowed too.

Each list is seeded with the long Chinese names a real shop has, opened in a real Chromium, and
measured: no JavaScript error (the ``page`` fixture), the page itself never scrolls sideways
(a wide table scrolls inside its own box), the filter panel never covers the table, no header or
cell is clipped, and no text is squeezed into a column narrower than a few characters (a wrapped
cell is at least ``MIN_WRAPPED_EM`` wide, or as wide as its text on one line); dates, times and
amounts stay on one line."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from axes.models import AccessAttempt, AccessLog
from django.contrib.auth.models import Group, User
from django.db.models import F
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from playwright.sync_api import Page, expect

from notifications.services import alerts_check_ledger
from strategies.backtest.loaders import strategy_set
from strategies.backtest.services import backtest_execute, backtest_start
from strategies.models import AfterSaleRequest, BacktestRun, Channel, Decision, Scenario, Strategy
from strategies.pipeline.decide import request_decide
from tests.factories import (
    make_ledger,
    make_membership,
    make_order,
    make_product,
    make_request,
    make_strategy,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}
# A cell whose text wraps is at least this wide (in its own font's em), unless its whole text
# fits in less on one line: 4 Chinese characters, about 8 Latin ones.
MIN_WRAPPED_EM = 4

SHOP_NAME = "杭州云栖数码官方旗舰店（华东一仓·直营）"
STRATEGY_NAMES = {
    Scenario.POST_SHIPMENT_REFUND: [
        "发货后小额自动仅退款（华东仓·不想要了）",
        "已发货十天内七天无理由仅退款（双十一大促夜间专用）",
    ],
    Scenario.PRE_SHIPMENT_REFUND: ["未发货订单极速退款（拍错/不想要了，单笔五十元以内）"],
    Scenario.POST_SHIPMENT_NO_RETURN: ["发货后不退货仅退款：低价配件破损补偿（客服已核实）"],
    Scenario.POST_SHIPMENT_RETURN_REFUND: ["签收后七天无理由退货退款（退货单号已回填）"],
    Scenario.TAGGED_REFUND_NO_RETURN: ["打标商品（赠品/试用装）发货后退款不退货"],
}
PRODUCT_TITLE = "【官方旗舰】超长续航主动降噪无线蓝牙耳机 Pro Max 2026 新款 典雅黑 礼盒装"

# Measures one page; returns every problem found, in words.
MEASURE = (Path(__file__).parent / "measure_lists.js").read_text()


def seed(shop, owner) -> dict[str, Strategy]:
    """A shop as a merchant's staff fill it: long Chinese names everywhere, every list full."""
    shop.name = SHOP_NAME
    shop.phone = "13800000000"
    shop.alert_email = "shouhou-zhuguan@yunqi-shuma.example.com"
    shop.save()
    now = timezone.now()
    strategies: dict[str, Strategy] = {}
    for scenario, names in STRATEGY_NAMES.items():
        for index, name in enumerate(names):
            strategies[name] = make_strategy(
                shop=shop,
                scenario=scenario,
                name=name,
                status=("active", "trial")[index % 2],
                per_request_cap=Decimal("25.50"),
                daily_cap=Decimal("3000.00"),
            )
    first = strategies[STRATEGY_NAMES[Scenario.POST_SHIPMENT_REFUND][0]]
    # A second version in the history, and a 95% then 100% notice with its deliveries.
    first.daily_cap = Decimal("100.00")
    first.save()
    ledger = make_ledger(strategy=first, consumed="0.00")
    for consumed in ("96.00", "100.00"):
        ledger.consumed = Decimal(consumed)
        ledger.save(update_fields=["consumed"])
        alerts_check_ledger(ledger_id=ledger.pk)
    make_ledger(strategy=strategies[STRATEGY_NAMES[Scenario.POST_SHIPMENT_REFUND][1]])

    make_product(shop=shop, product_id="3826459102374", title=PRODUCT_TITLE)
    reasons = ("seven_day_no_reason", "no_longer_needed", "quality_issue", "not_as_described")
    for index, amount in enumerate(("9.90", "18.80", "1299.00", "25.50", "458.00", "12.00")):
        order = make_order(
            shop=shop,
            order_id=f"260128{index:02d}4418092736",
            status=("shipped", "received", "pending_shipment")[index % 3],
            items=[("3826459102374", 1, "1299.00")],
        )
        request = make_request(
            shop=shop,
            order=order,
            aftersale_id=f"KS2026120{index}58810093417",
            amount=amount,
            type=("refund_only", "return_refund")[index % 2],
            reason=reasons[index % len(reasons)],
            applied_at=now - dt.timedelta(hours=index * 7),
        )
        request_decide(request_id=request.pk)
    # Received and decided yesterday: the replay below covers whole past days.
    day = dt.timedelta(days=1)
    AfterSaleRequest.objects.filter(shop=shop).update(
        received_at=F("received_at") - day, applied_at=F("applied_at") - day
    )
    Decision.objects.filter(shop=shop).update(decided_at=F("decided_at") - day)

    # A replay of the strategies as they are, run here and now (the report and the
    # performance page read it).
    run = backtest_start(
        shop=shop,
        members=strategy_set(shop=shop),
        kind="current",
        title=f"回测：{SHOP_NAME} 现有全部策略（近 7 天）",
        days=7,
        actor=owner,
    )
    done = backtest_execute(run_id=run.pk)
    assert done is not None and done.status == "done", done and done.error
    Channel.objects.create(
        shop=shop,
        platform="kuaishou",
        app_key_hint="ks7f…",
        last_push_at=now,
        last_poll_at=now,
        last_error="快手开放平台返回：access_token 已过期，请在快手小店后台重新授权本应用",
    )
    make_membership(shop=shop, username="shouhou-kefu-zhangxiaoming", role="viewer")
    Group.objects.create(name="华东仓售后客服组（只读，夜班）")
    AccessAttempt.objects.create(
        username="shouhou-kefu-zhangxiaoming",
        ip_address="183.157.62.201",
        user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0",
        path_info="/admin/login/",
        failures_since_start=3,
        get_data="",
        post_data="",
        http_accept="text/html",
    )
    AccessLog.objects.create(
        username="shouhou-kefu-zhangxiaoming",
        ip_address="183.157.62.201",
        user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0",
        path_info="/admin/login/",
        http_accept="text/html",
    )
    PeriodicTask.objects.create(
        name="每日 09:00 汇总人工审核即将超时的售后单并通知店长",
        task="notifications.send_review_digest",
        crontab=CrontabSchedule.objects.create(minute="0", hour="9"),
    )
    return strategies


def merchant_lists(strategy: Strategy) -> list[str]:
    """What a shop's owner opens: every list of the shop, each scenario's tab, each tab of the
    review queue that the seeded requests fill."""
    queue_tabs = {
        scenario or "none"
        for scenario in Decision.objects.filter(
            shop=strategy.shop, outcome="manual_review"
        ).values_list("scenario", flat=True)
    }
    assert len(queue_tabs) >= 2, queue_tabs
    return [
        *(f"/admin/strategies/strategy/?scenario={s}" for s in Scenario.values),
        f"/admin/strategies/strategy/{strategy.pk}/history/",
        f"/admin/strategies/strategy/{strategy.pk}/performance/",
        f"/admin/strategies/backtestrun/{BacktestRun.objects.get().pk}/change/",
        "/admin/monitoring/decisionlogentry/",
        "/admin/monitoring/reviewqueueentry/",
        *(f"/admin/monitoring/reviewqueueentry/?tab={tab}" for tab in sorted(queue_tabs)),
        "/admin/monitoring/consumption/dashboard/",
        "/admin/strategies/aftersalerequest/",
        "/admin/strategies/order/",
        "/admin/strategies/product/",
        "/admin/strategies/backtestrun/",
        "/admin/strategies/shop/",
        "/admin/notifications/notice/",
        "/admin/notifications/delivery/",
    ]


OPERATOR_LISTS = [
    "/admin/strategies/channel/",
    "/admin/strategies/membership/",
    "/admin/auth/user/",
    "/admin/auth/group/",
    "/admin/axes/accessattempt/",
    "/admin/axes/accesslog/",
    "/admin/django_celery_beat/periodictask/",
    "/admin/django_celery_beat/crontabschedule/",
]


@pytest.fixture(autouse=True)
def no_broker(sent) -> list[tuple[str, list]]:
    """No worker: what the pipeline publishes is kept (the publish seam)."""
    return sent


def problems_on(page: Page, url: str) -> list[str]:
    page.goto(url)
    expect(page.locator("#content")).to_be_visible()
    # The sidebar is open, as on a first visit, and the list has rows to measure.
    expect(page.locator("#nav-sidebar")).to_be_visible()
    assert page.locator("#content table tbody tr > *").count() > 0, f"nothing listed at {url}"
    # (one line per problem: the same column in many rows says it once)
    return list(dict.fromkeys(page.evaluate(MEASURE, MIN_WRAPPED_EM)))


@pytest.mark.parametrize("language_cookie", ["zh-hans", "en"])
def test_every_list_fits_a_laptop_with_the_sidebar_open(
    page, login, owner, shop, live_server, language_cookie
):
    strategies = seed(shop, owner)
    first = strategies[STRATEGY_NAMES[Scenario.POST_SHIPMENT_REFUND][0]]
    operator = User.objects.create_superuser("operator", "op@example.com", "pw-for-tests-1")
    page.set_viewport_size(LAPTOP)

    found: dict[str, list[str]] = {}
    login(owner)
    for path in merchant_lists(first):
        found[f"owner {path}"] = problems_on(page, live_server.url + path)
    page.context.clear_cookies()
    page.context.add_cookies(
        [{"name": "django_language", "value": language_cookie, "url": live_server.url}]
    )
    login(operator)
    for path in [*merchant_lists(first), *OPERATOR_LISTS]:
        found[f"operator {path}"] = problems_on(page, live_server.url + path)

    broken = {where: what for where, what in found.items() if what}
    assert broken == {}, "\n".join(f"{w}:\n  " + "\n  ".join(p) for w, p in broken.items())
