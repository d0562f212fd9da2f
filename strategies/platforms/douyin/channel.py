"""The Douyin channel: push in (``event-sign``), fetch, poll, approve with the version guard, and
tokens.

Approving re-reads ``/afterSale/Detail`` and acts only if the request still waits for the seller
(status 6) with the decided amount and type, then calls ``/afterSale/operate`` with the fresh
``update_time``: a request changed since is refused by the platform rather than refunded. The
answers map to ``ApproveState`` as Kuaishou's do:

- success (``code`` 10000, every item's ``status_code`` 0) → ``EXECUTED``;
- a refusal → read again: agreed → ``DONE_ELSEWHERE`` (``EXECUTED`` after an ambiguous attempt);
  changed but still eligible → act once more with the new ``update_time``; no longer waiting →
  ``SUPERSEDED`` (``UNKNOWN`` after an ambiguous attempt); unchanged → ``FAILED`` (``UNKNOWN``
  after one);
- no answer, a 5xx, a 3xx, garbage, code 20000 → read again: agreed → ``EXECUTED``, else
  ``UNKNOWN``;
- rate limit, authentication, not sent → ``RETRY``.

Operate types: 201 agrees a refund-only request (PLATFORMS.md); 101 agrees a return, with the
shop's return address (``logistics.receiver_address_id``), as the SDK's field notes say type 101
needs the return logistics (docs/platforms/douyin.md: the enum's own page was not readable).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from strategies.models import Action, AfterSaleType
from strategies.platforms.channel import (
    ApproveResult,
    ApproveState,
    Channel,
    Fetched,
    PolledRefund,
    PollResult,
    PushEvent,
    Snapshot,
    TokenGrant,
    from_seconds,
    refusal_blocked,
)
from strategies.platforms.douyin.client import (
    AFTERSALE_DETAIL,
    AFTERSALE_OPERATE,
    MAX_WINDOW,
    Credentials,
    DouyinClient,
    DouyinError,
    ErrorKind,
    token_create,
    token_refresh,
)
from strategies.platforms.douyin.mapping import (
    AWAITING_SELLER,
    SUCCEEDED,
    fetched_from_douyin,
    snapshot_of,
)
from strategies.platforms.douyin.messages import PUSH_ANSWER, push_events

AGREE_REFUND = 201
AGREE_RETURN = 101
# Refuse a refund-only request: 202 (拒绝仅退款) in a public SDK's operate constants beside 201
# (docs/platforms/douyin.md). A return request's refusal (102/112) needs evidence images ATOM
# cannot attach, so it is left to the Douyin console.
REFUSE_REFUND = 202
REFUSED = 27  # after_sale_status 拒绝申请
# What "agreed" looks like after each action: 12 succeeded (or refund_status refunding /
# refunded); after a return agreement 7 (return under way), 11 (shipped back) and on.
AGREED_STATUSES = {
    str(Action.APPROVE_REFUND): frozenset({SUCCEEDED}),
    str(Action.APPROVE_RETURN): frozenset({7, 11, SUCCEEDED}),
}
RATE_LIMIT_BACKOFF = 5.0


class DouyinChannel:
    name: ClassVar[str] = "douyin"
    push_answer: ClassVar[dict[str, Any]] = PUSH_ANSWER
    # Whether a return request can be agreed as refund-only: not documented (docs/platforms/
    # douyin.md), so no; post_shipment_no_return takes only refund-only requests here.
    approves_return_as_refund_only: ClassVar[bool] = False

    def __init__(
        self,
        *,
        credentials: Credentials,
        return_address_id: str = "",
        deadline: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credentials = credentials
        self.return_address_id = return_address_id
        self.deadline = deadline
        self.client = DouyinClient(credentials, deadline=deadline, clock=clock)

    # --- in ---------------------------------------------------------------------------------

    def parse_push(self, raw_body: bytes, headers: Mapping[str, str]) -> list[PushEvent]:
        """The events of one push (``PushRejected`` 401 for a wrong ``event-sign``: store
        nothing); a verification push gives ``[]``: answer ``push_answer`` all the same."""
        return push_events(
            raw_body,
            headers,
            app_key=self.credentials.app_key,
            app_secret=self.credentials.app_secret,
        )

    def fetch(self, aftersale_id: str) -> Fetched:
        detail = self.client.aftersale_detail(aftersale_id)
        order = None
        info = (detail.get("process_info") or {}).get("after_sale_info") or {}
        shop_order_id = (detail.get("order_info") or {}).get("shop_order_id")
        if shop_order_id is not None and info.get("after_sale_type") in (0, 1, 2):
            order = self.client.order_detail(str(shop_order_id))
        return fetched_from_douyin(detail, order)

    def poll(self, *, since: dt.datetime, until: dt.datetime) -> PollResult:
        """Every request updated in ``[since, until]`` by ``/afterSale/List``, windows of at most
        a day, 100 a page, pages from 0 while ``has_more``."""
        found: dict[str, PolledRefund] = {}
        calls = 0
        start = since
        while start < until:
            end = min(start + MAX_WINDOW, until)
            page = 0
            while True:
                data = self.client.aftersale_list(
                    start=int(start.timestamp()), end=int(end.timestamp()), page=page
                )
                calls += 1
                rows = data.get("items")
                for row in rows if isinstance(rows, list) else []:
                    polled = _polled(row)
                    if polled is not None:
                        known = found.get(polled.aftersale_id)
                        if known is None or known.updated_at <= polled.updated_at:
                            found[polled.aftersale_id] = polled
                if not data.get("has_more") or not rows:
                    break
                page += 1
            start = end
        refunds = sorted(found.values(), key=lambda r: (r.updated_at, r.aftersale_id))
        return PollResult(
            refunds=refunds, high_water=refunds[-1].updated_at if refunds else None, calls=calls
        )

    # --- out --------------------------------------------------------------------------------

    def approve(
        self,
        *,
        aftersale_id: str,
        action: str,
        amount: Decimal,
        request_type: str = "",
        after_ambiguous: bool = False,
    ) -> ApproveResult:
        calls: list[str] = []
        agreed = AGREED_STATUSES.get(action)
        if agreed is None:
            return ApproveResult(ApproveState.FAILED, f"unknown action {action!r}", calls=calls)
        if action == Action.APPROVE_RETURN and not self.return_address_id:
            return ApproveResult(
                ApproveState.FAILED,
                "agreeing a Douyin return needs the shop's return address id",
                calls=calls,
            )
        try:
            snap = self._read(aftersale_id, calls)
        except DouyinError as exc:
            return _retry(exc, calls)
        acted_again = False
        while True:
            if snap.status in agreed or (action == Action.APPROVE_REFUND and snap.done):
                state = ApproveState.EXECUTED if after_ambiguous else ApproveState.DONE_ELSEWHERE
                return ApproveResult(
                    state, f"already agreed on Douyin (status {snap.status})", calls=calls
                )
            if snap.status != AWAITING_SELLER:
                state = ApproveState.UNKNOWN if after_ambiguous else ApproveState.SUPERSEDED
                return ApproveResult(
                    state, f"no longer waiting for the seller (status {snap.status})", calls=calls
                )
            refusal = _mismatch(snap, action=action, amount=amount, request_type=request_type)
            if refusal is not None:
                return ApproveResult(refusal[0], refusal[1], calls=calls)
            try:
                self._act(snap, action=action, calls=calls)
                return ApproveResult(ApproveState.EXECUTED, calls=calls)
            except DouyinError as exc:
                if exc.kind in (ErrorKind.NOT_SENT, ErrorKind.RATE_LIMITED, ErrorKind.AUTH):
                    return _retry(exc, calls)
                if exc.kind == ErrorKind.AMBIGUOUS:
                    return self._settle(aftersale_id, agreed, exc.message, calls)
                try:
                    fresh = self._read(aftersale_id, calls)
                except DouyinError as read_exc:
                    return _retry(read_exc, calls)
                if fresh.status in agreed or (action == Action.APPROVE_REFUND and fresh.done):
                    state = (
                        ApproveState.EXECUTED if after_ambiguous else ApproveState.DONE_ELSEWHERE
                    )
                    return ApproveResult(state, exc.message, calls=calls)
                if fresh.status == AWAITING_SELLER and fresh.version != snap.version:
                    if acted_again:
                        return ApproveResult(
                            ApproveState.SUPERSEDED, "the request changed again", calls=calls
                        )
                    acted_again = True
                    snap = fresh
                    continue  # changed: decide again on the fresh data (the loop's checks)
                if fresh.status != AWAITING_SELLER:
                    state = ApproveState.UNKNOWN if after_ambiguous else ApproveState.SUPERSEDED
                    return ApproveResult(
                        state, f"{exc.message} (status {fresh.status})", calls=calls
                    )
                state = ApproveState.UNKNOWN if after_ambiguous else ApproveState.FAILED
                return ApproveResult(state, exc.message, calls=calls)

    def reject(
        self,
        *,
        aftersale_id: str,
        reason: str,
        version: int | None = None,
        after_ambiguous: bool = False,
    ) -> ApproveResult:
        """Refuses a refund-only request still waiting for the seller: ``/afterSale/operate``
        type 202 with the fresh ``update_time`` and ``reason`` (a person's words). ``version`` is
        the ``update_time`` ATOM last stored (what the person saw): a request changed since is
        ``SUPERSEDED``, not refused blind; so is one the platform refuses because it changed on
        the way (read again, never resent); after an attempt of ours that may have gone through
        (``after_ambiguous``) a request found refused is ours. A lost answer is settled by a
        read: refused → ``EXECUTED``, unchanged → ``RETRY`` (the version guard makes the resend
        safe), else ``UNKNOWN``."""
        calls: list[str] = []
        try:
            snap = self._read(aftersale_id, calls)
        except DouyinError as exc:
            return _retry(exc, calls)
        blocked = refusal_blocked(
            platform="Douyin",
            refused=snap.status == REFUSED,
            awaiting_seller=snap.status == AWAITING_SELLER,
            status=snap.status,
            version=version,
            current_version=snap.version,
            after_ambiguous=after_ambiguous,
            calls=calls,
        )
        if blocked is not None:
            return blocked
        if snap.handling != AfterSaleType.REFUND_ONLY:
            return ApproveResult(
                ApproveState.FAILED,
                "refusing a Douyin return request is not confirmed: refuse it in the Douyin "
                "console",
                calls=calls,
            )
        item = {"aftersale_id": snap.aftersale_id, "update_time": snap.version, "reason": reason}
        try:
            calls.append(AFTERSALE_OPERATE)
            data = self.client.aftersale_operate(type_=REFUSE_REFUND, items=[item])
            _items_accepted(data)
        except DouyinError as exc:
            if exc.kind in (ErrorKind.NOT_SENT, ErrorKind.RATE_LIMITED, ErrorKind.AUTH):
                return _retry(exc, calls)
            try:
                fresh = self._read(aftersale_id, calls)
            except DouyinError:
                state = (
                    ApproveState.UNKNOWN if exc.kind == ErrorKind.AMBIGUOUS else ApproveState.RETRY
                )
                return ApproveResult(state, exc.message, calls=calls)
            if fresh.status == REFUSED:
                state = (
                    ApproveState.EXECUTED
                    if exc.kind == ErrorKind.AMBIGUOUS
                    else ApproveState.DONE_ELSEWHERE
                )
                return ApproveResult(state, exc.message, calls=calls)
            unchanged = fresh.status == AWAITING_SELLER and fresh.version == snap.version
            if exc.kind == ErrorKind.AMBIGUOUS:
                state = ApproveState.RETRY if unchanged else ApproveState.UNKNOWN
                return ApproveResult(state, exc.message, calls=calls)
            if unchanged:
                return ApproveResult(ApproveState.FAILED, exc.message, calls=calls)
            return ApproveResult(
                ApproveState.SUPERSEDED,
                f"{exc.message} (status {fresh.status}, version {fresh.version})",
                calls=calls,
            )
        return ApproveResult(ApproveState.EXECUTED, calls=calls)

    def token(self, *, now: dt.datetime | None = None) -> TokenGrant:
        """A token for the shop of a self-built app (``authorization_self``, no refresh token
        needed)."""
        return token_create(credentials=self.credentials, deadline=self.deadline, now=now)

    def refresh(self, *, refresh_token: str, now: dt.datetime | None = None) -> TokenGrant:
        return token_refresh(
            credentials=self.credentials,
            refresh_token=refresh_token,
            deadline=self.deadline,
            now=now,
        )

    # --- helpers ----------------------------------------------------------------------------

    def _read(self, aftersale_id: str, calls: list[str]) -> Snapshot:
        calls.append(AFTERSALE_DETAIL)
        detail = self.client.aftersale_detail(aftersale_id)
        try:
            return snapshot_of(detail)
        except ValueError as exc:
            raise DouyinError(
                f"unreadable detail: {exc}", kind=ErrorKind.AMBIGUOUS, method=AFTERSALE_DETAIL
            ) from exc

    def _act(self, snap: Snapshot, *, action: str, calls: list[str]) -> None:
        item: dict[str, Any] = {"aftersale_id": snap.aftersale_id, "update_time": snap.version}
        type_ = AGREE_REFUND
        if action == Action.APPROVE_RETURN:
            type_ = AGREE_RETURN
            item["logistics"] = {"receiver_address_id": int(self.return_address_id)}
        calls.append(AFTERSALE_OPERATE)
        _items_accepted(self.client.aftersale_operate(type_=type_, items=[item]))

    def _settle(
        self, aftersale_id: str, agreed: frozenset[int], message: str, calls: list[str]
    ) -> ApproveResult:
        try:
            snap = self._read(aftersale_id, calls)
        except DouyinError:
            return ApproveResult(ApproveState.UNKNOWN, message, calls=calls)
        if snap.status in agreed or (SUCCEEDED in agreed and snap.done):
            return ApproveResult(ApproveState.EXECUTED, message, calls=calls)
        return ApproveResult(ApproveState.UNKNOWN, f"{message} (status {snap.status})", calls=calls)


def _items_accepted(data: dict[str, Any]) -> None:
    """An item ``status_code`` other than 0 inside a 10000 answer is a refusal."""
    for result in data.get("items") or []:
        code = result.get("status_code") if isinstance(result, dict) else None
        if code not in (0, None):
            raise DouyinError(
                f"{AFTERSALE_OPERATE} item refused: {code} {result.get('status_msg') or ''}",
                kind=ErrorKind.REFUSED,
                code=code if isinstance(code, int) else 0,
                method=AFTERSALE_OPERATE,
            )


def _mismatch(
    snap: Snapshot, *, action: str, amount: Decimal, request_type: str
) -> tuple[ApproveState, str] | None:
    if action == Action.APPROVE_REFUND and snap.handling != AfterSaleType.REFUND_ONLY:
        if request_type and request_type != snap.handling:
            return ApproveState.SUPERSEDED, f"the type is now {snap.handling or '?'}"
        return ApproveState.FAILED, "Douyin cannot agree a return request as refund-only"
    if action == Action.APPROVE_RETURN and snap.handling != AfterSaleType.RETURN_REFUND:
        return ApproveState.SUPERSEDED, f"the type is now {snap.handling or '?'}"
    if request_type and request_type != snap.handling:
        return ApproveState.SUPERSEDED, f"the type is now {snap.handling}"
    if snap.amount != amount:
        return ApproveState.SUPERSEDED, f"the amount is now {snap.amount}, not {amount}"
    return None


def _retry(exc: DouyinError, calls: list[str]) -> ApproveResult:
    return ApproveResult(
        ApproveState.RETRY,
        exc.message,
        retry_after=RATE_LIMIT_BACKOFF if exc.kind == ErrorKind.RATE_LIMITED else 0.0,
        auth_failed=exc.kind == ErrorKind.AUTH,
        calls=calls,
    )


def _polled(row: Any) -> PolledRefund | None:
    if not isinstance(row, dict):
        return None
    info = row.get("aftersale_info") or {}
    aftersale_id, updated, status = (
        info.get("aftersale_id"),
        info.get("update_time"),
        info.get("aftersale_status"),
    )
    if aftersale_id is None or not isinstance(updated, int) or not isinstance(status, int):
        return None
    order = row.get("order_info") or {}
    return PolledRefund(
        aftersale_id=str(aftersale_id),
        order_id="" if order.get("shop_order_id") is None else str(order["shop_order_id"]),
        status=status,
        updated_at=from_seconds(updated),
        raw=row,
    )


def _conforms(channel: DouyinChannel) -> Channel:
    return channel  # mypy checks here that the class is a Channel
