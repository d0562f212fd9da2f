"""What a marketplace channel (Kuaishou, Douyin; PLATFORMS.md) hands back to the pipeline.

Plain values, no Django models: a channel turns a platform's push into ``PushEvent``\\ s, a fetch
into a ``Fetched`` (the neutral ``AfterSaleIn`` of ``base``, or why it must be reviewed by
hand), a poll into ``PolledRefund``\\ s, and an approval into an ``ApproveResult`` whose
``state`` the execution service records:

- ``EXECUTED``: the platform carried this approval out (now, or an earlier ambiguous attempt did);
- ``DONE_ELSEWHERE``: the platform had already refunded it without us (marked so, not ours);
- ``SUPERSEDED``: the request changed or went away before we acted (nothing moved: release);
- ``FAILED``: refused for good and no attempt was ambiguous (nothing moved: release);
- ``RETRY``: nothing was carried out and a later try may succeed (rate limit, auth, network);
- ``UNKNOWN``: an attempt may have moved money and the platform would not say: keep the
  reservation (status ``unknown``), never ``failed``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from strategies.platforms.base import AfterSaleIn

CENT = Decimal("0.01")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def fen_to_yuan(fen: int) -> Decimal:
    """``990`` → ``Decimal("9.90")``, exactly."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise ValueError(f"an amount in fen must be a whole number, not {fen!r}")
    return (Decimal(fen) / 100).quantize(CENT)


def yuan_to_fen(amount: Decimal) -> int:
    """``Decimal("9.90")`` → ``990``; more than two decimals is a programming error."""
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} has more than two decimals")
    return int(fen)


def from_millis(value: int) -> dt.datetime:
    """A platform time in Unix milliseconds, as an aware UTC datetime (exact, no float)."""
    return EPOCH + dt.timedelta(milliseconds=int(value))


def from_seconds(value: int) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=int(value))


class PushRejected(Exception):
    """The push is not the platform's (bad signature, undecryptable): answer ``status``, store
    nothing."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class PushKind(enum.StrEnum):
    NEW = "new"  # a buyer applied: fetch and decide
    UPDATED = "updated"  # something changed: re-fetch; decide on fresh data or supersede
    CLOSED = "closed"  # the request ended (cancelled, closed): supersede what is pending
    # Agreed or refunded on the platform: ours if our approval was executed, else done
    # elsewhere (mark it so, release what is pending).
    AGREED = "agreed"
    OTHER = "other"  # stored, nothing to do


@dataclass(frozen=True)
class PushEvent:
    """One message of a push. ``event_id`` is the platform's own id (dedupe on it);
    ``merchant`` picks the shop among the channels of one app (Kuaishou ``openId``, Douyin
    ``shop_id``); ``raw`` is the decoded message, to store as it came."""

    event_id: str
    kind: PushKind
    event: str
    aftersale_id: str
    order_id: str
    merchant: str
    occurred_at: dt.datetime | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """What the platform said about a request when it was read, to compare before acting."""

    aftersale_id: str
    status: int
    awaiting_seller: bool
    handling: str  # ATOM's type the platform's handling way maps to ("" if none)
    amount: Decimal
    version: int  # the platform's update time (Douyin's operate guard; Kuaishou's refundVersion)
    done: bool  # refunded or being refunded


# Why a fetched request is reviewed by hand: explanation codes with their params, rendered
# (and translated) where the monitor shows explanations.
MANUAL_NOT_AUTO = "platform_type_not_auto"  # params: platform, kind (exchange, resend, ...)
MANUAL_UNREADABLE = "platform_unreadable"  # params: platform, detail


@dataclass(frozen=True)
class Fetched:
    """A request read from the platform: ``request`` to decide, or ``manual_review`` (an
    explanation code, with ``manual_params``) saying why it is never decided automatically
    (``request`` is then None). ``payload`` is the raw platform data to store with it."""

    aftersale_id: str
    request: AfterSaleIn | None
    manual_review: str
    snapshot: Snapshot
    payload: dict[str, Any]
    manual_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PolledRefund:
    aftersale_id: str
    order_id: str
    status: int
    updated_at: dt.datetime
    raw: dict[str, Any]


@dataclass(frozen=True)
class PollResult:
    refunds: list[PolledRefund]
    # The latest update time seen, for the next poll's window (None: nothing seen).
    high_water: dt.datetime | None
    calls: int


class ApproveState(enum.StrEnum):
    EXECUTED = "executed"
    DONE_ELSEWHERE = "done_elsewhere"
    SUPERSEDED = "superseded"
    FAILED = "failed"
    RETRY = "retry"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ApproveResult:
    state: ApproveState
    message: str = ""
    retry_after: float = 0.0  # for RETRY: the platform asked to slow down
    auth_failed: bool = False  # for RETRY: refresh the token once, then alert
    calls: list[str] = field(default_factory=list)  # the platform methods called, in order


def refusal_blocked(
    *,
    platform: str,
    refused: bool,
    awaiting_seller: bool,
    status: Any,
    version: int | None,
    current_version: int,
    after_ambiguous: bool,
    calls: list[str],
) -> ApproveResult | None:
    """Why a refusal must not be sent on what was just read, or None to go on (both channels'
    ``reject``): refused already (ours after an ambiguous attempt of ours, else elsewhere), no
    longer waiting for the seller, or changed since the person saw ``version``."""
    if refused:
        state = ApproveState.EXECUTED if after_ambiguous else ApproveState.DONE_ELSEWHERE
        return ApproveResult(state, "already refused", calls=calls)
    if not awaiting_seller:
        return ApproveResult(
            ApproveState.SUPERSEDED,
            f"no longer waiting for the seller (status {status})",
            calls=calls,
        )
    if version is not None and current_version != version:
        return ApproveResult(
            ApproveState.SUPERSEDED,
            f"changed on {platform} since it was seen (version {version}, now {current_version})",
            calls=calls,
        )
    return None


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_at: dt.datetime
    refresh_expires_at: dt.datetime | None
    merchant: str = ""  # Kuaishou open_id / Douyin shop_id, when the platform says
    scopes: tuple[str, ...] = ()


class TokenRefused(Exception):
    """The platform refused the refresh for good (``access_denied``, ``refreshToken.discarded``,
    revoked): the merchant must authorise again; alert."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Channel(Protocol):
    """What the pipeline needs of a marketplace channel (``KuaishouChannel``,
    ``DouyinChannel``): the wiring holds one per shop, built from its stored credentials."""

    name: ClassVar[str]
    push_answer: ClassVar[dict[str, Any]]
    approves_return_as_refund_only: ClassVar[bool]

    def parse_push(self, raw_body: bytes, headers: Mapping[str, str]) -> list[PushEvent]: ...

    def fetch(self, aftersale_id: str) -> Fetched: ...

    def poll(self, *, since: dt.datetime, until: dt.datetime) -> PollResult: ...

    def approve(
        self,
        *,
        aftersale_id: str,
        action: str,
        amount: Decimal,
        request_type: str = "",
        after_ambiguous: bool = False,
    ) -> ApproveResult: ...

    def reject(
        self,
        *,
        aftersale_id: str,
        reason: str,
        version: int | None = None,
        after_ambiguous: bool = False,
    ) -> ApproveResult: ...

    def refresh(self, *, refresh_token: str, now: dt.datetime | None = None) -> TokenGrant: ...
