"""A stored strategy row the decision loader cannot read (a year-10000 date saved before the
bounds existed, a time of 24:00, a corrupt value): that strategy is skipped and explained
(``strategy_unreadable``), the operator alerted by an ERROR log, and every other strategy of the
scenario is still tried (RELIABILITY.md 28). Without this one row fails every decision of its
scenario, and the sweeper retries them forever."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cache
from typing import Any

from django.db import connection

from strategies.matching import StrategySnapshot
from strategies.models import StrategyStatus

logger = logging.getLogger(__name__)


class Unreadable:
    """What a value psycopg cannot turn into Python loads as (never a valid setting)."""

    def __repr__(self) -> str:
        return "<unreadable>"


def tolerate_unreadable_values(cursor: Any) -> None:
    """Makes ``cursor`` (Django's, on PostgreSQL) load an unreadable timestamp or time as
    ``Unreadable()``: psycopg would otherwise fail the whole fetch on that one value."""
    if connection.vendor != "postgresql":
        return  # SQLite hands back text; the row's own conversion fails instead
    from psycopg import adapters, pq

    raw = cursor.cursor
    for type_name in ("timestamptz", "time"):
        oid = adapters.types[type_name].oid
        usual = raw.adapters.get_loader(oid, pq.Format.TEXT)
        if usual is not None:
            raw.adapters.register_loader(oid, _tolerant(usual))


@cache
def _tolerant(usual: type) -> type:
    """A loader that loads as ``usual`` does, and an unreadable value as ``Unreadable()``
    (``usual`` may be psycopg's C loader, which cannot be subclassed: it is wrapped)."""
    from psycopg import DataError
    from psycopg.adapt import Loader

    class Tolerant(Loader):
        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self.usual = usual(oid, context)

        def load(self, data: Any) -> Any:
            try:
                return self.usual.load(data)
            except DataError:
                return Unreadable()

    return Tolerant


def unreadable_strategy(raw: Mapping[str, Any]) -> StrategySnapshot:
    """The snapshot of a row whose values could not be converted: it never hits."""
    logger.error(
        "strategy %s (%s) could not be read and is skipped by every decision until it is fixed: %r",
        raw.get("id"),
        raw.get("name"),
        dict(raw),
        exc_info=True,
    )
    return StrategySnapshot(
        id=raw["id"],
        name=str(raw.get("name") or ""),
        scenario=str(raw.get("scenario") or ""),
        status=StrategyStatus.INACTIVE,
        position=int(raw.get("position") or 0),
        unreadable=True,
    )
