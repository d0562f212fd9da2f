"""The replay engine: a period of the shop's stored requests through a strategy set, decided as
the live decision service (``strategies.pipeline.decide.request_decide``) would have decided
them, with nothing live touched and nothing published.

What it simulates, as the live decision does:

- **Order**: the requests in the order they were decided (``loaders.requests_stream``), each
  "now" being the moment of its live decision (its arrival, if it never was decided), so the
  ledgers see at each request what the live ones held at that moment.
- **Daily ledger** per strategy, keyed by the shop-local day of "now" (the moment of approval);
  at each local midnight every strategy starts from zero. Windows, validity and day ranges are
  judged on ``applied_at`` by the matcher, as live.
- **Order total**: what the order already had approved: live approvals before the period plus
  the replay's own approvals in it.
- **Per-buyer limit**: the buyer's approvals over the 30 days before "now": live approvals
  before the period (the seed) plus the replay's own, counted only when a strategy the request
  is tried against limits buyers.
- **Releases**: a live approval that later failed gave its amount back at ``released_at``; a
  replayed approval of the same request is assumed to fail the same way at the same moment
  (the platform refused the payment, whichever strategy approved it).
- **Trial** strategies are tried and logged as "would approve", consume nothing and let the
  next strategy decide (the matcher's semantics).
- **Alerts**: the 95% warning and the 100% alert of each active strategy's day, as
  ``notifications`` would raise them (the 100% one also once a request is turned away for the
  cap past 95%, as the live ``_note_cap_refusals`` marks the ledger).

Each request comes out as a ``Replayed`` with its effects (the alerts it raised); ``moment()``
gives the state it was decided in (only valid until the next one is taken).
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import heapq
import itertools
from collections.abc import Iterator, Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo

from strategies.backtest import loaders
from strategies.backtest.matcher import CompiledSet, Probe, Verdict
from strategies.matching import DAILY_CAP_REACHED, StrategySnapshot
from strategies.models import CAP_REACHED_PERCENT, CAP_WARNING_PERCENT, Outcome, StrategyStatus

ZERO = Decimal("0.00")
ACTIVE = str(StrategyStatus.ACTIVE)
APPROVED = str(Outcome.APPROVED)
WARNING = CAP_WARNING_PERCENT
REACHED = CAP_REACHED_PERCENT


@dataclasses.dataclass(frozen=True)
class Period:
    """Whole shop-local days, ``first_day`` to ``last_day`` included."""

    first_day: dt.date
    last_day: dt.date
    zone: ZoneInfo

    @classmethod
    def last_days(cls, *, days: int, zone: ZoneInfo, now: dt.datetime) -> Period:
        """The ``days`` whole local days before today (today is not over yet)."""
        today = now.astimezone(zone).date()
        return cls(today - dt.timedelta(days=days), today - dt.timedelta(days=1), zone)

    @property
    def start(self) -> dt.datetime:
        return midnight(self.first_day, self.zone)

    @property
    def end(self) -> dt.datetime:
        return midnight(self.last_day + dt.timedelta(days=1), self.zone)

    def days(self) -> list[dt.date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + dt.timedelta(days=i) for i in range(count)]


def midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


@dataclasses.dataclass(frozen=True)
class Moment:
    """The state one request was decided in: enough to run ``matching.evaluate`` on it again
    (its explanations, with params and messages) and to show every check's values."""

    now: dt.datetime
    consumed: dict[int, Decimal]
    buyer_approvals: int
    order_refunded: Decimal


class Replayed:
    """One request's outcome in the replay, next to what really happened to it."""

    __slots__ = ("_before", "_probe", "_replay", "day", "events", "scenarios", "stored", "verdict")

    def __init__(
        self,
        replay: Replay,
        stored: loaders.Stored,
        day: dt.date,
        scenarios: tuple[str, ...],
        verdict: Verdict | None,
        probe: Probe | None,
    ) -> None:
        self._replay = replay
        self.stored = stored
        self.day = day
        self.scenarios = scenarios
        self.verdict = verdict
        self._probe = probe
        # (strategy id, 95 or 100): the alerts this request's effects raise.
        self.events: list[tuple[int, int]] = []
        self._before: Decimal | None = None  # the hit's consumption before this approval

    @property
    def skipped(self) -> bool:
        return self.verdict is None

    @property
    def hit(self) -> StrategySnapshot | None:
        return self.verdict.hit if self.verdict is not None else None

    @property
    def baseline_approved(self) -> bool:
        return self.stored.outcome == APPROVED

    @property
    def baseline_strategy_id(self) -> int | None:
        return self.stored.strategy_id if self.baseline_approved else None

    @property
    def changed(self) -> bool:
        """Whether the replay decided otherwise than the live decision (outcome or strategy);
        a request never decided live counts as changed only if the replay approves it."""
        hit = self.hit
        return (hit.id if hit else None) != self.baseline_strategy_id

    def moment(self) -> Moment:
        probe = self._probe
        assert probe is not None, "a skipped request was not decided"
        ids = {s.id for s, *_ in self._replay.compiled.candidates(self.scenarios)}
        consumed = {sid: v for sid, v in probe.consumed.items() if sid in ids}
        hit = self.hit
        if hit is not None:  # as it was before this request's own approval
            if self._before is None:
                consumed.pop(hit.id, None)
            else:
                consumed[hit.id] = self._before
        buyer_approvals = probe._buyer_count
        if buyer_approvals is None:
            # Counted now, after this request's effects: its own approval is not the state it
            # was decided in (it counts in the 30 days and is released, if ever, later).
            buyer_approvals = probe.buyer_count()
            if hit is not None and self._replay.buyers is not None:
                buyer_approvals -= 1
        return Moment(
            now=self.stored.now,
            consumed=consumed,
            buyer_approvals=buyer_approvals,
            order_refunded=probe.order_refunded,
        )


class _BuyerApprovals:
    """One buyer's approvals that may still count, in time order. Counting them at a moment
    (the moments only move on) first drops those older than 30 days, so a regular's thousands
    are not walked again; plain lists, since most buyers have one or two."""

    __slots__ = ("moments", "released")

    def __init__(self) -> None:
        self.moments: list[dt.datetime] = []
        self.released: list[tuple[dt.datetime, dt.datetime]] | None = None  # (at, released_at)

    def add(self, at: dt.datetime, released_at: dt.datetime | None) -> None:
        self.moments.append(at)
        if released_at is not None:
            if self.released is None:
                self.released = []
            self.released.append((at, released_at))

    def count(self, now: dt.datetime) -> int:
        horizon = now - loaders.BUYER_WINDOW
        moments = self.moments
        if moments and moments[0] < horizon:
            del moments[: bisect.bisect_left(moments, horizon)]
        released = self.released
        if not released:
            return len(moments)
        released[:] = [r for r in released if r[0] >= horizon]
        return len(moments) - sum(1 for _at, when in released if when <= now)


class Replay:
    """``for replayed in Replay(...)``: the period's requests one at a time."""

    def __init__(
        self,
        *,
        shop_id: int,
        strategies: Sequence[StrategySnapshot],
        period: Period,
        chunk_size: int = loaders.CHUNK_SIZE,
        shadows: bool | frozenset[str] = True,
    ) -> None:
        self.shop_id = shop_id
        self.period = period
        self.zone = period.zone
        self.compiled = CompiledSet(strategies, zone=period.zone)
        self.chunk_size = chunk_size
        self.shadows = shadows
        self.by_id = {s.id: s for s in strategies}
        # Today's ledgers and alert marks, per strategy.
        self.day = period.first_day
        self.next_midnight = midnight(period.first_day, self.zone)
        self.consumed: dict[int, Decimal] = {}
        self.warned: set[int] = set()
        self.reached: set[int] = set()
        # Releases of replayed approvals still to come: (released_at, seq, day, strategy, amount).
        self.releases: list[tuple[dt.datetime, int, dt.date, int, Decimal]] = []
        self._seq = itertools.count()
        # Approvals that still count: per order (amount, released_at); per buyer the moments of
        # its approvals, and apart the few that were released (at, released_at).
        self.orders: dict[str, list[tuple[Decimal, dt.datetime | None]]] = {}
        self.buyers: dict[str, _BuyerApprovals] | None = None

    # -- seeds ----------------------------------------------------------------------------------

    def _seed(self) -> None:
        start, end = self.period.start, self.period.end
        for order_id, amount, released_at in loaders.order_approvals_before(
            shop_id=self.shop_id, start=start, end=end
        ):
            if released_at is None or released_at > start:
                self.orders.setdefault(order_id, []).append((amount, released_at))
        if self.compiled.limits_buyers:
            self.buyers = {}
            for buyer_id, decided_at, released_at in loaders.buyer_approvals_before(
                shop_id=self.shop_id, start=start, chunk_size=self.chunk_size
            ):
                if released_at is None or released_at > start:
                    self._buyer(buyer_id).add(decided_at, released_at)

    # -- the state at a moment ------------------------------------------------------------------

    def _order_refunded(self, order_id: str, now: dt.datetime) -> Decimal:
        entries = self.orders.get(order_id)
        if not entries:
            return ZERO
        return sum((a for a, gone in entries if gone is None or gone > now), ZERO)

    def _buyer(self, buyer_id: str) -> _BuyerApprovals:
        assert self.buyers is not None
        found = self.buyers.get(buyer_id)
        if found is None:
            found = self.buyers[buyer_id] = _BuyerApprovals()
        return found

    def _buyer_count(self, buyer_id: str, now: dt.datetime) -> int:
        if self.buyers is None:
            return 0
        entries = self.buyers.get(buyer_id)
        return 0 if entries is None else entries.count(now)

    def _advance(self, now: dt.datetime) -> None:
        """Moves the clock to ``now``: a new local day starts every ledger from zero, and the
        releases due by now give their amounts back."""
        if now >= self.next_midnight:
            self.day = now.astimezone(self.zone).date()
            self.next_midnight = midnight(self.day + dt.timedelta(days=1), self.zone)
            self.consumed = {}
            self.warned = set()
            self.reached = set()
        releases = self.releases
        while releases and releases[0][0] <= now:
            _at, _seq, day, sid, amount = heapq.heappop(releases)
            if day == self.day:  # an earlier day's ledger no longer decides anything
                self.consumed[sid] = max(self.consumed.get(sid, ZERO) - amount, ZERO)

    # -- effects ----------------------------------------------------------------------------

    def _apply(self, item: Replayed) -> None:
        verdict = item.verdict
        assert verdict is not None
        stored = item.stored
        now = stored.now
        hit = verdict.hit
        if hit is not None:
            amount = stored.amount
            item._before = self.consumed.get(hit.id)
            old = item._before or ZERO
            new = self.consumed[hit.id] = old + amount
            gone = stored.released_at if item.baseline_approved else None
            self.orders.setdefault(stored.order_id, []).append((amount, gone))
            if self.buyers is not None and item.stored.snapshot is not None:
                self._buyer(item.stored.snapshot.buyer_id).add(now, gone)
            if gone is not None:
                heapq.heappush(self.releases, (gone, next(self._seq), self.day, hit.id, amount))
            cap = hit.daily_cap
            if hit.id not in self.warned and new * 100 >= cap * WARNING:
                self.warned.add(hit.id)
                item.events.append((hit.id, WARNING))
            if hit.id not in self.reached and new * 100 >= cap * REACHED:
                self.reached.add(hit.id)
                item.events.append((hit.id, REACHED))
        for strategy, code in verdict.misses:
            # Turned away for the cap past 95%: the live decision marks the ledger, and the
            # 100% alert is due (approvals seldom add up to the cap exactly).
            if code != DAILY_CAP_REACHED or strategy.id in self.reached:
                continue
            if str(strategy.status) != ACTIVE:
                continue
            used = self.consumed.get(strategy.id, ZERO)
            if used * 100 < strategy.daily_cap * WARNING:
                continue
            self.reached.add(strategy.id)
            if strategy.id not in self.warned:
                self.warned.add(strategy.id)
                item.events.append((strategy.id, WARNING))
            item.events.append((strategy.id, REACHED))

    # -- the loop ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Replayed]:
        self._seed()
        compiled = self.compiled
        for stored in loaders.requests_stream(
            shop_id=self.shop_id,
            start=self.period.start,
            end=self.period.end,
            chunk_size=self.chunk_size,
        ):
            now = stored.now
            self._advance(now)
            request = stored.snapshot
            if request is None:
                yield Replayed(self, stored, self.day, (), None, None)
                continue
            scenarios = compiled.scenarios(request)
            buyer_id = request.buyer_id
            probe = compiled.probe(
                request,
                consumed=self.consumed,
                order_refunded=self._order_refunded(stored.order_id, now),
                buyer_approvals=lambda b=buyer_id, n=now: self._buyer_count(b, n),  # type: ignore[misc]
            )
            verdict = compiled.decide(probe, scenarios, shadows=self.shadows)
            item = Replayed(self, stored, self.day, scenarios, verdict, probe)
            self._apply(item)
            yield item


def replay(
    *,
    shop_id: int,
    strategies: Sequence[StrategySnapshot],
    period: Period,
    chunk_size: int = loaders.CHUNK_SIZE,
) -> Iterator[Replayed]:
    """The period's requests through ``strategies``, one ``Replayed`` at a time."""
    return iter(
        Replay(shop_id=shop_id, strategies=strategies, period=period, chunk_size=chunk_size)
    )
