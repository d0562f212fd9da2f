"""The seam every channel plugs into: a platform-neutral request in, an approval out.

A channel (``generic`` today; Kuaishou and Douyin per PLATFORMS.md) turns its platform's
messages into an ``AfterSaleIn`` and hands it to ``strategies.pipeline.intake.request_receive``;
the execution service carries a decision out through the channel's ``Gateway``, whose
``approve()`` returns once the platform confirmed (or already had it) and raises
``GatewayError`` otherwise: ``permanent=False`` for what a retry may fix, ``permanent=True`` for
a refusal, and ``ambiguous=True`` when the platform may have approved all the same (the call
timed out or lost its connection after sending). ``approved()`` asks the platform whether it
approved a request: True, False, or None when its answer says neither.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar


@dataclass(frozen=True)
class ItemIn:
    product_id: str
    title: str
    quantity: int
    price: Decimal


@dataclass(frozen=True)
class OrderIn:
    order_id: str
    status: str
    paid_at: dt.datetime
    shipped_at: dt.datetime | None
    received_at: dt.datetime | None
    tags: list[str]
    items: list[ItemIn]

    @property
    def total(self) -> Decimal:
        return sum((item.price * item.quantity for item in self.items), Decimal("0.00"))


@dataclass(frozen=True)
class AfterSaleIn:
    aftersale_id: str
    buyer_id: str
    type: str
    reason: str
    amount: Decimal
    applied_at: dt.datetime
    risk_flag: bool
    order: OrderIn
    # The platform's deadline for the merchant's answer, where it has one (Kuaishou
    # expireTime, Douyin status_deadline): shown with a countdown in the review queue.
    deadline: dt.datetime | None = None


class GatewayError(Exception):
    def __init__(self, message: str, *, permanent: bool, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        # The request may have reached the platform and been carried out: a later refusal of
        # the same decision is not final until the platform says it did not approve.
        self.ambiguous = ambiguous


class Gateway:
    name: ClassVar[str] = ""

    def approve(
        self,
        *,
        aftersale_id: str,
        action: str,
        amount: Decimal,
        idempotency_key: uuid.UUID,
        deadline: float | None = None,
    ) -> None:
        """Asks the platform to carry out an approval. ``deadline`` (``time.monotonic()``)
        ends the call at the latest then; None: the gateway's own timeout from now."""
        raise NotImplementedError

    def reject(
        self,
        *,
        aftersale_id: str,
        reason: str,
        idempotency_key: uuid.UUID,
        deadline: float | None = None,
    ) -> None:
        """Asks the platform to refuse a request with ``reason`` (a person's review). Returns
        once refused; raises ``GatewayError`` as ``approve()`` does."""
        raise NotImplementedError

    def approved(self, *, aftersale_id: str, deadline: float | None = None) -> bool | None:
        """Whether the platform approved ``aftersale_id``: None when it does not say (any
        other answer, or none in time). Never raises."""
        raise NotImplementedError
