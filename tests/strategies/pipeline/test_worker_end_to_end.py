"""End to end: signed HTTP posts to the live intake API, a real Celery worker over Redis and
PostgreSQL, a real local gateway; every request reaches its final state exactly once."""

import datetime as dt
import json
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from strategies.demo.traffic import get_signed
from strategies.models import AfterSaleRequest, DailyLedger, Decision
from strategies.platforms.generic.signing import signed_headers
from tests.factories import make_shop, make_strategy
from tests.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def payload(i: int, amount: str, *, risk: bool = False) -> dict:
    now = timezone.now().astimezone(dt.timezone(dt.timedelta(hours=8)))
    return {
        "aftersale_id": f"AS-E2E-{i:04d}",
        "buyer_id": f"B{i % 7}",
        "type": "refund_only",
        "reason": "no_longer_needed",
        "amount": amount,
        "applied_at": now.isoformat(),
        "risk_flag": risk,
        "order": {
            "order_id": f"OD-E2E-{i:04d}",
            "status": "shipped",
            "paid_at": (now - dt.timedelta(days=2)).isoformat(),
            "shipped_at": (now - dt.timedelta(days=1)).isoformat(),
            "received_at": None,
            "tags": [],
            "items": [{"product_id": "P1001", "title": "Case", "quantity": 1, "price": "100.00"}],
        },
    }


def test_a_batch_of_signed_requests_is_decided_and_executed_once_each(
    live_server,
    celery_worker,
    gateway_server,
):
    shop = make_shop(code="e2e-shop")
    strategy = make_strategy(
        shop=shop,
        status="active",
        daily_cap=Decimal("300.00"),
        per_request_cap=Decimal("50.00"),
    )
    celery_worker(gateway=gateway_server, pool="prefork", concurrency=2)
    amounts = [f"{10 + (i * 7) % 60}.{i % 100:02d}" for i in range(30)]
    session = requests.Session()
    for i, amount in enumerate(amounts):
        body = json.dumps(payload(i, amount, risk=(i == 5))).encode()
        response = session.post(
            f"{live_server.url}/api/v1/aftersales",
            data=body,
            headers={
                "Content-Type": "application/json",
                **signed_headers(shop_code=shop.code, secret=shop.api_secret, body=body),
            },
            timeout=10,
        )
        assert response.status_code == 202, response.text
    final = {"executed", "manual_review"}

    def settled() -> bool:
        return AfterSaleRequest.objects.filter(shop=shop, status__in=final).count() == 30

    wait_until(settled, timeout=60)
    executed = Decision.objects.filter(shop=shop, request__status="executed")
    manual = Decision.objects.filter(shop=shop, request__status="manual_review")
    assert Decision.objects.filter(shop=shop).count() == 30
    assert executed.count() + manual.count() == 30
    assert executed.count() > 0 and manual.count() > 0
    ledger = DailyLedger.objects.get(strategy=strategy)
    assert sum(d.amount for d in executed) == ledger.consumed <= strategy.daily_cap
    assert ledger.approved_count == executed.count()
    # One gateway call per execution, each with its own decision's key.
    keys = sorted(str(d.idempotency_key) for d in executed)
    assert sorted(c.idempotency_key for c in gateway_server.calls) == keys
    for decision in manual:
        codes = {e["code"] for e in decision.explanations}
        assert codes & {"over_per_request_cap", "daily_cap_reached", "risk_flagged"}, codes
    assert manual.filter(aftersale_id="AS-E2E-0005").exists()  # the risky one
    # The platform reads the final state back through the signed GET.
    for decision in Decision.objects.filter(shop=shop):
        response = get_signed(
            session=session,
            base_url=live_server.url,
            shop_code=shop.code,
            secret=shop.api_secret,
            aftersale_id=decision.aftersale_id,
        )
        assert response.status_code == 200
        assert response.json()["status"] == decision.request.status
        assert response.json()["decision"]["outcome"] == decision.outcome
