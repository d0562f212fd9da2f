"""archive_decisions (issue 16): old months of the decision log go to a gzip'd JSON-lines file
and out of the table, in batches; the ledgers and unsettled money stay exactly as they were, and
the archive restores the rows it took."""

from __future__ import annotations

import datetime as dt
import gzip
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict
from django.utils import timezone, translation

from notifications.models import Alert
from strategies.models import (
    AfterSaleRequest,
    DailyLedger,
    Decision,
    ExecutionConfirmation,
    Review,
    TrialHit,
)
from tests.factories import make_decision, make_order, make_request, make_strategy

NOW = timezone.now()
OLD = NOW - dt.timedelta(days=200)
# A month boundary 120-150 days back: after OLD, and older than the 90 days the command keeps.
BEFORE = (NOW - dt.timedelta(days=120)).strftime("%Y-%m")


def run(*args: str) -> str:
    out = io.StringIO()
    with translation.override("en"):
        call_command("archive_decisions", *args, stdout=out)
    return out.getvalue()


def settle(decision: Decision, status: str) -> Decision:
    AfterSaleRequest.objects.filter(pk=decision.request_id).update(status=status)
    if status == "executed":
        Decision.objects.filter(pk=decision.pk).update(executed_at=decision.decided_at)
    return decision


def old_request(shop, **fields):
    request = make_request(shop=shop, **fields)
    # received_at is auto_now_add: set it as the old month had it.
    AfterSaleRequest.objects.filter(pk=request.pk).update(received_at=OLD)
    request.refresh_from_db()
    return request


@pytest.fixture
def log(shop):
    """Decisions of an old month that are settled for good, and others that must stay."""
    strategy = make_strategy(shop=shop, status="active", daily_cap=Decimal("1000.00"))
    trial = make_strategy(shop=shop, status="trial", name="Trial one", position=2)
    gone = {}
    for n in range(3):
        d = make_decision(
            request=old_request(shop, amount="10.00"), strategy=strategy, decided_at=OLD
        )
        gone[f"executed-{n}"] = settle(d, "executed")
    TrialHit.objects.create(
        decision=gone["executed-0"],
        shop=shop,
        strategy=trial,
        day=OLD.date(),
        amount=Decimal("10.00"),
    )
    refused = make_decision(request=old_request(shop), outcome="manual_review", decided_at=OLD)
    gone["refused"] = settle(refused, "refused")
    stay = {}
    # Still waiting in the review queue, still to be executed, unknown: all in flight.
    waiting = make_decision(request=old_request(shop), outcome="manual_review", decided_at=OLD)
    stay["in review queue"] = waiting
    stay["approved, not executed"] = make_decision(
        request=old_request(shop, amount="5.00"), strategy=strategy, decided_at=OLD
    )
    unknown = make_decision(
        request=old_request(shop, amount="6.00"), strategy=strategy, decided_at=OLD
    )
    stay["unknown"] = settle(unknown, "unknown")
    # A person confirmed it paid: an audit record of money keeps its decision.
    confirmed = settle(
        make_decision(request=old_request(shop, amount="7.00"), strategy=strategy, decided_at=OLD),
        "executed",
    )
    ExecutionConfirmation.objects.create(
        decision=confirmed, verdict="paid", username="owner-a", confirmed_at=NOW
    )
    stay["confirmed"] = confirmed
    # Its order has a request since the cut-off: the order total still reads this approval.
    order = make_order(shop=shop)
    reused = settle(
        make_decision(
            request=old_request(shop, order=order, amount="8.00"), strategy=strategy, decided_at=OLD
        ),
        "executed",
    )
    make_request(shop=shop, order=order, amount="1.00")
    stay["order has a new request"] = reused
    # A refused one whose review is still unsettled.
    reviewed = settle(
        make_decision(request=old_request(shop), outcome="manual_review", decided_at=OLD), "refused"
    )
    Review.objects.create(
        shop=shop,
        request=reviewed.request,
        action="refuse",
        amount=reviewed.amount,
        username="owner-a",
        seen_version=NOW,
        created_at=NOW,
        result="unknown",
    )
    stay["review unsettled"] = reviewed
    recent = make_decision(request=make_request(shop=shop, amount="4.00"), strategy=strategy)
    stay["recent"] = settle(recent, "executed")
    return gone, stay


def snapshot(model) -> list[dict]:
    return [model_to_dict(row) | {"pk": row.pk} for row in model.objects.order_by("pk")]


def money() -> tuple[list[dict], list[dict], list[dict]]:
    return snapshot(DailyLedger), snapshot(ExecutionConfirmation), snapshot(Alert)


def test_settled_old_decisions_are_archived_ledgers_untouched_and_the_archive_round_trips(
    log, tmp_path
):
    gone, stay = log
    before_decisions, before_hits, before_money = snapshot(Decision), snapshot(TrialHit), money()
    assert DailyLedger.objects.exists()
    target = tmp_path / "old.jsonl.gz"

    out = run("--before", BEFORE, "--output", str(target), "--batch-size", "2")

    assert f"decisions archived: {len(gone)}, their trial results: 1, " in out
    kept = len(stay) - 1  # the recent one is not older than the cut-off
    assert f"decisions deleted: {len(gone)}; older but not settled for good, kept: {kept}." in out
    assert set(Decision.objects.values_list("pk", flat=True)) == {d.pk for d in stay.values()}
    assert not TrialHit.objects.exists()
    assert money() == before_money  # ledgers, confirmations, alerts: not one field changed
    assert AfterSaleRequest.objects.count() == len(gone) + len(stay) + 1  # requests stay
    with gzip.open(target, "rt") as f:
        lines = f.read().splitlines()
    assert len(lines) == len(gone) + 1

    out = run("--restore", str(target))

    assert f"rows: {len(gone) + 1}; already present: 0." in out
    assert snapshot(Decision) == before_decisions
    assert snapshot(TrialHit) == before_hits
    assert money() == before_money
    # Restoring again changes nothing.
    assert f"rows: 0; already present: {len(gone) + 1}." in run("--restore", str(target))
    assert snapshot(Decision) == before_decisions


def test_a_dry_run_counts_and_changes_nothing(log, tmp_path, monkeypatch):
    gone, stay = log
    monkeypatch.chdir(tmp_path)
    before = snapshot(Decision), snapshot(TrialHit), money()

    out = run("--before", BEFORE, "--dry-run")

    kept = len(stay) - 1  # the recent one is not older than the cut-off
    assert f"decisions to archive: {len(gone)}, their trial results: 1; " in out
    assert f"older but not settled for good, to keep: {kept}. Nothing was written" in out
    assert (snapshot(Decision), snapshot(TrialHit), money()) == before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--before", "2026-13"], "--before must be a month as YYYY-MM"),
        (["--before", "2026/01"], "--before must be a month as YYYY-MM"),
        (["--before", "last year"], "--before must be a month as YYYY-MM"),
        ([], "Give --before YYYY-MM"),
        (["--before", NOW.strftime("%Y-%m")], "is too recent: only decisions older than 90 days"),
        (["--before", BEFORE, "--batch-size", "0"], "--batch-size must be at least 1"),
        (["--before", BEFORE, "--restore", "x.gz"], "either --before or --restore"),
        (["--restore", "/nonexistent/archive.jsonl.gz"], "No archive file"),
        (["--before", BEFORE, "--output", "/nonexistent/a.jsonl.gz"], "No folder /nonexistent"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_changes_nothing(log, args, message):
    before = snapshot(Decision), money()
    with pytest.raises(CommandError) as excinfo:
        run(*args)
    assert message in str(excinfo.value)
    assert (snapshot(Decision), money()) == before


def test_an_existing_archive_is_never_overwritten(log, tmp_path):
    target = tmp_path / "old.jsonl.gz"
    target.write_bytes(b"keep me")
    before = snapshot(Decision)
    with pytest.raises(CommandError, match="already exists"):
        run("--before", BEFORE, "--output", str(target))
    assert target.read_bytes() == b"keep me"
    assert snapshot(Decision) == before


def test_a_file_that_is_not_an_archive_restores_nothing(db, tmp_path):
    target = tmp_path / "garbage.jsonl.gz"
    target.write_bytes(b"not gzip at all")
    with pytest.raises(CommandError, match="not a readable decision"):
        run("--restore", str(target))
    other = tmp_path / "other.jsonl.gz"
    with gzip.open(other, "wt") as f:
        f.write('{"model": "strategies.shop", "pk": 1, "fields": {}}\n')
    with pytest.raises(CommandError, match="not a decision archive"):
        run("--restore", str(other))
    assert not Decision.objects.exists()


def test_the_errors_are_in_the_interface_language(db):
    with translation.override("zh-hans"), pytest.raises(CommandError) as excinfo:
        call_command("archive_decisions", "--before", "2026-13")
    assert "须为 YYYY-MM 格式的月份" in str(excinfo.value)
