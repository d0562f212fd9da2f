"""The hot path's plain SQL, all of it: what deciding, executing and storing a request reads and
writes on every request, where plain SQL measured clearly faster than the ORM (bench/decide,
``statements.py``: the ORM's query building and model instances cost several times the
database's own work on these statements).

- the decision's two reads: ``request_lock_and_load`` (the request with its order, the order's
  products and total and its shop, row-locked) and ``strategies_load`` (the candidate
  strategies with their products, history id and today's ledger, and what the order already
  had approved);
- the cap's conditional upsert, ``ledger_reserve_on_day``, and the buyer's lock, ``buyer_lock``;
  on PostgreSQL an approval's upsert carries its decision's insert and its request's status
  (``decision_insert_reserving``): one statement, nothing written when the cap is full;
- the execution claim, ``decision_claim_execution``, one ``UPDATE ... RETURNING`` that also
  marks the attempt sent and reads the channel, and ``decision_mark_executed``, one statement;
- intake's replacement of an order's items, ``order_items_replace``; on PostgreSQL the whole
  of intake's writes, ``intake_store``: two statements where the ORM path takes five.

The writes around them use the ORM where it costs at most about twice as much, a fraction of
a millisecond (status updates; on SQLite, the demo, every insert), or where they run rarely (the
release after a refusal, the cap-refusal mark, the alert claim). On PostgreSQL the decision's
insert with its request's status is plain SQL too (``decision_insert``, and with an approval's
reservation ``decision_insert_reserving``). The ones the decision and execution services call
by name stay here, at the end.

Written as zulip's ``analytics/lib/counts.py``: each statement is a module constant with named
parameters and quoted identifiers, values always travel as parameters, and rows come back
mapped by column name into slotted dataclasses. PostgreSQL and SQLite (the demo) run the same
statements: the two things they spell differently are filled in per vendor (``_DIALECTS``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import connection, connections, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Model
from django.utils import timezone
from django.utils.dateparse import parse_datetime, parse_time

from strategies.matching import OrderSnapshot, RequestSnapshot, StrategySnapshot
from strategies.models import (
    SCENARIO_ORDER,
    AfterSaleRequest,
    Channel,
    Decision,
    Order,
    OrderItem,
    Outcome,
    Product,
    RequestStatus,
    Shop,
    StrategyStatus,
)
from strategies.pipeline.badrows import (
    Unreadable,
    tolerate_unreadable_values,
    unreadable_strategy,
)

CENT = Decimal("0.01")

# What PostgreSQL and SQLite spell differently. SQLite has no row locks: the demo's
# transactions begin IMMEDIATE (atomsite/settings.py), so writers take turns anyway.
_DIALECTS: dict[str, dict[str, str]] = {
    "postgresql": {"list_agg": "array_agg", "lock_request_and_order": "FOR UPDATE OF r, o"},
    "sqlite": {"list_agg": "json_group_array", "lock_request_and_order": ""},
}


@cache
def _for_vendor(statement: str, vendor: str) -> str:
    return statement.format_map(_DIALECTS[vendor])


def _execute(cursor: CursorWrapper, statement: str, params: Mapping[str, Any]) -> None:
    cursor.execute(_for_vendor(statement, connection.vendor), params)


# --- values as the two backends return them ------------------------------------------------------


def _aware(value: Any) -> dt.datetime | None:
    """PostgreSQL returns aware datetimes; SQLite naive UTC ones."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        return value.replace(tzinfo=dt.UTC)
    return value


def _money(value: Any) -> Decimal | None:
    # SQLite hands NUMERIC columns back as int or float: go through str, never float math.
    return None if value is None else Decimal(str(value)).quantize(CENT)


def _strings(value: Any) -> frozenset[str]:
    """A list column or aggregate: a PostgreSQL array (None when empty), SQLite JSON text."""
    return frozenset(json.loads(value) if isinstance(value, str) else value or ())


def _time(value: Any) -> dt.time | None:
    return parse_time(value) if isinstance(value, str) else value


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# How a column comes back from either backend where it is not yet what Python wants, by the
# column's name in the statements below (a name means the same thing in every statement).
_FROM_DB: dict[str, Callable[[Any], Any]] = {
    "amount": _money,
    "applied_at": _aware,
    "paid_at": _aware,
    "shipped_at": _aware,
    "received_at": _aware,
    "risk_flag": bool,
    "tags": _strings,
    "product_ids": _strings,
    "order_total": lambda value: _money(value) or Decimal("0.00"),
    "shop_limits_buyers": bool,
    "valid_from": _aware,
    "valid_until": _aware,
    "window_start": _time,
    "window_end": _time,
    "covers_shipped": bool,
    "covers_received": bool,
    "daily_cap": _money,
    "per_request_cap": _money,
    "reasons": _strings,
    "risk_control": bool,
    "consumed": _money,
    "cap_refused_at": _aware,
    "order_refunded": lambda value: _money(value) or Decimal("0.00"),
    "idempotency_key": _uuid,
    "after_ambiguous": bool,
}


# The columns of each statement, by name, with their converters: read from the first
# execution's cursor description, which psycopg rebuilds on every access.
_COLUMNS: dict[str, list[tuple[str, Callable[[Any], Any] | None]]] = {}


def _fetch(
    statement: str, params: Mapping[str, Any], *, tolerant: bool = False
) -> list[dict[str, Any]]:
    """Runs ``statement``; its rows as {column name: value}, each converted per ``_FROM_DB``.

    ``tolerant``: a value that cannot be read or converted never fails the fetch; its row comes
    back with its raw values and ``UNREADABLE`` set (RELIABILITY.md 28).
    """
    with connection.cursor() as cursor:
        if tolerant:
            tolerate_unreadable_values(cursor)
        _execute(cursor, statement, params)
        rows = cursor.fetchall()
        if not rows:
            return []
        if statement not in _COLUMNS:
            names = [column[0] for column in cursor.description]
            _COLUMNS[statement] = [(name, _FROM_DB.get(name)) for name in names]
    columns = _COLUMNS[statement]
    if tolerant:
        return [_converted_or_raw(columns, row) for row in rows]
    return [
        {
            name: value if to is None else to(value)
            for (name, to), value in zip(columns, row, strict=True)
        }
        for row in rows
    ]


UNREADABLE = "__unreadable__"


def _converted_or_raw(
    columns: list[tuple[str, Callable[[Any], Any] | None]], row: Sequence[Any]
) -> dict[str, Any]:
    try:
        converted = {
            name: value if to is None else to(value)
            for (name, to), value in zip(columns, row, strict=True)
        }
    except Exception:
        converted = {}
    if converted and not any(isinstance(v, Unreadable) for v in converted.values()):
        return converted
    return {**{name: value for (name, _), value in zip(columns, row, strict=True)}, UNREADABLE: 1}


def _model_params(instance: Model) -> dict[str, Any]:
    """An unsaved instance's columns as parameters, prepared by the model's own fields (JSON,
    dates and decimals as each backend takes them; ``auto_now`` fields set)."""
    # The connection itself, not the ``django.db.connection`` proxy: each field reads it
    # several times, and through the proxy that was half of this function's CPU (issue 16).
    database = connections[connection.alias]
    return {
        str(f.column): f.get_db_prep_save(f.pre_save(instance, True), database)
        for f in instance._meta.concrete_fields
        if not f.primary_key
    }


# --- the request ---------------------------------------------------------------------------------

# The request (the claim) and its order are locked: deciders of two requests on one order take
# turns, so what the order already had approved is counted before approving more of it.
REQUEST_LOAD = """
SELECT
    r."id", r."status", r."shop_id", s."timezone" AS "shop_timezone", r."aftersale_id",
    r."type", r."reason", r."amount", r."applied_at", r."risk_flag", r."buyer_id",
    o."order_id", o."status" AS "order_status", o."paid_at", o."shipped_at",
    o."received_at", o."tags",
    (SELECT {list_agg}(i."product_id") FROM "strategies_orderitem" i
      WHERE i."order_id" = o."id") AS "product_ids",
    (SELECT SUM(i."price" * i."quantity") FROM "strategies_orderitem" i
      WHERE i."order_id" = o."id") AS "order_total",
    EXISTS (
        SELECT 1 FROM "strategies_strategy" b
         WHERE b."shop_id" = r."shop_id" AND b."max_per_buyer_30d" IS NOT NULL
    ) AS "shop_limits_buyers"
FROM "strategies_aftersalerequest" r
JOIN "strategies_order" o ON o."id" = r."order_id"
JOIN "strategies_shop" s ON s."id" = r."shop_id"
WHERE r."id" = %(request_id)s
{lock_request_and_order}
"""

# ATOM_DISPATCH=postgres (pipeline/dispatch.py): the same read of a request still to decide that
# no other decider holds, claimed by its row lock (SKIP LOCKED on the request only: a sibling
# request's decider holding the order is waited for, as above). PostgreSQL only. By id: the
# request a notification named; oldest fresh: what a missed notification left.
_CLAIMED = 'WHERE r."id" = (\n    SELECT c."id" FROM "strategies_aftersalerequest" c\n{which}\n)'
REQUEST_CLAIM_ID_LOAD = REQUEST_LOAD.replace(
    'WHERE r."id" = %(request_id)s',
    _CLAIMED.replace(
        "{which}",
        """     WHERE c."id" = %(request_id)s AND c."status" = %(received)s
       FOR UPDATE SKIP LOCKED""",
    ),
)
REQUEST_CLAIM_OLDEST_LOAD = REQUEST_LOAD.replace(
    'WHERE r."id" = %(request_id)s',
    _CLAIMED.replace(
        "{which}",
        """     WHERE c."status" = %(received)s AND c."updated_at" > %(fresh_after)s
     ORDER BY c."updated_at"
     LIMIT 1
       FOR UPDATE SKIP LOCKED""",
    ),
)


@dataclass(slots=True, frozen=True)
class LoadedRequest:
    """What deciding one request needs of it, read under its row lock."""

    id: int
    status: str
    shop_id: int
    shop_timezone: str
    aftersale_id: str
    order_id: str  # the platform's order id
    # Any strategy of the shop, in any scenario, limits buyers: then every decision of the shop
    # takes the buyer's lock, so a limited strategy counts approvals made elsewhere.
    shop_limits_buyers: bool
    snapshot: RequestSnapshot

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LoadedRequest:
        order = OrderSnapshot(
            status=row["order_status"],
            paid_at=row["paid_at"],
            shipped_at=row["shipped_at"],
            received_at=row["received_at"],
            tags=row["tags"],
            product_ids=row["product_ids"],
            total=row["order_total"],
        )
        snapshot = RequestSnapshot(
            type=row["type"],
            reason=row["reason"],
            amount=row["amount"],
            applied_at=row["applied_at"],
            risk_flag=row["risk_flag"],
            buyer_id=row["buyer_id"],
            order=order,
        )
        return cls(
            id=row["id"],
            status=row["status"],
            shop_id=row["shop_id"],
            shop_timezone=row["shop_timezone"],
            aftersale_id=row["aftersale_id"],
            order_id=row["order_id"],
            shop_limits_buyers=row["shop_limits_buyers"],
            snapshot=snapshot,
        )

    @property
    def shop(self) -> Shop:
        return Shop(pk=self.shop_id, timezone=self.shop_timezone)


# --- the signed API's shop ----------------------------------------------------------------------


SHOP_BY_CODE = 'SELECT {columns} FROM "strategies_shop" WHERE "code" = %(code)s'


@cache
def _shop_by_code() -> tuple[str, tuple[str, ...]]:
    """The statement, its columns from the model (a new field cannot be left out)."""
    fields = Shop._meta.concrete_fields
    statement = SHOP_BY_CODE.format(columns=", ".join(f'"{f.column}"' for f in fields))
    return statement, tuple(f.attname for f in fields)


def shop_by_code(code: str) -> Shop | None:
    """The shop ``code`` names, the instance ``Shop.objects.filter(code=code).first()`` gives,
    for a fifth of its CPU on PostgreSQL (about 50 against 280 µs: the signed API reads it on
    every request, issue 16). SQLite (the demo) takes the ORM, whose converters it needs."""
    if connection.vendor != "postgresql":
        return Shop.objects.filter(code=code).first()
    statement, names = _shop_by_code()
    with connection.cursor() as cursor:
        cursor.execute(statement, {"code": code})
        row = cursor.fetchone()
    return None if row is None else Shop.from_db(connection.alias, list(names), row)


def request_lock_and_load(*, request_id: int) -> LoadedRequest:
    """The request, its order with the order's product ids and total, and its shop's zone,
    row-locked until the end of the transaction."""
    rows = _fetch(REQUEST_LOAD, {"request_id": request_id})
    if not rows:
        raise AfterSaleRequest.DoesNotExist(f"after-sales request {request_id} does not exist")
    return LoadedRequest.from_row(rows[0])


def request_claim_and_load(
    *, request_id: int | None = None, fresh_after: dt.datetime | None = None
) -> LoadedRequest | None:
    """Request ``request_id`` if it is still ``received`` and no other transaction holds it, or
    else (``fresh_after``) the oldest such request changed after ``fresh_after``; loaded as
    ``request_lock_and_load`` does and row-locked (with its order) until the end of the
    transaction. None when there is none."""
    params: dict[str, Any] = {"received": RequestStatus.RECEIVED}
    if request_id is not None:
        statement, params["request_id"] = REQUEST_CLAIM_ID_LOAD, request_id
    else:
        statement, params["fresh_after"] = REQUEST_CLAIM_OLDEST_LOAD, fresh_after
    rows = _fetch(statement, params)
    return LoadedRequest.from_row(rows[0]) if rows else None


# --- the strategies ------------------------------------------------------------------------------

# A request falls under at most every scenario; the slots it does not use are NULL, which IN
# never matches, so the statement (and its prepared plan) is the same for every request.
SCENARIO_SLOTS = len(SCENARIO_ORDER)
# The statement's columns are named as the snapshot's fields.
_SNAPSHOT_FIELDS = tuple(f.name for f in fields(StrategySnapshot) if f.name != "unreadable")

# Every status: inactive strategies are explained too. The order's approvals are the same on
# every row, read after the order's row lock, so a decider that approved on it a moment ago is
# counted.
STRATEGIES_LOAD = """
SELECT
    st."id", st."name", st."scenario", st."status", st."position",
    st."valid_from", st."valid_until", st."window_start", st."window_end",
    st."covers_shipped", st."shipped_min_days", st."shipped_max_days",
    st."covers_received", st."received_min_days", st."received_max_days",
    st."daily_cap", st."per_request_cap", st."max_hours_since_payment", st."reasons",
    st."risk_control", st."max_per_buyer_30d",
    (SELECT {list_agg}(p."product_id")
       FROM "strategies_strategy_products" sp
       JOIN "strategies_product" p ON p."id" = sp."product_id"
      WHERE sp."strategy_id" = st."id") AS "product_ids",
    (SELECT MAX(h."history_id") FROM "strategies_historicalstrategy" h
      WHERE h."id" = st."id") AS "version",
    l."id" AS "ledger_id", l."consumed", l."cap_refused_at",
    (SELECT SUM(d."amount") FROM "strategies_decision" d
      WHERE d."shop_id" = %(shop_id)s AND d."order_id" = %(order_id)s
        AND d."outcome" = %(approved)s AND d."released_at" IS NULL) AS "order_refunded"
FROM "strategies_strategy" st
LEFT JOIN "strategies_dailyledger" l ON l."strategy_id" = st."id" AND l."day" = %(day)s
WHERE st."shop_id" = %(shop_id)s AND st."archived_at" IS NULL
  AND st."scenario" IN (%(scenario_1)s, %(scenario_2)s, %(scenario_3)s, %(scenario_4)s,
                        %(scenario_5)s)
ORDER BY st."scenario", st."position", st."id"
"""


@dataclass(slots=True, frozen=True)
class LoadedStrategy:
    """A candidate strategy: its snapshot, the history row it is at, and today's ledger."""

    snapshot: StrategySnapshot
    version: int | None
    ledger_id: int | None  # None: no reservation on the day yet
    consumed: Decimal | None
    cap_refused: bool  # the day's ledger already refused a request for the cap

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LoadedStrategy:
        try:
            if UNREADABLE in row:
                raise ValueError("a value of this strategy could not be read")
            snapshot = StrategySnapshot(**{name: row[name] for name in _SNAPSHOT_FIELDS})
        except Exception:  # one bad row never stops its scenario (RELIABILITY.md 28)
            snapshot = unreadable_strategy(row)
        return cls(
            snapshot=snapshot,
            version=row["version"],
            ledger_id=row["ledger_id"],
            consumed=_money(row["consumed"]) if UNREADABLE in row else row["consumed"],
            cap_refused=row["cap_refused_at"] is not None,
        )


def _scenario_params(scenarios: Sequence[str]) -> dict[str, str | None]:
    if len(scenarios) > SCENARIO_SLOTS:
        raise ValueError(f"at most {SCENARIO_SLOTS} scenarios, not {len(scenarios)}")
    padded = [*scenarios, *[None] * (SCENARIO_SLOTS - len(scenarios))]
    return {f"scenario_{i}": s for i, s in enumerate(padded, start=1)}


def strategies_load(
    *, shop_id: int, scenarios: tuple[str, ...], day: dt.date, order_id: str
) -> tuple[list[LoadedStrategy], Decimal]:
    """The shop's strategies of ``scenarios`` by scenario, priority and id, with their products,
    current history id and ledger row of ``day``; and what order ``order_id`` already has
    auto-approved (approvals not released; 0.00 when no strategy is a candidate: then nothing
    can be approved)."""
    if not scenarios:
        return [], Decimal("0.00")
    params = {
        "shop_id": shop_id,
        "order_id": order_id,
        "approved": Outcome.APPROVED.value,
        "day": connection.ops.adapt_datefield_value(day),
        **_scenario_params(scenarios),
    }
    rows = _fetch(STRATEGIES_LOAD, params, tolerant=True)
    refunded = (_money(rows[0]["order_refunded"]) or Decimal("0.00")) if rows else Decimal("0.00")
    return [LoadedStrategy.from_row(row) for row in rows], refunded


# --- the cap -------------------------------------------------------------------------------------

# One statement, an upsert whose UPDATE is conditional: on a conflict PostgreSQL locks the
# existing row and evaluates the WHERE on its latest version (READ COMMITTED), so concurrent
# reservations can never overshoot. The INSERT only happens when the amount alone fits. The
# cap is the strategy's as committed when the statement runs, not the one the matcher read a
# moment before: a merchant who lowers it or switches the strategy off meanwhile is obeyed.
LEDGER_RESERVE = """
INSERT INTO "strategies_dailyledger" ("shop_id", "strategy_id", "day", "consumed", "approved_count")
SELECT %(shop_id)s, %(strategy_id)s, %(day)s, CAST(%(amount)s AS NUMERIC), 1
 WHERE CAST(%(amount)s AS NUMERIC) <= (
       SELECT s."daily_cap" FROM "strategies_strategy" s
        WHERE s."id" = %(strategy_id)s AND s."status" = %(active)s)
ON CONFLICT ("strategy_id", "day") DO UPDATE SET
    "consumed" = "strategies_dailyledger"."consumed" + excluded."consumed",
    "approved_count" = "strategies_dailyledger"."approved_count" + 1
 WHERE "strategies_dailyledger"."consumed" + excluded."consumed" <= (
       SELECT s."daily_cap" FROM "strategies_strategy" s
        WHERE s."id" = %(strategy_id)s AND s."status" = %(active)s)
RETURNING "id" AS "ledger_id", "consumed"
"""


@dataclass(slots=True, frozen=True)
class Reservation:
    ledger_id: int
    consumed: Decimal  # the day's total, this reservation included


def ledger_reserve_on_day(
    *, shop_id: int, strategy_id: int, day: dt.date, amount: Decimal
) -> Reservation | None:
    """Adds ``amount`` to the (strategy, day) ledger if it stays within the strategy's daily
    cap, creating the row when this is the day's first approval; None if full (or the strategy
    is no longer active)."""
    params = {
        "shop_id": shop_id,
        "strategy_id": strategy_id,
        "day": connection.ops.adapt_datefield_value(day),
        "amount": amount,
        "active": StrategyStatus.ACTIVE.value,
    }
    rows = _fetch(LEDGER_RESERVE, params)
    return Reservation(**rows[0]) if rows else None


# --- the buyer -----------------------------------------------------------------------------------

# Transaction-level, so it ends with the decision's transaction (and suits a pooler in
# transaction mode). SQLite serializes writers anyway.
BUYER_LOCK = """
SELECT pg_advisory_xact_lock(%(key)s)
"""


def buyer_lock(*, shop_id: int, buyer_id: str) -> None:
    """Waits for, then holds until COMMIT, the lock of one buyer of the shop (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.blake2b(f"atom:buyer:{shop_id}:{buyer_id}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        _execute(cursor, BUYER_LOCK, {"key": int.from_bytes(digest, "big", signed=True)})


# --- execution -----------------------------------------------------------------------------------

# Only an approval still to be carried out (its request still ``approved``, no lease running).
# The same statement marks the attempt as sent (before it is: a worker that dies from here on
# may have sent it) and promotes an earlier attempt still marked sent, whose worker died
# mid-call, to ambiguous. It returns what the call needs, the request's connected channel (if
# any) and whether an attempt was ever ambiguous: one statement where claim, channel lookup,
# attempt start and the ambiguity read were four (issue 16).
EXECUTION_CLAIM = """
UPDATE "strategies_decision"
   SET "execution_lease_until" = %(lease_until)s,
       "execution_attempts" = "execution_attempts" + 1,
       "execution_ambiguous_at" = CASE
           WHEN "execution_ambiguous_at" IS NULL AND "execution_sent_at" IS NOT NULL
           THEN "execution_sent_at" ELSE "execution_ambiguous_at" END,
       "execution_sent_at" = %(now)s
 WHERE "id" = %(decision_id)s
   AND "outcome" = %(approved)s
   AND "executed_at" IS NULL AND "failed_at" IS NULL
   AND EXISTS (SELECT 1 FROM "strategies_aftersalerequest" r
                WHERE r."id" = "strategies_decision"."request_id"
                  AND r."status" = %(request_approved)s)
   AND ("execution_lease_until" IS NULL OR "execution_lease_until" <= %(now)s)
RETURNING "aftersale_id", "action", "amount", "idempotency_key", "request_id",
    ("execution_ambiguous_at" IS NOT NULL) AS "after_ambiguous",
    (SELECT r."type" FROM "strategies_aftersalerequest" r
      WHERE r."id" = "strategies_decision"."request_id") AS "request_type",
    (SELECT c."id" FROM "strategies_channel" c
      WHERE c."shop_id" = "strategies_decision"."shop_id"
        AND c."platform" IN (%(platform_1)s, %(platform_2)s)) AS "channel_id"
"""


@dataclass(slots=True, frozen=True)
class ClaimedExecution:
    """What the gateway call needs of an approval whose execution lease this caller won; the
    attempt is already marked sent."""

    aftersale_id: str
    action: str
    amount: Decimal
    idempotency_key: uuid.UUID
    request_id: int
    after_ambiguous: bool  # an earlier attempt of this decision was ambiguous
    request_type: str
    channel_id: int | None  # the shop's connected marketplace channel; None: the generic API
    # The lease set when the approval's insert claimed the attempt (``decision_insert_reserving``):
    # only a lease still equal to it is this caller's to give back.
    lease_until: dt.datetime | None = None


def decision_claim_execution(
    *, decision_id: int, now: dt.datetime, lease_until: dt.datetime
) -> ClaimedExecution | None:
    """Takes the execution lease of an approval and marks the attempt sent, in one conditional
    UPDATE; None if another copy holds it or there is nothing to do."""
    ops = connection.ops
    params = {
        "decision_id": decision_id,
        "approved": Outcome.APPROVED.value,
        "request_approved": RequestStatus.APPROVED.value,
        "now": ops.adapt_datetimefield_value(now),
        "lease_until": ops.adapt_datetimefield_value(lease_until),
        **_connected_platforms(),
    }
    rows = _fetch(EXECUTION_CLAIM, params)
    return ClaimedExecution(**rows[0]) if rows else None


# --- intake --------------------------------------------------------------------------------------

ORDER_ITEMS_DELETE = """
DELETE FROM "strategies_orderitem" WHERE "order_id" = %(order_id)s
"""

# Run once per item in one batch (psycopg pipelines an executemany into one round trip): the
# same statement whatever the number of items.
ORDER_ITEM_INSERT = """
INSERT INTO "strategies_orderitem" ("order_id", "product_id", "title", "quantity", "price")
VALUES (%(order_id)s, %(product_id)s, %(title)s, %(quantity)s, %(price)s)
"""


def order_items_replace(*, order_id: int, items: Sequence[OrderItem]) -> None:
    """The order's items become ``items`` (unsaved, of order ``order_id``)."""
    with connection.cursor() as cursor:
        _execute(cursor, ORDER_ITEMS_DELETE, {"order_id": order_id})
        if items:
            cursor.executemany(
                _for_vendor(ORDER_ITEM_INSERT, connection.vendor),
                [_model_params(item) for item in items],
            )


# PostgreSQL: intake in two statements where the ORM path takes five. Not one: every part of a
# statement reads the snapshot taken when it starts, before the upsert waits for a concurrent
# request's lock on the same order, so a DELETE in the same statement would miss the items that
# request committed meanwhile and leave both lists. The first statement takes the order's row
# lock; the second, with a snapshot taken under it, replaces the items.
#
# 1. The order upserted (the latest payload wins; its row lock is held until COMMIT) and the
#    request inserted on it: a retry or a conflict fails here, on the unique (shop,
#    aftersale_id), before any item is written.
INTAKE_ORDER_AND_REQUEST = """
WITH "o" AS (
    INSERT INTO "strategies_order" ({order_columns})
    VALUES ({order_values})
    ON CONFLICT ("shop_id", "order_id") DO UPDATE SET {order_updates}
    RETURNING "id"
)
INSERT INTO "strategies_aftersalerequest" ({request_columns})
SELECT {request_values} FROM "o"
RETURNING "id", "order_id"{notify}
"""

# ATOM_DISPATCH=postgres: the request's NOTIFY in the statement that inserts it, not a round trip
# of its own (issue 16). PostgreSQL delivers it at COMMIT, never for a rollback.
INTAKE_NOTIFY = ', pg_notify(%(notify_channel)s, "id"::text) IS NULL'


# 2. The order's items replaced, and the products not seen before created, in the order given
#    (sorted by the caller: concurrent inserts never deadlock). Arrays, so the statement (and
#    its prepared plan) is the same whatever the number of items.
INTAKE_ITEMS_AND_PRODUCTS = """
WITH "gone" AS (
    DELETE FROM "strategies_orderitem" WHERE "order_id" = %(order_id)s
), "items" AS (
    INSERT INTO "strategies_orderitem" ("order_id", "product_id", "title", "quantity", "price")
    SELECT %(order_id)s, i."product_id", i."title", i."quantity", i."price"
      FROM unnest(CAST(%(item_products)s AS varchar[]), CAST(%(item_titles)s AS varchar[]),
                  CAST(%(item_quantities)s AS integer[]), CAST(%(item_prices)s AS numeric[]))
           WITH ORDINALITY AS i("product_id", "title", "quantity", "price", "n")
     ORDER BY i."n"
)
INSERT INTO "strategies_product" ("shop_id", "product_id", "title")
SELECT %(shop_id)s, p."product_id", p."title"
  FROM unnest(CAST(%(new_products)s AS varchar[]), CAST(%(new_titles)s AS varchar[]))
       WITH ORDINALITY AS p("product_id", "title", "n")
 ORDER BY p."n"
ON CONFLICT DO NOTHING
"""

# The order's columns intake's upsert updates on a conflict (its shop and id identify it), on
# either path: the latest payload wins.
ORDER_UPDATED = ("status", "paid_at", "shipped_at", "received_at", "tags", "updated_at")


def _columns(model: type[Model]) -> list[str]:
    return [str(f.column) for f in model._meta.concrete_fields if not f.primary_key]


@cache
def _intake_order_and_request(notify: bool) -> str:
    """The first statement, its columns from the models (a new field cannot be left out)."""
    order_columns = _columns(Order)
    request_columns = _columns(AfterSaleRequest)
    return INTAKE_ORDER_AND_REQUEST.format(
        order_columns=", ".join(f'"{c}"' for c in order_columns),
        order_values=", ".join(f"%(order__{c})s" for c in order_columns),
        order_updates=", ".join(f'"{c}" = excluded."{c}"' for c in ORDER_UPDATED),
        request_columns=", ".join(f'"{c}"' for c in request_columns),
        request_values=", ".join(
            '"o"."id"' if c == "order_id" else f"%(request__{c})s" for c in request_columns
        ),
        notify=INTAKE_NOTIFY if notify else "",
    )


def intake_store(
    *,
    order: Order,
    request: AfterSaleRequest,
    items: Sequence[OrderItem],
    products: Sequence[Product],
    notify_channel: str | None = None,
) -> None:
    """PostgreSQL only: upserts ``order``, inserts ``request`` on it, replaces the order's items
    by ``items`` and creates the ``products`` not stored yet, in two statements. The unsaved
    ``order`` and ``request`` get their ids (and ``request`` its order's). A known (shop,
    aftersale_id) raises ``IntegrityError`` on ``aftersale_unique_per_shop`` from the first
    statement; the caller's transaction rolls back the order's update with it. With
    ``notify_channel``, the first statement also NOTIFYs it with the request's id (at COMMIT)."""
    params = {f"order__{k}": v for k, v in _model_params(order).items()}
    params.update({f"request__{k}": v for k, v in _model_params(request).items()})
    if notify_channel is not None:
        params["notify_channel"] = notify_channel
    with connection.cursor() as cursor:
        cursor.execute(_intake_order_and_request(notify_channel is not None), params)
        request_id, order_id = cursor.fetchone()[:2]
        cursor.execute(
            INTAKE_ITEMS_AND_PRODUCTS,
            {
                "order_id": order_id,
                "shop_id": order.shop_id,
                "item_products": [i.product_id for i in items],
                "item_titles": [i.title for i in items],
                "item_quantities": [i.quantity for i in items],
                "item_prices": [i.price for i in items],
                "new_products": [p.product_id for p in products],
                "new_titles": [p.title for p in products],
            },
        )
    _saved(order, order_id)
    _saved(request, request_id)
    request.order = order


# --- the ORM's share, called by name by the decision and execution services --------------------


# The decision inserted (every column but the id) and its request moved to the decision's
# status, in one statement: one round trip fewer per decision (issue 16).
DECISION_AND_REQUEST_STATUS = """
WITH "d" AS (
    INSERT INTO "strategies_decision" ({columns})
    VALUES ({values})
    RETURNING "id"
), "r" AS (
    UPDATE "strategies_aftersalerequest"
       SET "status" = %(request_status__)s, "updated_at" = %(request_updated_at__)s
     WHERE "id" = %(request_id)s
)
SELECT "id" FROM "d"
"""

# An approval whose first execution attempt its decider claims in the same statement (its lease
# and attempt columns set on the row inserted): the shop's connected channel, as the execution
# claim returns it.
DECISION_CHANNEL = (
    ', (SELECT c."id" FROM "strategies_channel" c WHERE c."shop_id" = %(shop_id)s'
    ' AND c."platform" IN (%(platform_1)s, %(platform_2)s)) AS "channel_id"'
)


@cache
def _decision_and_request_status() -> str:
    columns = _columns(Decision)
    return DECISION_AND_REQUEST_STATUS.format(
        columns=", ".join(f'"{c}"' for c in columns),
        values=", ".join(f"%({c})s" for c in columns),
    )


# An approval: the reservation on the strategy's day ledger (``LEDGER_RESERVE``), the decision
# with the ledger row's id and its request's status, in one statement: one round trip fewer per
# approval (issue 16). Nothing is inserted or updated when the cap is full: no row comes back,
# and the decider tries the next strategy as after a refused reservation. The ledger's
# parameters are the decision's own columns (shop, strategy, amount), plus the day and status.
RESERVATION_DECISION_AND_REQUEST_STATUS = """
WITH "l" AS ({reserve}), "d" AS (
    INSERT INTO "strategies_decision" ({columns}, "ledger_id")
    SELECT {values}, "l"."ledger_id" FROM "l"
    RETURNING "id"
), "r" AS (
    UPDATE "strategies_aftersalerequest"
       SET "status" = %(request_status__)s, "updated_at" = %(request_updated_at__)s
     WHERE "id" = %(request_id)s AND EXISTS (SELECT 1 FROM "d")
)
SELECT "d"."id", "l"."ledger_id", "l"."consumed"{channel} FROM "d", "l"
"""


@cache
def _reservation_decision_and_request_status(with_channel: bool) -> str:
    columns = [c for c in _columns(Decision) if c != "ledger_id"]
    return RESERVATION_DECISION_AND_REQUEST_STATUS.format(
        reserve=LEDGER_RESERVE.strip(),
        columns=", ".join(f'"{c}"' for c in columns),
        values=", ".join(f"%({c})s" for c in columns),
        channel=DECISION_CHANNEL if with_channel else "",
    )


def _connected_platforms() -> dict[str, str]:
    from strategies.platforms.registry import CONNECTED

    platforms = sorted(CONNECTED)
    if len(platforms) != 2:  # the statements have two slots
        raise ValueError(f"the channel look-up expects 2 connected platforms, not {platforms}")
    return {"platform_1": platforms[0], "platform_2": platforms[1]}


def _saved(instance: Model, pk: int) -> None:
    """Leaves an instance inserted by plain SQL as ``save()`` would: with its id, saved here."""
    instance.pk = pk
    instance._state.adding, instance._state.db = False, connection.alias


def decision_insert(decision: Decision, *, request_status: str) -> Decision:
    """Inserts an unsaved ``decision`` and moves its request to ``request_status`` (updated at
    the decision's time); the request's unique constraint makes a second decision fail."""
    now = decision.decided_at
    if connection.vendor != "postgresql":  # SQLite (the demo): two ORM statements
        decision.save(force_insert=True)
        request_set_status(request_id=decision.request_id, status=request_status, now=now)
        return decision
    params = _decision_params(decision, request_status)
    with connection.cursor() as cursor:
        cursor.execute(_decision_and_request_status(), params)
        _saved(decision, cursor.fetchone()[0])
    return decision


def _decision_params(decision: Decision, request_status: str) -> dict[str, Any]:
    params = _model_params(decision)
    params["request_status__"] = request_status
    params["request_updated_at__"] = connection.ops.adapt_datetimefield_value(decision.decided_at)
    return params


@dataclass(slots=True, frozen=True)
class ReservedApproval:
    reservation: Reservation
    # The first execution attempt, when the approval was inserted with it claimed.
    execution: ClaimedExecution | None


def decision_insert_reserving(
    decision: Decision,
    *,
    day: dt.date,
    request_status: str,
    request_type: str,
    claim_execution: bool,
) -> ReservedApproval | None:
    """Reserves an unsaved approval's amount on its strategy's ledger of ``day``
    (``ledger_reserve_on_day``) and, only if that fits, inserts it with the ledger row and moves
    its request to ``request_status``; None (nothing written) if the cap is full.

    ``claim_execution``: ``decision`` carries its first attempt's lease and start (as
    ``decision_claim_execution`` would set them) and what that claim would return comes back,
    the shop's connected channel included, without its UPDATE."""
    if connection.vendor != "postgresql":  # SQLite (the demo): the reservation, then the insert
        assert decision.strategy_id is not None
        reservation = ledger_reserve_on_day(
            shop_id=decision.shop_id,
            strategy_id=decision.strategy_id,
            day=day,
            amount=decision.amount,
        )
        if reservation is None:
            return None
        decision.ledger_id = reservation.ledger_id
        decision_insert(decision, request_status=request_status)
        channel_id = (
            Channel.objects.filter(
                shop_id=decision.shop_id, platform__in=_connected_platforms().values()
            )
            .values_list("id", flat=True)
            .first()
            if claim_execution
            else None
        )
    else:
        params = _decision_params(decision, request_status)
        del params["ledger_id"]
        params["day"] = connection.ops.adapt_datefield_value(day)
        params["active"] = StrategyStatus.ACTIVE.value
        if claim_execution:
            params.update(_connected_platforms())
        rows = _fetch(_reservation_decision_and_request_status(claim_execution), params)
        if not rows:
            return None
        row = rows[0]
        _saved(decision, row["id"])
        decision.ledger_id = row["ledger_id"]
        reservation = Reservation(ledger_id=row["ledger_id"], consumed=row["consumed"])
        channel_id = row.get("channel_id")
    if not claim_execution:
        return ReservedApproval(reservation, None)
    return ReservedApproval(
        reservation,
        ClaimedExecution(
            aftersale_id=decision.aftersale_id,
            action=decision.action,
            amount=decision.amount,
            idempotency_key=decision.idempotency_key,
            request_id=decision.request_id,
            after_ambiguous=False,
            request_type=request_type,
            channel_id=channel_id,
            lease_until=decision.execution_lease_until,
        ),
    )


def request_set_status(*, request_id: int, status: str, now: dt.datetime) -> None:
    AfterSaleRequest.objects.filter(pk=request_id).update(status=status, updated_at=now)


# The decision (if still open), then its request, in one statement: the order the other
# writers lock them in. The count says whether the decision was recorded by this call.
MARK_EXECUTED = """
WITH d AS (
    UPDATE "strategies_decision"
       SET "executed_at" = %(now)s, "execution_lease_until" = NULL
     WHERE "id" = %(decision_id)s AND "executed_at" IS NULL AND "failed_at" IS NULL
    RETURNING "request_id"
), r AS (
    UPDATE "strategies_aftersalerequest"
       SET "status" = %(executed)s, "updated_at" = %(now)s
      FROM d
     WHERE "strategies_aftersalerequest"."id" = d."request_id"
       AND "strategies_aftersalerequest"."status" = %(approved)s
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM d) AS "recorded", (SELECT COUNT(*) FROM r) AS "moved"
"""


def decision_mark_executed(*, decision_id: int, request_id: int, now: dt.datetime) -> bool:
    """Records the gateway's confirmation once: the decision ``executed_at`` (if still open),
    then its request ``executed``, atomically (on PostgreSQL in one statement). True if this
    call recorded it."""
    if connection.vendor == "postgresql":
        params = {
            "decision_id": decision_id,
            "now": connection.ops.adapt_datetimefield_value(now),
            "executed": RequestStatus.EXECUTED.value,
            "approved": RequestStatus.APPROVED.value,
        }
        return bool(_fetch(MARK_EXECUTED, params)[0]["recorded"])
    # SQLite (the demo) has no data-modifying CTE: two statements in one transaction.
    with transaction.atomic():
        recorded = Decision.objects.filter(
            pk=decision_id, executed_at__isnull=True, failed_at__isnull=True
        ).update(executed_at=now, execution_lease_until=None)
        if not recorded:
            return False
        AfterSaleRequest.objects.filter(pk=request_id, status=RequestStatus.APPROVED).update(
            status=RequestStatus.EXECUTED, updated_at=now
        )
    return True
