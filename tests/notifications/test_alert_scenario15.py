"""RELIABILITY.md 15, end to end on real PostgreSQL: 100 concurrent approvals cross 95% of one
strategy's cap and the alert task is replayed: exactly one alert, one notice, one SMS (a real
local HTTP provider) and one e-mail (a real SMTP server).

The decision service is used through its interface only (``request_decide``) and its alert
task is captured where it leaves for the broker (``send_task`` by name)."""

from decimal import Decimal

import pytest

from notifications import tasks
from notifications.models import Alert, Delivery, Notice
from strategies.models import DailyLedger, Decision
from strategies.pipeline.decide import request_decide
from tests.concurrency import run_concurrently
from tests.factories import make_order, make_request, make_shop, make_strategy

REQUESTS = 100
# Concurrent deciders, each with its own connection: the shared PostgreSQL allows 100 in all
# (other suites run beside this one), so 100 requests go through 20 threads released together.
THREADS = 20
ALERT_TASK = "notifications.check_ledger_alerts"


def decide_concurrently(request_ids: list[int]) -> list[Decision]:
    return run_concurrently(
        lambda request_id: request_decide(request_id=request_id), request_ids, threads=THREADS
    )


@pytest.mark.django_db(transaction=True)
def test_100_concurrent_approvals_crossing_95_percent_alert_once(
    sent, published, smtp_server, sms_provider
):
    shop = make_shop(phone="13800000000", alert_email="alerts@shop.example")
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    # 100 x 9.60 = 960.00: the 96th approval or so crosses 95%, none reaches 100%.
    request_ids = [
        make_request(
            shop=shop, order=make_order(shop=shop, items=[("P1001", 1, "100.00")]), amount="9.60"
        ).pk
        for _ in range(REQUESTS)
    ]

    decisions = decide_concurrently(request_ids)

    assert len(decisions) == REQUESTS
    assert {d.outcome for d in decisions} == {"approved"}
    ledger = DailyLedger.objects.get(strategy=strategy)
    assert ledger.consumed == Decimal("960.00")
    alert_tasks = [args for name, args in sent if name == ALERT_TASK]
    assert alert_tasks, sent  # the crossing asked for a check
    assert {args[0] for args in alert_tasks} == {ledger.pk}

    # The captured tasks run, each twice (a replay), as a worker would.
    for args in alert_tasks * 2:
        tasks.check_ledger_alerts.run(*args)
    assert [(a.level, a.day) for a in Alert.objects.all()] == [(95, ledger.day)]
    assert Notice.objects.count() == 1

    # Every send the alert published runs, replayed too: one SMS and one e-mail in all.
    sends = [args for args, _options in published]
    assert sorted(sends) == sorted([d.pk] for d in Delivery.objects.all())
    for args in sends * 2:
        tasks.send_delivery.run(*args)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert [r["json"]["phone"] for r in sms_provider.received] == ["13800000000"]
    assert [rcpt for _from, rcpt, _body in smtp_server.handler.messages] == [
        ["alerts@shop.example"]
    ]
