"""What a replay reads: the period's requests streamed from PostgreSQL in the order they were
decided, the approvals before the period that the per-buyer and order-total rules still see,
and the strategy set as snapshots (through the ORM).

- **Streamed**: two server-side cursors, read ``chunk_size`` rows at a time and merged in
  Python: the decisions of the period (the decision log's shop index gives them in order) and
  the few requests never decided (the in-flight partial index). In a worker each is read
  ahead by a thread on its own connection (``_read_ahead``), so PostgreSQL's work overlaps
  the replay's; the run's own connection stays free for its progress updates.
- **Order state at arrival**: from the stored payload's ``order`` (API.md's shape: status,
  times, tags, items), which is what the live decision saw on the order row at that moment.
  A payload without one (another channel's message) falls back to the order row's latest state,
  and the row says so (``from_payload``).
- SQL here, not the ORM: the replay reads every request of a period, and Django's model
  building costs more than PostgreSQL's work (as in ``strategies.pipeline.rows``).
"""

# Every SQL string here is built from model metadata (table and column names) only; values
# always travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import itertools
import json
import queue
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import connection, transaction
from django.db.models import OuterRef, Prefetch, Subquery

from strategies.matching import OrderSnapshot, RequestSnapshot, StrategySnapshot
from strategies.models import (
    AfterSaleRequest,
    Decision,
    Order,
    OrderItem,
    Outcome,
    Product,
    RequestStatus,
    Shop,
    Strategy,
)

ZERO = Decimal("0.00")
CHUNK_SIZE = 2000
READ_AHEAD = 4  # chunks a reader thread may hold ready
BUYER_WINDOW = dt.timedelta(days=30)  # as strategies.pipeline.decide counts approvals


class Stored:
    """One request of the period as it was stored, with its live decision (if any)."""

    __slots__ = (
        "aftersale_id",
        "amount",
        "decided_at",
        "decision_id",
        "from_payload",
        "now",
        "order_id",
        "outcome",
        "released_at",
        "request_id",
        "snapshot",
        "status",
        "strategy_id",
    )

    def __init__(self, row: tuple[Any, ...]) -> None:
        (
            self.request_id,
            self.decision_id,
            self.decided_at,
            received_at,
            self.status,
            self.aftersale_id,
            buyer_id,
            type_,
            reason,
            amount,
            applied_at,
            risk_flag,
            self.outcome,
            self.strategy_id,
            self.released_at,
            self.from_payload,
            order_id,
            order_status,
            paid_at,
            shipped_at,
            received,
            tags,
            product_ids,
            total,
        ) = row
        # "Now" of the live decision: when it was decided (the ledger day is that moment's).
        self.now: dt.datetime = self.decided_at or received_at
        self.amount: Decimal = amount
        self.order_id: str = order_id or ""
        self.snapshot: RequestSnapshot | None = None
        paid_at, shipped_at, received = _iso(paid_at), _iso(shipped_at), _iso(received)
        if order_status is None or paid_at is None:
            return  # nothing to replay it with (counted as skipped)
        self.snapshot = RequestSnapshot(
            type=type_,
            reason=reason,
            amount=amount,
            applied_at=applied_at,
            risk_flag=bool(risk_flag),
            buyer_id=buyer_id,
            order=OrderSnapshot(
                status=order_status,
                paid_at=paid_at,
                shipped_at=shipped_at,
                received_at=received,
                tags=_tags(tags),
                product_ids=frozenset(product_ids or ()),
                # As the live loader reads it: the items' total, 0.00 for none.
                total=total if total is not None else ZERO,
            ),
        )


def _tags(text: str | None) -> frozenset[str]:
    if not text or text == "[]":
        return frozenset()
    return frozenset(str(t) for t in json.loads(text))


def _iso(value: str | None) -> dt.datetime | None:
    """A payload time as intake parsed it (API.md: ISO 8601 with an offset); the order row's
    come as PostgreSQL's text of a timestamptz, which reads the same way."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@cache
def _stream_sql(decided: bool | None) -> str:
    """The stream's statement: the period's decisions (True), its never-decided requests
    (False), or one request by id with its decision if any (None: a trace)."""
    r, d = AfterSaleRequest._meta.db_table, Decision._meta.db_table
    o, i = Order._meta.db_table, OrderItem._meta.db_table
    money = r"'^[0-9]{1,12}(\.[0-9]{1,2})?$'"
    # The order block: the payload's when it has API.md's (the common case), else built from
    # the order row and its items in the same shape (a subquery run only for those rows).
    ok = (
        "COALESCE(jsonb_typeof(r.payload->'order') = 'object' "
        "AND jsonb_typeof(r.payload->'order'->'paid_at') = 'string' "
        "AND jsonb_typeof(r.payload->'order'->'status') = 'string', FALSE)"
    )
    from_row = (
        "(SELECT jsonb_build_object('order_id', o.order_id, 'status', o.status, "
        "'paid_at', o.paid_at, 'shipped_at', o.shipped_at, 'received_at', o.received_at, "
        "'tags', o.tags, 'items', COALESCE((SELECT jsonb_agg(jsonb_build_object("
        "'product_id', it.product_id, 'quantity', it.quantity, 'price', it.price::text)) "
        f"FROM {i} it WHERE it.order_id = o.id), '[]')) FROM {o} o WHERE o.id = r.order_id)"
    )
    block = (
        f"CROSS JOIN LATERAL (SELECT {ok} AS ok) k "
        # OFFSET 0: computed once per row, not inlined into every use below.
        f"CROSS JOIN LATERAL (SELECT CASE WHEN k.ok THEN r.payload->'order' ELSE {from_row} END "
        "AS o OFFSET 0) j"
    )
    items = "CASE WHEN jsonb_typeof(j.o->'items') = 'array' THEN j.o->'items' ELSE '[]' END"
    tags = "CASE WHEN jsonb_typeof(j.o->'tags') = 'array' THEN j.o->'tags' ELSE '[]' END"
    columns = (
        "r.id, d.id, d.decided_at, r.received_at, r.status, r.aftersale_id, r.buyer_id, "
        "r.type, r.reason, r.amount, r.applied_at, r.risk_flag, d.outcome, d.strategy_id, "
        "d.released_at, k.ok, j.o->>'order_id', j.o->>'status', "
        # Times are parsed in Python, as intake parsed the payload's.
        "j.o->>'paid_at', j.o->>'shipped_at', j.o->>'received_at', "
        # Tags are few and mostly none: their JSON text, read in Python.
        f"({tags})::text, "
        "p.products, p.total"
    )
    products = (
        "CROSS JOIN LATERAL (SELECT array_agg(x->>'product_id') AS products, "
        "SUM(CASE WHEN x->>'price' ~ " + money + " AND jsonb_typeof(x->'quantity') = 'number' "
        "THEN (x->>'price')::numeric * (x->>'quantity')::numeric END) AS total "
        f"FROM jsonb_array_elements({items}) x) p"
    )
    if decided is None:
        return (
            f"SELECT {columns} FROM {r} r LEFT JOIN {d} d ON d.request_id = r.id "
            f"{block} {products} WHERE r.id = %(request_id)s AND r.shop_id = %(shop_id)s"
        )
    if decided:
        return (
            f"SELECT {columns} FROM {d} d JOIN {r} r ON r.id = d.request_id {block} {products} "
            "WHERE d.shop_id = %(shop_id)s AND d.decided_at >= %(start)s "
            "AND d.decided_at < %(end)s ORDER BY d.decided_at, d.id"
        )
    return (
        f"SELECT {columns} FROM {r} r LEFT JOIN {d} d ON FALSE {block} {products} "
        "WHERE r.status = %(received)s AND r.shop_id = %(shop_id)s "
        "AND r.received_at >= %(start)s AND r.received_at < %(end)s "
        "ORDER BY r.received_at, r.id"
    )


_cursor_names = itertools.count(1)


def _chunks(sql: str, params: dict[str, Any], chunk_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``sql`` from a server-side cursor, ``chunk_size`` at a time.

    A binary cursor on the psycopg connection itself: its C loaders read timestamps and
    numerics several times faster than the text ones Django registers. JIT compilation is off
    for it: the order-row fallback makes the planner's cost estimate high enough to compile,
    which costs more than the whole query (and never pays off for these statements).
    """
    connection.ensure_connection()
    raw = connection.connection
    in_transaction = not connection.get_autocommit()
    with connection.cursor() as setting:
        setting.execute("SET LOCAL jit = off" if in_transaction else "SET jit = off")
    name = f"atom_backtest_{next(_cursor_names)}"
    try:
        with raw.cursor(name=name, binary=True, withhold=not in_transaction) as cursor:
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(chunk_size):
                yield rows
    finally:
        if not in_transaction and connection.connection is raw and not raw.closed:
            with connection.cursor() as setting:
                setting.execute("RESET jit")


def _rows(sql: str, params: dict[str, Any], chunk_size: int) -> Iterator[tuple[Any, ...]]:
    for rows in _chunks(sql, params, chunk_size):
        yield from rows


_END = object()


def _read_ahead(sql: str, params: dict[str, Any], chunk_size: int) -> Iterator[tuple[Any, ...]]:
    """``_rows``, read ahead by a thread on a connection of its own, inside one transaction
    (a plain cursor there streams: PostgreSQL computes the next chunk while this process
    replays the last, on the other core), at most ``READ_AHEAD`` chunks ahead.

    Inside a transaction (tests) the rows are read here: another connection would not see
    what this one has not committed.
    """
    if not connection.get_autocommit():
        yield from _rows(sql, params, chunk_size)
        return
    chunks: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            with transaction.atomic():
                for rows in _chunks(sql, params, chunk_size):
                    if not put(rows):
                        return
            put(_END)
        except BaseException as exc:  # handed to the reader of the rows
            put(exc)
        finally:
            connection.close()  # this thread's own

    reader = threading.Thread(target=read, name="backtest-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = chunks.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        reader.join(timeout=30)


def requests_stream(
    *, shop_id: int, start: dt.datetime, end: dt.datetime, chunk_size: int = CHUNK_SIZE
) -> Iterator[Stored]:
    """The requests decided in ``[start, end)`` and those received then but never decided,
    in the order of their moment (decided_at, else received_at), one at a time."""
    params = {
        "shop_id": shop_id,
        "start": start,
        "end": end,
        "received": RequestStatus.RECEIVED.value,
    }
    decided = (Stored(row) for row in _read_ahead(_stream_sql(True), params, chunk_size))
    waiting = (Stored(row) for row in _read_ahead(_stream_sql(False), params, chunk_size))
    return heapq.merge(decided, waiting, key=lambda s: s.now)


def request_stored(*, shop_id: int, request_id: int) -> Stored | None:
    """One stored request as the stream reads it (for a trace)."""
    params = {"shop_id": shop_id, "request_id": request_id}
    rows = list(_rows(_stream_sql(None), params, 1))
    return Stored(rows[0]) if rows else None


def requests_count(*, shop_id: int, start: dt.datetime, end: dt.datetime) -> int:
    """How many requests ``requests_stream`` yields (for the progress bar)."""
    decided = Decision.objects.filter(shop_id=shop_id, decided_at__gte=start, decided_at__lt=end)
    waiting = AfterSaleRequest.objects.filter(
        shop_id=shop_id,
        status=RequestStatus.RECEIVED,
        received_at__gte=start,
        received_at__lt=end,
    )
    return decided.count() + waiting.count()


@cache
def _buyer_seed_sql() -> str:
    return (
        f"SELECT d.buyer_id, d.decided_at, d.released_at FROM {Decision._meta.db_table} d "
        "WHERE d.shop_id = %(shop_id)s AND d.outcome = %(approved)s "
        "AND d.decided_at >= %(since)s AND d.decided_at < %(start)s "
        "ORDER BY d.decided_at, d.id"
    )


def buyer_approvals_before(
    *, shop_id: int, start: dt.datetime, chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[str, dt.datetime, dt.datetime | None]]:
    """The live approvals of the 30 days before ``start``: (buyer, decided_at, released_at)."""
    params = {
        "shop_id": shop_id,
        "approved": Outcome.APPROVED.value,
        "since": start - BUYER_WINDOW,
        "start": start,
    }
    yield from _rows(_buyer_seed_sql(), params, chunk_size)  # type: ignore[misc]


@cache
def _order_seed_sql() -> str:
    r, d = AfterSaleRequest._meta.db_table, Decision._meta.db_table
    o = Order._meta.db_table
    return (
        f"SELECT d.order_id, d.amount, d.released_at FROM {d} d "
        "WHERE d.shop_id = %(shop_id)s AND d.outcome = %(approved)s AND d.decided_at < %(start)s "
        "AND d.order_id IN ("
        f"SELECT p.order_id FROM {d} p WHERE p.shop_id = %(shop_id)s "
        "AND p.decided_at >= %(start)s AND p.decided_at < %(end)s "
        f"UNION SELECT o.order_id FROM {r} q JOIN {o} o ON o.id = q.order_id "
        "WHERE q.status = %(received)s AND q.shop_id = %(shop_id)s "
        "AND q.received_at >= %(start)s AND q.received_at < %(end)s)"
    )


def order_approvals_before(
    *, shop_id: int, start: dt.datetime, end: dt.datetime
) -> Iterator[tuple[str, Decimal, dt.datetime | None]]:
    """The live approvals before ``start`` on the orders of the period's requests (the
    order-total rule counts them): (order id, amount, released_at)."""
    params = {
        "shop_id": shop_id,
        "approved": Outcome.APPROVED.value,
        "received": RequestStatus.RECEIVED.value,
        "start": start,
        "end": end,
    }
    yield from _rows(_order_seed_sql(), params, CHUNK_SIZE)  # type: ignore[misc]


# --- the strategy set (ORM) ----------------------------------------------------------------

# The unreadable flag is the live loader's (a row it could not read); a stored strategy is read.
_FIELDS = tuple(f for f in dataclasses.fields(StrategySnapshot) if f.name != "unreadable")


def snapshot_of(strategy: Strategy) -> StrategySnapshot:
    """The matcher's snapshot of a stored (or unsaved) strategy, field by field; products come
    from ``strategy.atom_products`` when set (an unsaved form's choice), else its relation."""
    values: dict[str, Any] = {}
    for f in _FIELDS:
        if f.name == "id":
            values["id"] = strategy.pk
        elif f.name == "product_ids":
            chosen = getattr(strategy, "atom_products", None)
            products = chosen if chosen is not None else strategy.products.all()
            values["product_ids"] = frozenset(p.product_id for p in products)
        else:
            value = getattr(strategy, f.name)
            if isinstance(f.default, frozenset):
                value = frozenset(value or ())
            elif isinstance(f.default, Decimal) or f.name.endswith("_cap"):
                value = None if value is None else Decimal(value)
            values[f.name] = value
    return StrategySnapshot(**values)


@dataclasses.dataclass(frozen=True)
class Member:
    """A strategy of the replayed set: its snapshot and the history row it is at (None: an
    unsaved change)."""

    snapshot: StrategySnapshot
    version: int | None


def strategy_set(*, shop: Shop) -> list[Member]:
    """The shop's strategies as the live matcher sees them now, each with its version."""
    history = Strategy.history.model  # type: ignore[attr-defined]
    latest = (
        history.objects.filter(id=OuterRef("pk")).order_by("-history_id").values("history_id")[:1]
    )
    rows = (
        Strategy.objects.filter(shop=shop)
        .annotate(atom_version=Subquery(latest))
        .prefetch_related(Prefetch("products", queryset=Product.objects.only("product_id")))
        .order_by("scenario", "position", "id")
    )
    return [Member(snapshot=snapshot_of(s), version=s.atom_version) for s in rows]


def strategy_changes(
    *, shop: Shop, start: dt.datetime, end: dt.datetime, ids: Sequence[int]
) -> list[Any]:
    """History rows of the given strategies recorded inside the period: the live decisions
    before such a change were made by another version than the one replayed."""
    history = Strategy.history.model  # type: ignore[attr-defined]
    return list(
        history.objects.filter(
            shop=shop, id__in=list(ids), history_date__gte=start, history_date__lt=end
        )
        .select_related("history_user")
        .order_by("history_date", "history_id")
    )
