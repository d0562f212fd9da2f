"""The sweeper: nothing accepted is ever lost (RELIABILITY.md 8, at the service level)."""

import datetime as dt

import pytest
from django.utils import timezone

from strategies.models import AfterSaleRequest
from strategies.pipeline import sweep as sweeper
from strategies.pipeline.sweep import requests_sweep_stuck
from tests.factories import make_decision, make_request


def age(request: AfterSaleRequest, seconds: int) -> None:
    AfterSaleRequest.objects.filter(pk=request.pk).update(
        updated_at=timezone.now() - dt.timedelta(seconds=seconds)
    )


def test_it_re_enqueues_stuck_requests_and_approvals_past_the_threshold_only(shop, sent, settings):
    settings.ATOM_SWEEP_AFTER_SECONDS = 60
    stuck = make_request(shop=shop)
    fresh = make_request(shop=shop)
    approval = make_decision(request=make_request(shop=shop))
    executed = make_decision(request=make_request(shop=shop))
    AfterSaleRequest.objects.filter(pk=executed.request_id).update(status="executed")
    manual = make_decision(request=make_request(shop=shop), outcome="manual_review")
    for request in (stuck, approval.request, executed.request, manual.request):
        age(request, 61)
    age(fresh, 30)
    result = requests_sweep_stuck()
    assert (result.decide, result.execute) == ([stuck.pk], [approval.pk])
    assert sorted(sent) == [
        ("strategies.decide_request", [stuck.pk]),
        ("strategies.execute_decision", [approval.pk]),
    ]
    # Swept rows wait another threshold before the next run picks them again.
    sent.clear()
    assert requests_sweep_stuck() == sweeper.SweepResult(decide=[], execute=[])
    assert sent == []
    assert fresh.pk not in result.decide


def test_it_works_in_bounded_batches_oldest_first(shop, sent):
    requests = [make_request(shop=shop) for _ in range(5)]
    for i, request in enumerate(requests):
        age(request, 1000 - i)
    first = requests_sweep_stuck(older_than=60, batch=3)
    assert first.decide == [r.pk for r in requests[:3]]
    second = requests_sweep_stuck(older_than=60, batch=3)
    assert second.decide == [r.pk for r in requests[3:]]


def test_the_sweep_reads_through_the_in_flight_partial_index(shop):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM strategies_aftersalerequest "
            "WHERE status IN ('received', 'approved') AND updated_at <= now() "
            "ORDER BY updated_at LIMIT 500"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "aftersale_in_flight" in plan


def test_an_execution_waiting_out_its_back_off_is_left_to_its_own_retry(
    shop, sent, settings, monkeypatch
):
    from strategies.models import Decision
    from strategies.pipeline import execute as execution
    from strategies.platforms.base import GatewayError

    class Down:
        def approve(self, **kwargs):
            raise GatewayError("gateway answered 503", permanent=False)

    monkeypatch.setattr(execution, "gateway_get", lambda: Down())
    settings.ATOM_SWEEP_AFTER_SECONDS = 60
    approval = make_decision(request=make_request(shop=shop))
    with pytest.raises(GatewayError):
        execution.decision_execute(decision_id=approval.pk, retry_in=120)
    age(approval.request, 90)
    assert requests_sweep_stuck().execute == []  # its retry comes at 120 s: no second chain
    Decision.objects.filter(pk=approval.pk).update(
        execution_lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert requests_sweep_stuck().execute == [approval.pk]  # the retry never came: taken over


@pytest.mark.parametrize(("backlog", "swept"), [(999, True), (1000, False), (None, True)])
def test_it_re_enqueues_nothing_while_the_broker_holds_a_backlog(
    shop, sent, settings, monkeypatch, backlog, swept
):
    """Under a backlog "stuck" requests are queued, not lost: re-enqueueing them only adds
    duplicates (bench/chaos grew a queue to 42,875 messages for 5,000 requests that way)."""
    settings.ATOM_SWEEP_AFTER_SECONDS = 60
    settings.ATOM_SWEEP_MAX_BACKLOG = 1000
    monkeypatch.setattr(sweeper, "broker_backlog", lambda: backlog)
    stuck = make_request(shop=shop)
    age(stuck, 120)
    before = AfterSaleRequest.objects.get(pk=stuck.pk).updated_at
    assert requests_sweep_stuck().decide == ([stuck.pk] if swept else [])
    assert sent == ([("strategies.decide_request", [stuck.pk])] if swept else [])
    after = AfterSaleRequest.objects.get(pk=stuck.pk).updated_at
    assert (after != before) is swept  # a skipped run leaves it due for the next one


def test_the_backlog_is_the_real_length_of_the_brokers_queue(redis_broker):
    from celery import current_app

    assert sweeper.broker_backlog() == 0
    for request_id in (1, 2, 3):  # no worker listens in this test: they stay queued
        current_app.send_task("strategies.decide_request", args=[request_id])
    assert sweeper.broker_backlog() == 3


def test_an_unreachable_broker_gives_no_backlog_and_no_hang(monkeypatch):
    import socket
    import time

    from celery import current_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setattr(current_app.conf, "broker_read_url", f"redis://127.0.0.1:{port}/0")
    started = time.monotonic()
    assert sweeper.broker_backlog() is None
    assert time.monotonic() - started < 10
