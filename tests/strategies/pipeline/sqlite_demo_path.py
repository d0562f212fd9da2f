"""The demo's path on SQLite, in a process of its own (the test suite itself runs on PostgreSQL):
intake with a retry and a conflict, decisions that read and write through ``rows``, a replay,
the execution claim. Run by test_rows_sqlite.py as

    python -m tests.strategies.pipeline.sqlite_demo_path

with the demo's environment (no DATABASE_URL, DEBUG=true, ATOM_VAR_DIR a scratch folder); it
prints one JSON object of what it saw, which the test checks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from typing import Any


def payload(
    aftersale_id: str, amount: str, now: dt.datetime, order_id: str = "OD-SQLITE-1"
) -> dict[str, Any]:
    def at(days: float) -> str:
        return (now - dt.timedelta(days=days)).isoformat()

    return {
        "aftersale_id": aftersale_id,
        "buyer_id": "B7781",
        "type": "refund_only",
        "reason": "no_longer_needed",
        "amount": amount,
        "applied_at": at(0),
        "risk_flag": False,
        "order": {
            "order_id": order_id,
            "status": "shipped",
            "paid_at": at(2),
            "shipped_at": at(1),
            "received_at": None,
            "tags": ["vip"],
            "items": [
                {"product_id": "P1001", "title": "Phone case", "quantity": 1, "price": "30.00"},
                {"product_id": "P2002", "title": "Cable", "quantity": 2, "price": "10.00"},
            ],
        },
    }


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atomsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from strategies.matching import scenarios_for
    from strategies.models import (
        AfterSaleRequest,
        DailyLedger,
        Decision,
        Order,
        Product,
        Shop,
        Strategy,
    )
    from strategies.pipeline.decide import request_decide, request_decide_claiming
    from strategies.pipeline.intake import PayloadConflict
    from strategies.pipeline.rows import (
        decision_claim_execution,
        decision_mark_executed,
        request_lock_and_load,
        strategies_load,
    )
    from strategies.platforms.generic.intake import aftersale_receive
    from strategies.selectors import shop_today
    from tests.strategies.orm_oracle import oracle_request, oracle_strategies

    call_command("migrate", verbosity=0, interactive=False)
    now = timezone.now()
    shop = Shop.objects.create(code="sqlite", name="SQLite", api_secret="s")
    strategy = Strategy.objects.create(
        shop=shop,
        scenario="post_shipment_refund",
        name="Everyday refunds",
        status="active",
        position=1,
        daily_cap=Decimal("100.00"),
        per_request_cap=Decimal("40.00"),
        reasons=["no_longer_needed"],
    )
    strategy.products.add(Product.objects.create(shop=shop, product_id="P1001", title="Case"))
    strategy.products.add(Product.objects.create(shop=shop, product_id="P2002", title="Cable"))
    # Never tried (the first one takes every request), but read: its window, validity and
    # buyer limit come back through SQLite's converters.
    Strategy.objects.create(
        shop=shop,
        scenario="post_shipment_refund",
        name="Nights",
        status="inactive",
        position=2,
        window_start=dt.time(22),
        window_end=dt.time(8),
        valid_from=now - dt.timedelta(days=1),
        max_per_buyer_30d=3,
    )

    seen: dict[str, Any] = {"vendor": connection.vendor}
    first = aftersale_receive(shop=shop, payload=payload("AS-1", "30.00", now))
    retry = aftersale_receive(shop=shop, payload=payload("AS-1", "30.00", now))
    seen["intake"] = [first.created, retry.created, retry.request.pk == first.request.pk]
    try:
        aftersale_receive(shop=shop, payload=payload("AS-1", "1.00", now))
        seen["conflict"] = "accepted"
    except PayloadConflict as exc:
        seen["conflict"] = str(exc.request.amount)
    seen["stored"] = [
        AfterSaleRequest.objects.count(),
        Order.objects.count(),
        sorted(Product.objects.values_list("product_id", flat=True)),
    ]
    second = aftersale_receive(shop=shop, payload=payload("AS-2", "25.00", now))
    third = aftersale_receive(shop=shop, payload=payload("AS-3", "20.00", now))

    # What the decision reads: the same through the plain SQL as through the ORM.
    with transaction.atomic():
        loaded = request_lock_and_load(request_id=first.request.pk)
        query = {
            "shop_id": shop.pk,
            "scenarios": scenarios_for(loaded.snapshot),
            "day": shop_today(shop=shop, now=now),
            "order_id": loaded.order_id,
        }
        seen["oracle"] = [
            loaded == oracle_request(first.request.pk),
            strategies_load(**query) == oracle_strategies(**query),
            len(strategies_load(**query)[0]),
        ]

    decisions = [
        request_decide(request_id=receipt.request.pk) for receipt in (first, second, third)
    ]
    replay = request_decide(request_id=first.request.pk)
    seen["decisions"] = [
        [d.outcome, str(d.amount), [e["code"] for e in d.explanations]] for d in decisions
    ]
    seen["replay"] = replay.pk == decisions[0].pk
    ledger = DailyLedger.objects.get(strategy=strategy)
    seen["ledger"] = [str(ledger.consumed), ledger.approved_count]

    lease = now + dt.timedelta(seconds=30)
    claim = decision_claim_execution(decision_id=decisions[0].pk, now=now, lease_until=lease)
    again = decision_claim_execution(decision_id=decisions[0].pk, now=now, lease_until=lease)
    seen["claim"] = [
        claim is not None and claim.idempotency_key == decisions[0].idempotency_key,
        claim is not None and claim.amount == Decimal("30.00"),
        again is None,
    ]
    with transaction.atomic():
        marked = [
            decision_mark_executed(
                decision_id=decisions[0].pk, request_id=first.request.pk, now=timezone.now()
            )
            for _ in range(2)
        ]
    seen["executed"] = [*marked, AfterSaleRequest.objects.get(pk=first.request.pk).status]

    # The Celery decision task's path: an approval inserted with its first attempt claimed.
    fourth = aftersale_receive(shop=shop, payload=payload("AS-4", "10.00", now, "OD-SQLITE-2"))
    decided = request_decide_claiming(
        request_id=fourth.request.pk, enqueue_execution=False, claim_execution=True
    )
    stored = Decision.objects.get(pk=decided.decision.pk)
    execution = decided.execution
    seen["claimed_on_insert"] = [
        stored.outcome,
        execution is not None and execution.idempotency_key == stored.idempotency_key,
        execution is not None and execution.channel_id,
        stored.execution_attempts,
        stored.execution_lease_until is not None and stored.execution_sent_at is not None,
        str(DailyLedger.objects.get(strategy=strategy).consumed),
    ]
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
