"""ATOM_DISPATCH=postgres on the real PostgreSQL: intake's NOTIFY, the claim, a failing request
handed to the sweeper, and ``manage.py run_deciders`` as a real process tree
(strategies/pipeline/dispatch.py, deciders.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from strategies.models import AfterSaleRequest, DailyLedger, Decision, RequestStatus
from strategies.pipeline import claim, decide, dispatch, execute
from strategies.pipeline import deciders as deciders_module
from strategies.pipeline.publish import DECIDE_TASK, EXECUTE_TASK
from strategies.pipeline.sweep import requests_sweep_stuck
from strategies.platforms.generic.intake import aftersale_receive
from tests.factories import make_request, make_shop, make_strategy
from tests.strategies.platforms.generic.api_client import payload
from tests.subprocesses import django_setup
from tests.worker import DeciderProcesses, wait_until, worker_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def postgres_dispatch(settings):
    settings.ATOM_DISPATCH = "postgres"


@contextlib.contextmanager
def listening() -> Iterator[psycopg.Connection]:
    with psycopg.connect(worker_database_url(), autocommit=True) as conn:
        conn.execute(f"LISTEN {dispatch.CHANNEL}")
        yield conn


def heard(conn: psycopg.Connection, *, timeout: float) -> list[str]:
    return [n.payload for n in conn.notifies(timeout=timeout)]


def decide_oldest_until_none() -> int:
    """Claims and decides the oldest fresh requests until none is left, as a decider's look
    does; how many it claimed."""
    claimed = 0
    while claim.decide_next() is not None:
        claimed += 1
    return claimed


@pytest.fixture
def approving_shop():
    shop = make_shop()
    make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    return shop


# --- intake ---------------------------------------------------------------------------------


def test_intake_names_the_committed_request_to_the_deciders_and_publishes_nothing(
    postgres_dispatch, sent, shop
):
    with listening() as conn:
        receipt = aftersale_receive(shop=shop, payload=payload())
        assert heard(conn, timeout=1.0) == [str(receipt.request.pk)]
    assert sent == []


def test_a_rolled_back_or_replayed_intake_notifies_nothing(postgres_dispatch, sent, shop):
    body = payload()
    with listening() as conn:
        with pytest.raises(RuntimeError), transaction.atomic():
            aftersale_receive(shop=shop, payload=body)
            raise RuntimeError("rolled back after the store")
        assert heard(conn, timeout=0.5) == []
        assert not AfterSaleRequest.objects.exists()
        first = aftersale_receive(shop=shop, payload=body)
        replay = aftersale_receive(shop=shop, payload=body)
        assert replay.created is False
        assert heard(conn, timeout=0.5) == [str(first.request.pk)]


def test_celery_dispatch_publishes_and_notifies_nothing(sent, shop):
    with listening() as conn:
        receipt = aftersale_receive(shop=shop, payload=payload())
        assert heard(conn, timeout=0.5) == []
    assert sent == [(DECIDE_TASK, [receipt.request.pk])]


# --- the claim ------------------------------------------------------------------------------


def test_a_named_request_is_decided_and_its_approval_executed_in_the_decider(
    postgres_dispatch, sent, approving_shop
):
    request = make_request(shop=approving_shop, amount="12.34")
    outcome = claim.decide_next(request_id=request.pk)
    assert outcome == claim.Outcome(request_id=request.pk, result="executed")
    request.refresh_from_db()
    assert request.status == RequestStatus.EXECUTED
    assert DailyLedger.objects.get().consumed == Decimal("12.34")
    assert sent == []  # nothing went through the broker
    # Named again (a second host heard the same notification): nothing to claim.
    assert claim.decide_next(request_id=request.pk) is None
    assert Decision.objects.filter(request=request).count() == 1


def test_the_deciders_approval_is_inserted_with_its_execution_claimed(
    postgres_dispatch, sent, approving_shop
):
    # One statement fewer per approval (issue 16): the attempt is claimed by the insert, not by
    # the execution's conditional UPDATE.
    request = make_request(shop=approving_shop)
    with CaptureQueriesContext(connections["default"]) as queries:
        outcome = claim.decide_next(request_id=request.pk)
    assert outcome.result == "executed"
    claims = [q["sql"] for q in queries if '"execution_attempts" + 1' in q["sql"]]
    assert claims == []
    decision = Decision.objects.get(request=request)
    assert decision.execution_attempts == 1
    assert decision.executed_at is not None
    assert decision.execution_lease_until is None  # given back when recorded
    assert decision.execution_ambiguous_at is None


def test_an_approval_whose_decider_died_before_executing_waits_out_its_lease(
    postgres_dispatch, sent, approving_shop
):
    request = make_request(shop=approving_shop)
    decided = decide.request_claim_and_decide(request_id=request.pk, claim_execution=True)
    # The decider dies here: the decision is committed with its attempt claimed, not sent.
    assert decided is not None and decided.execution is not None
    decision = Decision.objects.get(request=request)
    assert decision.execution_sent_at is not None
    lease = decision.execution_lease_until
    assert lease is not None
    assert lease - decision.execution_sent_at >= dt.timedelta(
        seconds=execute.lease_seconds_required()
    )
    # Nobody else calls the gateway while the lease runs, the sweeper included.
    busy = execute.decision_execute(decision_id=decision.pk)
    assert busy.state is execute.ExecutionState.BUSY
    assert requests_sweep_stuck(now=lease - dt.timedelta(seconds=1), older_than=0).execute == []
    # Once it expired, the sweeper's execution takes over; the attempt may have been sent.
    assert requests_sweep_stuck(now=lease + dt.timedelta(hours=1)).execute == [decision.pk]
    done = execute.decision_execute(decision_id=decision.pk, now=lease + dt.timedelta(seconds=1))
    assert done.state is execute.ExecutionState.EXECUTED
    decision.refresh_from_db()
    assert decision.execution_attempts == 2
    assert decision.execution_ambiguous_at is not None  # the dead attempt may have been sent


def test_a_request_another_decider_holds_is_skipped_not_waited_for(
    postgres_dispatch, sent, approving_shop
):
    held = make_request(shop=approving_shop)
    with psycopg.connect(worker_database_url()) as other:
        other.execute(
            "SELECT id FROM strategies_aftersalerequest WHERE id = %s FOR UPDATE", [held.pk]
        )
        started = time.monotonic()
        assert claim.decide_next(request_id=held.pk) is None
        assert claim.decide_next() is None  # the oldest fresh one is held too
        assert time.monotonic() - started < 2
        other.rollback()
    held.refresh_from_db()
    assert held.status == RequestStatus.RECEIVED
    assert claim.decide_next() == claim.Outcome(request_id=held.pk, result="executed")


def test_the_oldest_fresh_request_goes_first_and_a_stale_one_is_left_to_the_sweeper(
    postgres_dispatch, sent, approving_shop, settings
):
    first, second, stale = (make_request(shop=approving_shop) for _ in range(3))
    aged = timezone.now() - dt.timedelta(seconds=settings.ATOM_SWEEP_AFTER_SECONDS + 5)
    AfterSaleRequest.objects.filter(pk=stale.pk).update(updated_at=aged)
    assert decide_oldest_until_none() == 2
    for request in (first, second):
        request.refresh_from_db()
        assert request.status == RequestStatus.EXECUTED
    assert (
        Decision.objects.get(request=first).decided_at
        < Decision.objects.get(request=second).decided_at
    )
    stale.refresh_from_db()
    assert stale.status == RequestStatus.RECEIVED
    requests_sweep_stuck()
    assert (DECIDE_TASK, [stale.pk]) in sent


def _failing_for(monkeypatch, request_id: int, error: Exception) -> list[int]:
    calls: list[int] = []
    real = decide._decide_locked

    def failing(request, **kwargs):
        if request.id == request_id:
            calls.append(request.id)
            raise error
        return real(request, **kwargs)

    monkeypatch.setattr(decide, "_decide_locked", failing)
    return calls


def test_a_request_whose_decision_fails_is_handed_to_the_sweeper_and_the_rest_go_on(
    postgres_dispatch, sent, approving_shop, monkeypatch, settings
):
    poison, healthy = make_request(shop=approving_shop), make_request(shop=approving_shop)
    calls = _failing_for(monkeypatch, poison.pk, ValueError("a bug"))
    assert claim.decide_next() == claim.Outcome(request_id=poison.pk, result="handed_to_sweeper")
    poison.refresh_from_db()
    assert poison.status == RequestStatus.RECEIVED
    assert not Decision.objects.filter(request=poison).exists()  # rolled back whole
    # Out of the deciders' window: the next looks go to the others, not back to it (until the
    # sweeper hands it to Celery and makes it fresh again; it cannot spin a decider).
    cutoff = timezone.now() - dt.timedelta(seconds=settings.ATOM_SWEEP_AFTER_SECONDS)
    assert poison.updated_at < cutoff
    assert decide_oldest_until_none() == 1
    healthy.refresh_from_db()
    assert healthy.status == RequestStatus.EXECUTED
    assert calls == [poison.pk]
    requests_sweep_stuck()
    assert (DECIDE_TASK, [poison.pk]) in sent  # the Celery task and its retries take it over


def test_a_deadlock_victim_is_tried_again_then_handed_over(
    postgres_dispatch, sent, approving_shop, monkeypatch
):
    request = make_request(shop=approving_shop)
    calls = _failing_for(monkeypatch, request.pk, OperationalError("deadlock detected"))
    results = [
        claim.decide_next(request_id=request.pk).result for _ in range(claim.TRANSIENT_RETRIES + 1)
    ]
    assert results == ["retrying"] * claim.TRANSIENT_RETRIES + ["handed_to_sweeper"]
    assert len(calls) == claim.TRANSIENT_RETRIES + 1


def test_with_execution_in_its_own_task_the_decider_publishes_it(
    postgres_dispatch, sent, approving_shop, settings
):
    settings.ATOM_EXECUTE_IN_DECISION_TASK = False
    request = make_request(shop=approving_shop)
    assert claim.decide_next(request_id=request.pk).result == "approved"
    decision = Decision.objects.get(request=request)
    assert sent == [(EXECUTE_TASK, [decision.pk])]
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED  # not executed here


def test_an_execution_that_raises_leaves_the_approval_to_the_sweeper(
    postgres_dispatch, sent, approving_shop, monkeypatch
):
    request = make_request(shop=approving_shop)

    def broken(**kwargs):
        raise RuntimeError("a bug in the gateway client")

    monkeypatch.setattr(execute, "decision_execute", broken)
    outcome = claim.decide_next(request_id=request.pk)
    assert outcome == claim.Outcome(request_id=request.pk, result="execution_failed")
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    monkeypatch.undo()
    aged = timezone.now() + dt.timedelta(hours=1)
    result = requests_sweep_stuck(now=aged)
    assert result.execute == [Decision.objects.get(request=request).pk]


def test_a_decider_tries_a_transient_failure_again_then_stops(monkeypatch):
    results = iter(["retrying", "retrying", "executed"])
    calls: list[int | None] = []

    def decide_next(*, request_id=None):
        calls.append(request_id)
        return claim.Outcome(request_id=request_id or 0, result=next(results))

    monkeypatch.setattr(claim, "decide_next", decide_next)
    monkeypatch.setattr(deciders_module, "TRANSIENT_PAUSE_SECONDS", 0.0)
    decider = deciders_module.Decider(wake=-1, idle=-1, poll=1.0, parent=os.getppid())
    decider.limit = 5
    decider._decide(42)
    assert calls == [42, 42, 42]


def test_concurrent_deciders_claim_every_request_once(postgres_dispatch, sent, approving_shop):
    requests = [make_request(shop=approving_shop, amount="1.00") for _ in range(40)]
    claimed: list[int] = []
    errors: list[BaseException] = []

    def decider() -> None:
        try:
            claimed.append(decide_oldest_until_none())
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decider) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(claimed) == len(requests)
    assert Decision.objects.count() == len(requests)
    assert AfterSaleRequest.objects.filter(status=RequestStatus.EXECUTED).count() == len(requests)
    assert DailyLedger.objects.get().consumed == Decimal("40.00")


# --- manage.py run_deciders -----------------------------------------------------------------


@pytest.fixture
def deciders() -> Iterator[list[DeciderProcesses]]:
    started: list[DeciderProcesses] = []
    yield started
    for d in started:
        d.kill()
    connections.close_all()


_ids = iter(range(1, 10**6))


def receive(shop) -> AfterSaleRequest:
    """A new request through intake (an id of its own)."""
    n = next(_ids)
    body = payload(aftersale_id=f"AS-D{n}", order={"order_id": f"OD-D{n}"})
    return aftersale_receive(shop=shop, payload=body).request


def executed(*requests: AfterSaleRequest) -> bool:
    ids = [r.pk for r in requests]
    done = AfterSaleRequest.objects.filter(pk__in=ids, status=RequestStatus.EXECUTED).count()
    return done == len(ids)


def test_run_deciders_decides_what_intake_notifies_and_survives_a_killed_decider(
    postgres_dispatch, sent, deciders, approving_shop
):
    running = DeciderProcesses(processes=2).start()
    deciders.append(running)
    wait_until(lambda: len(running.children()) == 2)
    first = [receive(approving_shop) for _ in range(10)]
    wait_until(lambda: executed(*first), timeout=30)

    victim = running.children()[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in running.children() and len(running.children()) == 2)
    after = [receive(approving_shop) for _ in range(10)]
    wait_until(lambda: executed(*after), timeout=30)
    assert Decision.objects.count() == 20
    assert sent == []
    assert any("ended" in line for line in running.output), running.output


def test_a_request_nobody_notified_is_found_by_an_idle_decider(
    sent, deciders, approving_shop, settings
):
    settings.ATOM_DISPATCH = "postgres"
    running = DeciderProcesses(processes=1, poll=0.5).start()
    deciders.append(running)
    notified = receive(approving_shop)
    wait_until(lambda: executed(notified))  # past the start-up look: only a periodic one is left
    # Stored as the Celery dispatch stores it: published (here: kept by `sent`), no NOTIFY.
    settings.ATOM_DISPATCH = "celery"
    request = receive(approving_shop)
    assert sent == [(DECIDE_TASK, [request.pk])]
    wait_until(lambda: executed(request), timeout=15)


def test_sigterm_stops_the_supervisor_and_every_decider(postgres_dispatch, deciders):
    running = DeciderProcesses(processes=2).start()
    deciders.append(running)
    wait_until(lambda: len(running.children()) == 2)
    children = running.children()
    assert running.process is not None
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(15) == 0
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in _state(pid)


def _state(pid: int) -> str:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        return f.read().lower()
    return ""


def test_a_decision_past_the_time_limit_kills_its_decider_and_the_request_is_still_decided(
    postgres_dispatch, sent, deciders, approving_shop
):
    # A short poll: the killed decider's backend keeps the request's row lock until its lock
    # wait ends (PostgreSQL notices a dead client only when it next talks to it), so the
    # replacement's first look skips the request and a later one takes it.
    running = DeciderProcesses(
        processes=1,
        poll=1.0,
        env={
            # The shortest the system checks allow with this gateway timeout.
            "CELERY_TASK_TIME_LIMIT": "4",
            "CELERY_TASK_SOFT_TIME_LIMIT": "3",
            "ATOM_GATEWAY_TIMEOUT": "0.3",
        },
    ).start()
    deciders.append(running)
    wait_until(lambda: len(running.children()) == 1)
    (first,) = running.children()
    opening = receive(approving_shop)
    wait_until(lambda: executed(opening))  # the day's ledger row exists from here on
    with psycopg.connect(worker_database_url()) as other:
        # The ledger is held: the next approval waits for its lock past the time limit.
        other.execute("SELECT id FROM strategies_dailyledger FOR UPDATE")
        late = receive(approving_shop)
        wait_until(lambda: running.children() and running.children() != [first], timeout=15)
        late.refresh_from_db()
        assert late.status == RequestStatus.RECEIVED  # its transaction was rolled back
        other.rollback()
    # The id died with its decider; the replacement finds the request all the same.
    wait_until(lambda: executed(late), timeout=15)
    assert Decision.objects.filter(request=late).count() == 1
    assert any("ended" in line for line in running.output), running.output


# --- configuration --------------------------------------------------------------------------


def test_run_deciders_refuses_to_start_without_postgres_dispatch(settings):
    settings.ATOM_DISPATCH = "celery"
    with pytest.raises(CommandError, match="ATOM_DISPATCH=postgres"):
        call_command("run_deciders", processes=1)


@pytest.mark.parametrize(
    ("dispatch_value", "database_url", "message"),
    [
        ("kafka", "postgres://postgres@127.0.0.1:5432/x", "ATOM_DISPATCH must be"),
        ("postgres", "sqlite:////tmp/unused.sqlite3", "needs PostgreSQL"),
    ],
)
def test_a_wrong_dispatch_setting_refuses_to_start(dispatch_value, database_url, message):
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "t",
        "ATOM_DISPATCH": dispatch_value,
    }
    result = django_setup(env)
    assert result.returncode != 0
    assert message in result.stderr
