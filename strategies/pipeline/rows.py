"""The decision service's reads and writes as plain SQL: the hot path of every request.

Profiling ``request_decide`` (bench/decide) showed most of a decision's time in Django's query
compilation and model building, not in PostgreSQL: 12 ORM statements cost ~7 ms of CPU for
~1 ms of database work. Here the same data comes in 2 reads (the request with its order, items
and shop; the candidate strategies with their products, latest history id and today's ledger)
and goes out in 3 writes (the ledger upsert in ``ledgers``, the decision insert, the request's
status), each one round trip with no ORM in between; the execution claims its lease and reads
what the gateway needs in one ``UPDATE ... RETURNING``. Portable to SQLite (the demo): the only
vendor differences are ``FOR UPDATE`` and how a list of product ids is aggregated.
"""

# Every SQL string here is built from model metadata (table and column names) only; values
# always travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model
from django.utils import timezone
from django.utils.dateparse import parse_datetime, parse_time

from strategies.matching import SNAPSHOT_EXTRAS, OrderSnapshot, RequestSnapshot, StrategySnapshot
from strategies.models import (
    AfterSaleRequest,
    DailyLedger,
    Decision,
    Order,
    OrderItem,
    Outcome,
    Product,
    RequestStatus,
    Shop,
    Strategy,
)
from strategies.pipeline.badrows import tolerate_unreadable_values, unreadable_strategy

CENT = Decimal("0.01")
M = TypeVar("M", bound=Model)


# --- values as the two backends return them ------------------------------------------------------


def _aware(value: Any) -> dt.datetime | None:
    """PostgreSQL returns aware datetimes; SQLite's converter returns naive UTC ones."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    if timezone.is_naive(value):
        return value.replace(tzinfo=dt.UTC)
    return value


def _required(value: Any) -> Any:
    assert value is not None, "a NOT NULL column came back NULL"
    return value


def _money(value: Any) -> Decimal | None:
    # SQLite hands NUMERIC columns back as int or float: go through str, never float math.
    return None if value is None else Decimal(str(value)).quantize(CENT)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _time(value: Any) -> dt.time | None:
    if value is None or isinstance(value, dt.time):
        return value
    return parse_time(value)


def _list_of(select: str) -> str:
    """SQL for the list of the single column ``v`` that ``select`` yields."""
    if connection.vendor == "postgresql":
        return f"ARRAY({select})"
    return f"(SELECT json_group_array(v) FROM ({select}))"


def _for_update() -> str:
    # The request (the claim) and its order: deciders of two requests on one order take turns,
    # so what the order already had approved is counted before approving more of it.
    return " FOR UPDATE OF r, o" if connection.features.has_select_for_update_of else ""


# --- the request ---------------------------------------------------------------------------------


class LoadedRequest:
    """What deciding one request needs of it, read under its row lock."""

    __slots__ = (
        "aftersale_id",
        "order_id",
        "pk",
        "shop_id",
        "shop_limits_buyers",
        "snapshot",
        "status",
        "zone_name",
    )

    def __init__(self, row: tuple) -> None:
        (
            self.pk,
            self.status,
            self.shop_id,
            self.zone_name,
            self.aftersale_id,
            buyer_id,
            type_,
            reason,
            amount,
            applied_at,
            risk_flag,
            self.order_id,
            order_status,
            paid_at,
            shipped_at,
            received_at,
            tags,
            product_ids,
            order_total,
            shop_limits_buyers,
        ) = row
        # Any strategy of the shop, in any scenario, limits buyers: then every decision of the
        # shop takes the buyer's lock, so a limited strategy counts approvals made elsewhere.
        self.shop_limits_buyers = bool(shop_limits_buyers)
        self.snapshot = RequestSnapshot(
            type=type_,
            reason=reason,
            amount=_required(_money(amount)),
            applied_at=_required(_aware(applied_at)),
            risk_flag=bool(risk_flag),
            buyer_id=buyer_id,
            order=OrderSnapshot(
                status=order_status,
                paid_at=_required(_aware(paid_at)),
                shipped_at=_aware(shipped_at),
                received_at=_aware(received_at),
                tags=frozenset(_json(tags) or ()),
                product_ids=frozenset(_json(product_ids) or ()),
                total=_money(order_total) or Decimal("0.00"),
            ),
        )

    @property
    def shop(self) -> Shop:
        return Shop(pk=self.shop_id, timezone=self.zone_name)


@cache
def _request_sql(vendor: str) -> str:
    items = _list_of(
        f"SELECT i.product_id AS v FROM {OrderItem._meta.db_table} i WHERE i.order_id = o.id"
    )
    item_table = OrderItem._meta.db_table
    return (
        "SELECT r.id, r.status, r.shop_id, s.timezone, r.aftersale_id, r.buyer_id, r.type, "
        "r.reason, r.amount, r.applied_at, r.risk_flag, o.order_id, o.status, o.paid_at, "
        f"o.shipped_at, o.received_at, o.tags, {items}, "
        f"(SELECT SUM(i.price * i.quantity) FROM {item_table} i WHERE i.order_id = o.id), "
        f"EXISTS (SELECT 1 FROM {Strategy._meta.db_table} b "
        "WHERE b.shop_id = r.shop_id AND b.max_per_buyer_30d IS NOT NULL) "
        f"FROM {AfterSaleRequest._meta.db_table} r "
        f"JOIN {Order._meta.db_table} o ON o.id = r.order_id "
        f"JOIN {Shop._meta.db_table} s ON s.id = r.shop_id "
        f"WHERE r.id = %s{_for_update()}"
    )


def request_lock_and_load(*, request_id: int) -> LoadedRequest:
    """The request, its order with the order's product ids and its shop's zone, row-locked."""
    with connection.cursor() as cursor:
        cursor.execute(_request_sql(connection.vendor), [request_id])
        row = cursor.fetchone()
    if row is None:
        raise AfterSaleRequest.DoesNotExist(f"after-sales request {request_id} does not exist")
    return LoadedRequest(row)


# --- the strategies ------------------------------------------------------------------------------

# The snapshot's fields are the strategy's columns (its products come from their own table).
_STRATEGY_COLUMNS = tuple(
    f.name for f in dataclasses.fields(StrategySnapshot) if f.name not in SNAPSHOT_EXTRAS
)
# How a column's value comes back from either backend, where it is not as the snapshot wants.
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "valid_from": _aware,
    "valid_until": _aware,
    "window_start": _time,
    "window_end": _time,
    "covers_shipped": bool,
    "covers_received": bool,
    "daily_cap": lambda value: _required(_money(value)),
    "per_request_cap": _money,
    "reasons": lambda value: frozenset(_json(value) or ()),
    "risk_control": bool,
}


class LoadedStrategy:
    """A candidate strategy: its snapshot, the history row it is at, and today's ledger."""

    __slots__ = ("cap_refused", "consumed", "ledger_id", "snapshot", "version")

    def __init__(self, row: tuple) -> None:
        n = len(_STRATEGY_COLUMNS)
        raw = dict(zip(_STRATEGY_COLUMNS, row[:n], strict=True))
        self.version, product_ids, self.ledger_id, consumed, cap_refused_at, _ = row[n:]
        self.consumed = _money(consumed)
        self.cap_refused = cap_refused_at is not None
        try:
            values = {k: _CONVERT[k](v) if k in _CONVERT else v for k, v in raw.items()}
            self.snapshot = StrategySnapshot(
                **values, product_ids=frozenset(_json(product_ids) or ())
            )
        except Exception:  # one bad row never stops its scenario (RELIABILITY.md 28)
            self.snapshot = unreadable_strategy(raw)


@cache
def _strategies_sql(vendor: str, scenarios: int) -> str:
    through = Strategy.products.through._meta
    link_strategy = through.get_field("strategy").column
    link_product = through.get_field("product").column
    products = _list_of(
        f"SELECT p.product_id AS v FROM {through.db_table} sp "
        f"JOIN {Product._meta.db_table} p ON p.id = sp.{link_product} "
        f"WHERE sp.{link_strategy} = st.id"
    )
    history = Strategy.history.model._meta.db_table  # type: ignore[attr-defined]
    columns = ", ".join(f"st.{c}" for c in _STRATEGY_COLUMNS)
    placeholders = ", ".join(["%s"] * scenarios)
    return (
        f"SELECT {columns}, "
        f"(SELECT MAX(h.history_id) FROM {history} h WHERE h.id = st.id), {products}, "
        "l.id, l.consumed, l.cap_refused_at, "
        # What the order already has auto-approved (the same on every row; read after the
        # order's row lock, so a decider that approved on it a moment ago is counted).
        f"(SELECT SUM(d.amount) FROM {Decision._meta.db_table} d WHERE d.shop_id = %s "
        "AND d.order_id = %s AND d.outcome = %s AND d.released_at IS NULL) "
        f"FROM {Strategy._meta.db_table} st "
        f"LEFT JOIN {DailyLedger._meta.db_table} l ON l.strategy_id = st.id AND l.day = %s "
        f"WHERE st.shop_id = %s AND st.scenario IN ({placeholders}) AND st.archived_at IS NULL "
        "ORDER BY st.scenario, st.position, st.id"
    )


def strategies_load(
    *, shop_id: int, scenarios: tuple[str, ...], day: dt.date, order_id: str
) -> tuple[list[LoadedStrategy], Decimal]:
    """The shop's strategies of ``scenarios`` (every status: inactive ones are explained too),
    with their products, current history id and ledger row of ``day`` (None if not created);
    and what order ``order_id`` already has auto-approved (approvals not released)."""
    if not scenarios:
        return [], Decimal("0.00")
    with connection.cursor() as cursor:
        tolerate_unreadable_values(cursor)
        cursor.execute(
            _strategies_sql(connection.vendor, len(scenarios)),
            [
                shop_id,
                order_id,
                Outcome.APPROVED.value,
                connection.ops.adapt_datefield_value(day),
                shop_id,
                *scenarios,
            ],
        )
        rows = cursor.fetchall()
    refunded = _money(rows[0][-1]) if rows else None
    return [LoadedStrategy(row) for row in rows], refunded or Decimal("0.00")


def ledger_mark_cap_refused(*, ledger_id: int, now: dt.datetime) -> bool:
    """Marks the day's ledger as having refused a request for its cap; True the first time."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {DailyLedger._meta.db_table} SET cap_refused_at = %s "
            "WHERE id = %s AND cap_refused_at IS NULL",
            [connection.ops.adapt_datetimefield_value(now), ledger_id],
        )
        return cursor.rowcount == 1


# --- the writes ----------------------------------------------------------------------------------


def decision_insert(decision: Decision) -> Decision:
    """Inserts an unsaved ``decision`` in one statement; the request's unique constraint still
    makes a second decision impossible."""
    return row_insert(decision)


def request_set_status(*, request_id: int, status: str, now: dt.datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AfterSaleRequest._meta.db_table} SET status = %s, updated_at = %s "
            "WHERE id = %s",
            [status, connection.ops.adapt_datetimefield_value(now), request_id],
        )


# --- execution ------------------------------------------------------------------------------------


class ClaimedExecution:
    """What the gateway call needs of an approval whose execution lease this caller won."""

    __slots__ = ("action", "aftersale_id", "amount", "idempotency_key", "request_id")

    def __init__(self, row: tuple) -> None:
        self.aftersale_id, self.action, amount, key, self.request_id = row
        self.amount = _required(_money(amount))
        self.idempotency_key = key if isinstance(key, uuid.UUID) else uuid.UUID(str(key))


def decision_claim_execution(
    *, decision_id: int, now: dt.datetime, lease_until: dt.datetime
) -> ClaimedExecution | None:
    """Takes the execution lease of an approval still to be carried out (its request still
    ``approved``, no lease running), in one conditional UPDATE; None if another copy holds it
    or there is nothing to do."""
    ops = connection.ops
    with connection.cursor() as cursor:
        table = Decision._meta.db_table
        cursor.execute(
            f"UPDATE {table} "
            "SET execution_lease_until = %s, execution_attempts = execution_attempts + 1 "
            "WHERE id = %s AND outcome = %s AND executed_at IS NULL AND failed_at IS NULL "
            f"AND EXISTS (SELECT 1 FROM {AfterSaleRequest._meta.db_table} r "
            f"WHERE r.id = {table}.request_id AND r.status = %s) "
            "AND (execution_lease_until IS NULL OR execution_lease_until <= %s) "
            "RETURNING aftersale_id, action, amount, idempotency_key, request_id",
            [
                ops.adapt_datetimefield_value(lease_until),
                decision_id,
                Outcome.APPROVED.value,
                RequestStatus.APPROVED.value,
                ops.adapt_datetimefield_value(now),
            ],
        )
        row = cursor.fetchone()
    return None if row is None else ClaimedExecution(row)


def decision_mark_executed(*, decision_id: int, request_id: int, now: dt.datetime) -> bool:
    """Records the gateway's confirmation once: the decision ``executed_at`` (if still open),
    then its request ``executed``. Call inside a transaction. True if this call recorded it."""
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Decision._meta.db_table} SET executed_at = %s, "
            "execution_lease_until = NULL "
            "WHERE id = %s AND executed_at IS NULL AND failed_at IS NULL",
            [at, decision_id],
        )
        if cursor.rowcount != 1:
            return False
        cursor.execute(
            f"UPDATE {AfterSaleRequest._meta.db_table} SET status = %s, updated_at = %s "
            "WHERE id = %s AND status = %s",
            [RequestStatus.EXECUTED.value, at, request_id, RequestStatus.APPROVED.value],
        )
    return True


# --- single- and multi-row inserts built from model metadata (intake, the decision) -----------


@cache
def _insert_plan(model: type[Model], vendor: str) -> tuple[str, tuple[Field, ...], str]:
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ", fields, row


def _values(instance: Model, fields: Sequence[Field]) -> list[Any]:
    return [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]


def row_insert(instance: M) -> M:
    """Inserts an unsaved ``instance`` in one statement and sets its primary key. Constraints
    hold as for ``save()``; no signals are sent (none are used on these models)."""
    head, fields, row = _insert_plan(type(instance), connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(f"{head}{row} RETURNING id", _values(instance, fields))
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def rows_insert(instances: Sequence[Model], *, on_conflict: str = "") -> None:
    """Inserts ``instances`` (one model) in one multi-row statement; ``on_conflict`` is an
    optional ``ON CONFLICT ...`` clause. Primary keys are not read back."""
    if not instances:
        return
    head, fields, row = _insert_plan(type(instances[0]), connection.vendor)
    params = [value for instance in instances for value in _values(instance, fields)]
    with connection.cursor() as cursor:
        cursor.execute(f"{head}{', '.join([row] * len(instances))} {on_conflict}", params)
