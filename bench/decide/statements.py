"""Plain SQL against the ORM, statement by statement, on a request's path (PostgreSQL).

Every statement ``strategies/pipeline/rows.py`` keeps in plain SQL, and every write of the path
left to the ORM, done both ways on the same rows: interleaved, in one process, each call in a
transaction of its own (committed, as in production: psycopg forgets its prepared statements on
every rollback). Printed per call: the median wall time, and the mean CPU time of this process
and of its PostgreSQL backend (steadier than wall times on a loaded machine), what the ORM
costs more and the ratio. This is how rows.py was chosen, and how to check that a choice still
holds.

    python bench/decide/statements.py                     # the settings' binding, ~1 minute
    python bench/decide/statements.py --binding client    # Django's default: client-side binding
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (
    BIG_CAP,
    DEFAULT_BROKER,
    database_url,
    percentile,
    print_table,
    setup_django,
    write_json,
)

# How DATABASES OPTIONS binds parameters: in the client (Django's default), on the server
# without prepared statements, or on the server with them (the settings' default).
BINDINGS = ("client", "server", "prepared")


def binding_environ(mode: str) -> dict[str, str]:
    return {"DATABASE_PREPARED_STATEMENTS": "false" if mode == "client" else "true"}


def binding_apply(mode: str) -> None:
    """After ``django.setup()``: "server" keeps the server-side binding, prepares nothing."""
    from django.db import connections

    if mode == "server":
        connections.close_all()
        connections["default"].settings_dict["OPTIONS"]["prepare_threshold"] = None


def backend_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of PostgreSQL backend ``pid``, read from /proc: the database's
    share of the work, which wall times on a busy machine hide. NaN if the server is remote."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=database_url("atom_bench_decide"))
    parser.add_argument("--iterations", type=int, default=300, help="timed calls per variant")
    parser.add_argument("--binding", choices=BINDINGS, default="prepared")
    parser.add_argument("--json", default=None)
    return parser.parse_args()


@dataclass
class Case:
    name: str
    kept: str  # what production uses: "sql" or "orm"
    sql: Callable[[int], Any]
    orm: Callable[[int], Any]
    reset: Callable[[], Any] | None = None  # untimed, before each call
    timings: dict[str, list[float]] = field(default_factory=lambda: {"sql": [], "orm": []})
    # CPU per call: this process (Django, psycopg) and its PostgreSQL backend.
    cpu: dict[str, list[float]] = field(default_factory=lambda: {"sql": [], "orm": []})


# --- data -----------------------------------------------------------------------------------


@dataclass
class Seeded:
    shop: Any
    strategy: Any
    order: Any
    request: Any
    approved: Any  # an approved decision, request approved: claimable
    failed: Any  # a failed approval with a ledger: releasable
    spare_requests: list[int]
    today: dt.date


def seed(tag: str, spares: int) -> Seeded:
    from strategies.models import (
        AfterSaleRequest,
        Decision,
        Order,
        OrderItem,
        Product,
        Shop,
        Strategy,
    )
    from strategies.pipeline.ledger import ledger_for_day
    from strategies.selectors import shop_today

    now = dt.datetime.now(dt.UTC)
    shop = Shop.objects.create(code=f"stmt-{tag}", name="Statements", api_secret="s")
    products = [
        Product.objects.create(shop=shop, product_id=f"P{i}", title=f"Product {i}")
        for i in range(5)
    ]
    strategies = []
    for position in (1, 2, 3):
        strategy = Strategy.objects.create(
            shop=shop,
            scenario="post_shipment_refund",
            name=f"Statements {position}",
            status="active",
            position=position,
            daily_cap=BIG_CAP,
            reasons=["no_longer_needed", "not_received"],
        )
        if position == 2:
            strategy.products.add(*products)
        strategies.append(strategy)
    today = shop_today(shop=shop, now=now)
    ledger = ledger_for_day(strategy=strategies[0], day=today)

    def order(order_id: str) -> Order:
        made = Order.objects.create(
            shop=shop,
            order_id=order_id,
            status="shipped",
            paid_at=now - dt.timedelta(days=2),
            shipped_at=now - dt.timedelta(days=1),
            tags=[],
        )
        OrderItem.objects.bulk_create(
            OrderItem(order=made, product_id=f"P{i}", quantity=1, price=Decimal("30.00"))
            for i in range(3)
        )
        return made

    def request(aftersale_id: str, on: Order, status: str = "received") -> AfterSaleRequest:
        return AfterSaleRequest.objects.create(
            shop=shop,
            aftersale_id=aftersale_id,
            order=on,
            buyer_id="B1",
            type="refund_only",
            reason="no_longer_needed",
            amount=Decimal("1.00"),
            applied_at=now,
            payload={},
            payload_digest="0" * 64,
            status=status,
        )

    def approval(on: AfterSaleRequest, **fields: Any) -> Decision:
        return Decision.objects.create(
            request=on,
            shop=shop,
            aftersale_id=on.aftersale_id,
            order_id=on.order.order_id,
            reason=on.reason,
            outcome="approved",
            scenario="post_shipment_refund",
            strategy=strategies[0],
            strategy_name=strategies[0].name,
            action="approve_refund",
            amount=on.amount,
            buyer_id=on.buyer_id,
            ledger=ledger,
            decided_at=now,
            **fields,
        )

    main = order("OD-main")
    spare_order = order("OD-spare")
    return Seeded(
        shop=shop,
        strategy=strategies[0],
        order=main,
        request=request("AS-main", main),
        approved=approval(request("AS-approved", spare_order, "approved")),
        failed=approval(request("AS-failed", spare_order, "failed"), failed_at=now),
        spare_requests=[request(f"AS-spare-{i}", spare_order).pk for i in range(spares)],
        today=today,
    )


# --- the ORM's way to the rows.py statements ----------------------------------------------


def orm_request_load(request_id: int) -> Any:
    from django.db.models import Exists, OuterRef

    from strategies.matching import OrderSnapshot, RequestSnapshot
    from strategies.models import AfterSaleRequest, OrderItem, Strategy
    from strategies.pipeline.rows import LoadedRequest

    r = (
        AfterSaleRequest.objects.select_related("order", "shop")
        .select_for_update(of=("self", "order"))
        .defer("payload")
        .annotate(
            limits=Exists(
                Strategy.objects.filter(
                    shop_id=OuterRef("shop_id"), max_per_buyer_30d__isnull=False
                )
            )
        )
        .get(pk=request_id)
    )
    items = list(
        OrderItem.objects.filter(order_id=r.order_id).values_list("product_id", "price", "quantity")
    )
    o = r.order
    return LoadedRequest(
        id=r.pk,
        status=r.status,
        shop_id=r.shop_id,
        shop_timezone=r.shop.timezone,
        aftersale_id=r.aftersale_id,
        order_id=o.order_id,
        shop_limits_buyers=r.limits,
        snapshot=RequestSnapshot(
            type=r.type,
            reason=r.reason,
            amount=r.amount,
            applied_at=r.applied_at,
            risk_flag=r.risk_flag,
            buyer_id=r.buyer_id,
            order=OrderSnapshot(
                status=o.status,
                paid_at=o.paid_at,
                shipped_at=o.shipped_at,
                received_at=o.received_at,
                tags=frozenset(o.tags),
                product_ids=frozenset(p for p, _, _ in items),
                total=sum((price * q for _, price, q in items), Decimal("0.00")),
            ),
        ),
    )


def orm_strategies_load(
    *, shop_id: int, scenarios: tuple[str, ...], day: dt.date, order_id: str
) -> Any:
    import dataclasses

    from django.db.models import F, FilteredRelation, OuterRef, Prefetch, Q, Subquery, Sum

    from strategies.matching import StrategySnapshot
    from strategies.models import Decision, Product, Strategy
    from strategies.pipeline.rows import LoadedStrategy

    history = Strategy.history.model  # type: ignore[attr-defined]
    strategies = list(
        Strategy.objects.filter(shop_id=shop_id, scenario__in=scenarios)
        .annotate(
            # Not "version": the model's own field (its edit counter) has that name.
            history_version=Subquery(
                history.objects.filter(id=OuterRef("pk"))
                .order_by("-history_id")
                .values("history_id")[:1]
            ),
            today=FilteredRelation("ledgers", condition=Q(ledgers__day=day)),
            ledger_id=F("today__id"),
            ledger_consumed=F("today__consumed"),
            ledger_refused_at=F("today__cap_refused_at"),
        )
        .prefetch_related(Prefetch("products", queryset=Product.objects.only("product_id")))
        .order_by("scenario", "position", "id")
    )
    refunded = Decision.objects.filter(
        shop_id=shop_id, order_id=order_id, outcome="approved", released_at__isnull=True
    ).aggregate(total=Sum("amount"))["total"]
    names = [f.name for f in dataclasses.fields(StrategySnapshot) if f.name != "unreadable"]
    return [
        LoadedStrategy(
            snapshot=StrategySnapshot(
                **{
                    name: getattr(s, name)
                    for name in names
                    if name not in ("product_ids", "reasons")
                },
                product_ids=frozenset(p.product_id for p in s.products.all()),
                reasons=frozenset(s.reasons),
            ),
            version=s.history_version,
            ledger_id=s.ledger_id,
            consumed=s.ledger_consumed,
            cap_refused=s.ledger_refused_at is not None,
        )
        for s in strategies
    ], refunded or Decimal("0.00")


def orm_ledger_reserve(*, shop_id: int, strategy_id: int, day: dt.date, amount: Decimal) -> Any:
    """The ORM cannot make an upsert's UPDATE conditional: insert-if-missing, a conditional
    UPDATE, then read the total back."""
    from django.db.models import DecimalField, ExpressionWrapper, F, Subquery

    from strategies.models import DailyLedger, Strategy
    from strategies.pipeline.rows import Reservation

    DailyLedger.objects.bulk_create(
        [DailyLedger(shop_id=shop_id, strategy_id=strategy_id, day=day)], ignore_conflicts=True
    )
    cap = Strategy.objects.filter(pk=strategy_id, status="active").values("daily_cap")
    room = ExpressionWrapper(Subquery(cap) - amount, output_field=DecimalField())
    reserved = DailyLedger.objects.filter(
        strategy_id=strategy_id, day=day, consumed__lte=room
    ).update(consumed=F("consumed") + amount, approved_count=F("approved_count") + 1)
    if not reserved:
        return None
    ledger_id, consumed = DailyLedger.objects.values_list("id", "consumed").get(
        strategy_id=strategy_id, day=day
    )
    return Reservation(ledger_id=ledger_id, consumed=consumed)


def orm_claim_execution(*, decision_id: int, now: dt.datetime, lease_until: dt.datetime) -> Any:
    from django.db.models import F, Q

    from strategies.models import Decision
    from strategies.pipeline.rows import ClaimedExecution

    claimed = Decision.objects.filter(
        Q(execution_lease_until__isnull=True) | Q(execution_lease_until__lte=now),
        pk=decision_id,
        outcome="approved",
        executed_at__isnull=True,
        failed_at__isnull=True,
        request__status="approved",
    ).update(execution_lease_until=lease_until, execution_attempts=F("execution_attempts") + 1)
    if not claimed:
        return None
    row = Decision.objects.values(
        "aftersale_id", "action", "amount", "idempotency_key", "request_id"
    ).get(pk=decision_id)
    # The ORM's share only: the plain claim also marks the attempt and reads the channel.
    return ClaimedExecution(**row, after_ambiguous=False, request_type="", channel_id=None)


# --- plain SQL for what production leaves to the ORM ----------------------------------------


@cache
def _insert_sql(model: type) -> tuple[str, tuple[Any, ...]]:
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(f'"{f.column}"' for f in fields)
    values = ", ".join(f"%({f.column})s" for f in fields)
    table = model._meta.db_table
    return f'INSERT INTO "{table}" ({columns}) VALUES ({values}) RETURNING "id"', fields


def model_params(instance: Any) -> dict[str, Any]:
    from django.db import connection

    return {
        f.column: f.get_db_prep_save(f.pre_save(instance, True), connection)
        for f in instance._meta.concrete_fields
        if not f.primary_key
    }


def sql_insert(instance: Any) -> int:
    from django.db import connection

    statement, _ = _insert_sql(type(instance))
    with connection.cursor() as cursor:
        cursor.execute(statement, model_params(instance))
        return int(cursor.fetchone()[0])


def sql_order_upsert(order: Any) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(ORDER_UPSERT, model_params(order))
        return int(cursor.fetchone()[0])


def sql_products_add(products: list[Any]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.executemany(PRODUCT_INSERT, [model_params(p) for p in products])


def sql_execute(statement: str, params: dict[str, Any]) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


ORDER_UPSERT = """
INSERT INTO "strategies_order"
    ("shop_id", "order_id", "status", "paid_at", "shipped_at", "received_at", "tags",
     "updated_at")
VALUES
    (%(shop_id)s, %(order_id)s, %(status)s, %(paid_at)s, %(shipped_at)s, %(received_at)s,
     %(tags)s, %(updated_at)s)
ON CONFLICT ("shop_id", "order_id") DO UPDATE SET
    "status" = excluded."status", "paid_at" = excluded."paid_at",
    "shipped_at" = excluded."shipped_at", "received_at" = excluded."received_at",
    "tags" = excluded."tags", "updated_at" = excluded."updated_at"
RETURNING "id"
"""
PRODUCT_INSERT = """
INSERT INTO "strategies_product" ("shop_id", "product_id", "title")
VALUES (%(shop_id)s, %(product_id)s, %(title)s)
ON CONFLICT ("shop_id", "product_id") DO NOTHING
"""
REQUEST_STATUS = """
UPDATE "strategies_aftersalerequest" SET "status" = %(status)s, "updated_at" = %(now)s
 WHERE "id" = %(request_id)s
"""
DECISION_EXECUTED = """
UPDATE "strategies_decision" SET "executed_at" = %(now)s, "execution_lease_until" = NULL
 WHERE "id" = %(decision_id)s AND "executed_at" IS NULL AND "failed_at" IS NULL
"""
REQUEST_EXECUTED = """
UPDATE "strategies_aftersalerequest" SET "status" = 'executed', "updated_at" = %(now)s
 WHERE "id" = %(request_id)s AND "status" = 'approved'
"""
RELEASE_CLAIM = """
UPDATE "strategies_decision" SET "released_at" = %(now)s
 WHERE "id" = %(decision_id)s AND "released_at" IS NULL AND "failed_at" IS NOT NULL
   AND "ledger_id" IS NOT NULL
RETURNING "ledger_id", "amount"
"""
RELEASE = """
UPDATE "strategies_dailyledger"
   SET "consumed" = GREATEST("consumed" - %(amount)s, 0),
       "approved_count" = GREATEST("approved_count" - 1, 0)
 WHERE "id" = %(ledger_id)s
"""
ALERT_CLAIM = """
INSERT INTO "notifications_alert" ("shop_id", "strategy_id", "day", "level", "consumed", "cap",
                                   "created_at")
VALUES (%(shop_id)s, %(strategy_id)s, %(day)s, %(level)s, %(consumed)s, %(cap)s, %(now)s)
ON CONFLICT ("strategy_id", "day", "level") DO NOTHING RETURNING "id"
"""


def sql_release(decision_id: int, now: dt.datetime) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(RELEASE_CLAIM, {"decision_id": decision_id, "now": now})
        row = cursor.fetchone()
        if row is None:
            return False
        cursor.execute(RELEASE, {"ledger_id": row[0], "amount": row[1]})
    return True


# --- the cases ------------------------------------------------------------------------------


def cases(data: Seeded) -> list[Case]:
    from django.db import connection

    from notifications.services import _claim_alert  # the alert claim as production runs it
    from strategies.models import (
        AfterSaleRequest,
        DailyLedger,
        Decision,
        Order,
        OrderItem,
        Product,
    )
    from strategies.pipeline import ledger, rows

    now = dt.datetime.now(dt.UTC)
    scenarios = ("post_shipment_no_return", "post_shipment_refund")
    load = {
        "shop_id": data.shop.pk,
        "scenarios": scenarios,
        "day": data.today,
        "order_id": data.order.order_id,
    }
    reserve = {
        "shop_id": data.shop.pk,
        "strategy_id": data.strategy.pk,
        "day": data.today,
        "amount": Decimal("0.01"),
    }
    claim = {"decision_id": data.approved.pk, "now": now, "lease_until": now}

    def new_order() -> Order:
        return Order(
            shop_id=data.shop.pk,
            order_id=data.order.order_id,
            status="shipped",
            paid_at=data.order.paid_at,
            shipped_at=data.order.shipped_at,
            tags=["refund_no_return"],
        )

    def items() -> list[OrderItem]:
        return [
            OrderItem(order_id=data.order.pk, product_id=f"P{i}", title="t", quantity=1, price=1)
            for i in range(3)
        ]

    def products() -> list[Product]:
        return [Product(shop_id=data.shop.pk, product_id=f"P{i}", title="t") for i in range(3)]

    spares = iter(data.spare_requests)

    def decision(_: int) -> Decision:
        request_id = next(spares)
        return Decision(
            request_id=request_id,
            shop_id=data.shop.pk,
            aftersale_id=f"AS-{request_id}",
            order_id="OD-spare",
            reason="no_longer_needed",
            outcome="manual_review",
            scenario="post_shipment_refund",
            amount=Decimal("1.00"),
            explanations=[{"code": "inactive", "message": "The strategy is inactive"}],
            buyer_id="B1",
            decided_at=now,
        )

    serial = itertools.count()

    def request() -> AfterSaleRequest:
        return AfterSaleRequest(
            shop_id=data.shop.pk,
            aftersale_id=f"AS-new-{next(serial)}",
            order_id=data.order.pk,
            buyer_id="B1",
            type="refund_only",
            reason="no_longer_needed",
            amount=Decimal("1.00"),
            applied_at=now,
            payload={"aftersale_id": "x", "order": {"items": [1, 2, 3]}},
            payload_digest="0" * 64,
        )

    ledger_row = DailyLedger.objects.get(strategy=data.strategy, day=data.today)
    days = itertools.count(1)

    def alert_ledger() -> DailyLedger:
        ledger_row.day = data.today + dt.timedelta(days=next(days))
        return ledger_row

    def sql_alert(_: int) -> int | None:
        row = alert_ledger()
        with connection.cursor() as cursor:
            cursor.execute(
                ALERT_CLAIM,
                {
                    "shop_id": row.shop_id,
                    "strategy_id": row.strategy_id,
                    "day": row.day,
                    "level": 95,
                    "consumed": row.consumed,
                    "cap": BIG_CAP,
                    "now": now,
                },
            )
            found = cursor.fetchone()
        return found[0] if found else None

    status = {"request_id": data.request.pk, "status": "received", "now": now}

    def orm_decision_insert(unsaved: Decision) -> None:
        unsaved.save(force_insert=True)
        rows.request_set_status(request_id=unsaved.request_id, status="manual_review", now=now)

    executed = {"decision_id": data.approved.pk, "request_id": data.approved.request_id}

    def sql_mark_executed(_: int) -> bool:
        if not sql_execute(DECISION_EXECUTED, {**executed, "now": now}):
            return False
        sql_execute(REQUEST_EXECUTED, {**executed, "now": now})
        return True

    def reopen() -> None:
        Decision.objects.filter(pk=data.approved.pk).update(executed_at=None)
        AfterSaleRequest.objects.filter(pk=data.approved.request_id).update(status="approved")

    return [
        Case(
            "request read (locked)",
            "sql",
            lambda _: rows.request_lock_and_load(request_id=data.request.pk),
            lambda _: orm_request_load(data.request.pk),
        ),
        Case(
            "strategies read",
            "sql",
            lambda _: rows.strategies_load(**load),
            lambda _: orm_strategies_load(**load),
        ),
        Case(
            "ledger reservation",
            "sql",
            lambda _: rows.ledger_reserve_on_day(**reserve),
            lambda _: orm_ledger_reserve(**reserve),
        ),
        Case(
            "execution claim",
            "sql",
            lambda _: rows.decision_claim_execution(**claim),
            lambda _: orm_claim_execution(**claim),
        ),
        Case(
            "order items (3) replaced",
            "sql",
            lambda _: rows.order_items_replace(order_id=data.order.pk, items=items()),
            lambda _: (
                OrderItem.objects.filter(order_id=data.order.pk).delete(),
                OrderItem.objects.bulk_create(items()),
            ),
        ),
        Case(
            "order upsert",
            "orm",
            lambda _: sql_order_upsert(new_order()),
            lambda _: (
                Order.objects.bulk_create(
                    [new_order()],
                    update_conflicts=True,
                    unique_fields=["shop", "order_id"],
                    update_fields=rows.ORDER_UPDATED,
                )[0].pk
            ),
        ),
        Case(
            "products (3) added",
            "orm",
            lambda _: sql_products_add(products()),
            lambda _: Product.objects.bulk_create(products(), ignore_conflicts=True),
        ),
        Case(
            # One statement (a data-modifying CTE) against the ORM's two.
            "decision insert + request status",
            "sql",
            lambda i: rows.decision_insert(decision(i), request_status="manual_review"),
            lambda i: orm_decision_insert(decision(i)),
        ),
        Case(
            "request insert",
            "orm",
            lambda _: sql_insert(request()),
            lambda _: request().save(force_insert=True),
        ),
        Case(
            "request status",
            "orm",
            lambda _: sql_execute(REQUEST_STATUS, status),
            lambda _: rows.request_set_status(**status),
        ),
        Case(
            "decision executed",
            "orm",
            sql_mark_executed,
            lambda _: rows.decision_mark_executed(**executed, now=now),
            reset=reopen,
        ),
        Case(
            "ledger release",
            "orm",
            lambda _: sql_release(data.failed.pk, now),
            lambda _: ledger.ledger_release(decision_id=data.failed.pk, now=now),
            reset=lambda: Decision.objects.filter(pk=data.failed.pk).update(released_at=None),
        ),
        Case(
            "alert claim",
            "orm",
            sql_alert,
            lambda _: _claim_alert(ledger=alert_ledger(), level=95, cap=BIG_CAP),
        ),
    ]


def run(case: Case, iterations: int, warmup: int, backend: int) -> None:
    from django.db import transaction

    for i in range(warmup + iterations):
        # Alternate which goes first, so neither always finds the other's pages warm.
        for variant in ("sql", "orm") if i % 2 else ("orm", "sql"):
            if case.reset:
                with transaction.atomic():
                    case.reset()
            with transaction.atomic():
                cpu0, server0 = time.process_time(), backend_cpu_seconds(backend)
                t0 = time.perf_counter()
                getattr(case, variant)(i)
                elapsed = time.perf_counter() - t0
                cpu = time.process_time() - cpu0 + backend_cpu_seconds(backend) - server0
            if i >= warmup:
                case.timings[variant].append(elapsed)
                case.cpu[variant].append(cpu)


def main() -> int:
    args = parse_args()
    setup_django(
        database_url=args.database_url,
        broker_url=DEFAULT_BROKER,
        **binding_environ(args.binding),
    )
    binding_apply(args.binding)
    from django.db import connection

    warmup = 20
    data = seed(f"{os.getpid()}-{time.time_ns()}", spares=2 * (warmup + args.iterations) + 2)
    all_cases = cases(data)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    for case in all_cases:
        run(case, args.iterations, warmup, backend)

    table, out = [], []
    for case in all_cases:
        sql, orm = (percentile(case.timings[v], 50) * 1e6 for v in ("sql", "orm"))
        sql_cpu, orm_cpu = (sum(case.cpu[v]) / len(case.cpu[v]) * 1e6 for v in ("sql", "orm"))
        row = {
            "statement": case.name,
            "kept": case.kept,
            "sql_p50_us": sql,
            "orm_p50_us": orm,
            "sql_cpu_us": sql_cpu,
            "orm_cpu_us": orm_cpu,
            "orm_extra_cpu_us": orm_cpu - sql_cpu,
            "orm_over_sql_cpu": orm_cpu / sql_cpu,
        }
        out.append(row)
        table.append(
            [
                case.name,
                case.kept,
                sql,
                orm,
                sql_cpu,
                orm_cpu,
                orm_cpu - sql_cpu,
                f"{orm_cpu / sql_cpu:.2f}",
            ]
        )
    print(
        f"binding: {args.binding}; {args.iterations} calls per variant; wall: median µs; "
        "cpu: mean µs of this process and its PostgreSQL backend\n"
    )
    print_table(
        [
            "statement",
            "kept",
            "sql wall",
            "orm wall",
            "sql cpu",
            "orm cpu",
            "orm extra cpu",
            "orm/sql cpu",
        ],
        table,
    )
    connection.close()
    path = write_json(
        f"decide_statements_{args.binding}",
        {"binding": args.binding, "iterations": args.iterations, "cases": out},
        args.json,
    )
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
