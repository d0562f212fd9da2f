"""The Kuaishou channel: what the pipeline calls (push in, fetch, poll, approve, reject, refresh).

No Django models here: the caller gives the credentials and stores what comes back.

Approving (PLATFORMS.md "Decisions out") re-reads the refund first and acts only if it still
waits for the seller with the amount and handling way that were decided; the approve call echoes
that fresh read. The platform's answers map to ``ApproveState`` (``platforms.channel``):

- success → ``EXECUTED``;
- 300013 (buyer cancelled) → ``SUPERSEDED``;
- 300014 / 300017 (the refund changed) → read again once, act again if still eligible, else
  ``SUPERSEDED``;
- 300010 / 300018 (status no longer allows it) → read again: agreed → ``DONE_ELSEWHERE`` (or
  ``EXECUTED`` after an ambiguous attempt), else ``SUPERSEDED`` (``UNKNOWN`` after one);
- no answer, a 5xx, a 3xx, garbage → read again: agreed → ``EXECUTED``, else ``UNKNOWN``;
- rate limit, authentication, not sent → ``RETRY`` (nothing happened);
- any other refusal → ``FAILED``, or ``UNKNOWN`` after an ambiguous attempt.

``after_ambiguous=True`` says an earlier attempt of this same decision may have gone through (the
pipeline remembers it; a ``RETRY`` never clears it): a refund already agreed is then ours.
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
    from_millis,
    refusal_blocked,
    yuan_to_fen,
)
from strategies.platforms.kuaishou.client import (
    MAX_WINDOW,
    NO_MORE,
    REFUND_APPROVE,
    REFUND_DETAIL,
    REFUND_REJECT,
    REJECT_REASONS,
    RETURN_APPROVE,
    Credentials,
    ErrorKind,
    KuaishouClient,
    KuaishouError,
    token_refresh,
)
from strategies.platforms.kuaishou.mapping import (
    REFUND_ONLY_WAY,
    fetched_from_kuaishou,
    snapshot_of,
)
from strategies.platforms.kuaishou.messages import PUSH_ANSWER, envelope_parse, events_from_envelope

BUYER_CANCELLED = "300013"
CHANGED = frozenset({"300014", "300017"})
STATUS_REFUSED = frozenset({"300010", "300018"})
SELLER_REFUSED = 12  # the refund's status once the seller refused it

# What "agreed" looks like after each action: a refund-only approval moves the refund to 50
# (being paid out) then 60 (refunded); a return approval to 30 (waiting for the buyer's parcel)
# and on.
AGREED_AFTER = {
    str(Action.APPROVE_REFUND): frozenset({50, 60}),
    str(Action.APPROVE_RETURN): frozenset({30, 40, 50, 60}),
}
# A rate-limited call is retried after at least this long (the platform gives no hint).
RATE_LIMIT_BACKOFF = 5.0


class KuaishouChannel:
    name: ClassVar[str] = "kuaishou"
    push_answer: ClassVar[dict[str, Any]] = PUSH_ANSWER
    # Whether a return request can be approved as refund-only (post_shipment_no_return): not
    # documented for Kuaishou, so no (docs/platforms/kuaishou.md); that scenario takes only
    # refund-only requests on Kuaishou shops.
    approves_return_as_refund_only: ClassVar[bool] = False

    def __init__(
        self,
        *,
        credentials: Credentials,
        message_key: str = "",
        return_address_id: str = "",
        deadline: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credentials = credentials
        self.message_key = message_key
        self.return_address_id = return_address_id
        self.deadline = deadline
        self.client = KuaishouClient(credentials, deadline=deadline, clock=clock)

    # --- in ---------------------------------------------------------------------------------

    def parse_push(self, raw_body: bytes, headers: Mapping[str, str]) -> list[PushEvent]:
        """The events of one push; ``PushRejected(400)`` if it does not decrypt with this app's
        message key (answer 400, store nothing). A heartbeat gives ``[]``: answer
        ``push_answer`` all the same."""
        return events_from_envelope(envelope_parse(raw_body, message_key=self.message_key))

    def fetch(self, aftersale_id: str) -> Fetched:
        """The refund and its order, mapped. Raises ``KuaishouError`` (retry the fetch)."""
        refund = self.client.refund_detail(aftersale_id)
        order = None
        way = refund.get("handlingWay")
        if refund.get("oid") is not None and way in (1, REFUND_ONLY_WAY):
            order = self.client.order_detail(str(refund["oid"]))
        return fetched_from_kuaishou(refund, order)

    def poll(self, *, since: dt.datetime, until: dt.datetime) -> PollResult:
        """Every refund updated in ``[since, until]``, by update time, in windows of at most one
        day, 100 a page, following ``pcursor`` to ``"nomore"``. Raises ``KuaishouError``."""
        found: dict[str, PolledRefund] = {}
        calls = 0
        start = since
        while start < until:
            end = min(start + MAX_WINDOW, until)
            pcursor = ""
            while True:
                page = self.client.refund_list(
                    begin_ms=_millis(start), end_ms=_millis(end), pcursor=pcursor
                )
                calls += 1
                rows = page.get("refundOrderInfoList") or page.get("dataList") or []
                for row in rows if isinstance(rows, list) else []:
                    polled = _polled(row)
                    if polled is not None:
                        known = found.get(polled.aftersale_id)
                        if known is None or known.updated_at <= polled.updated_at:
                            found[polled.aftersale_id] = polled
                following = str(page.get("pcursor") or NO_MORE)
                # "nomore" ends the window; a cursor that does not move would loop forever.
                if following in (NO_MORE, pcursor):
                    break
                pcursor = following
            start = end
        refunds = sorted(found.values(), key=lambda r: (r.updated_at, r.aftersale_id))
        high_water = refunds[-1].updated_at if refunds else None
        return PollResult(refunds=refunds, high_water=high_water, calls=calls)

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
        """Carries out an approval of ``amount`` (``action`` ``approve_refund`` or
        ``approve_return``) decided on a request of ``request_type``; see the module docstring
        for what each answer means."""
        calls: list[str] = []
        fen = yuan_to_fen(amount)
        agreed = AGREED_AFTER.get(action)
        if agreed is None:
            return ApproveResult(ApproveState.FAILED, f"unknown action {action!r}", calls=calls)
        try:
            snap = self._read(aftersale_id, calls)
        except KuaishouError as exc:
            return _retry(exc, calls)
        rechecked = False
        while True:
            if snap.status in agreed:
                state = ApproveState.EXECUTED if after_ambiguous else ApproveState.DONE_ELSEWHERE
                return ApproveResult(
                    state, f"already agreed on Kuaishou (status {snap.status})", calls=calls
                )
            if not snap.awaiting_seller:
                state = ApproveState.UNKNOWN if after_ambiguous else ApproveState.SUPERSEDED
                return ApproveResult(
                    state, f"no longer waiting for the seller (status {snap.status})", calls=calls
                )
            refusal = self._mismatch(snap, action=action, amount=amount, request_type=request_type)
            if refusal is not None:
                return ApproveResult(refusal[0], refusal[1], calls=calls)
            try:
                self._act(snap, action=action, fen=fen, calls=calls)
                return ApproveResult(ApproveState.EXECUTED, calls=calls)
            except KuaishouError as exc:
                if exc.kind in (ErrorKind.NOT_SENT, ErrorKind.RATE_LIMITED, ErrorKind.AUTH):
                    return _retry(exc, calls)
                if exc.kind == ErrorKind.AMBIGUOUS:
                    return self._settle(aftersale_id, agreed, exc.message, calls)
                if BUYER_CANCELLED in exc.codes:
                    return ApproveResult(
                        ApproveState.SUPERSEDED, "the buyer cancelled", calls=calls
                    )
                if exc.codes & CHANGED and not rechecked:
                    rechecked = True
                    try:
                        snap = self._read(aftersale_id, calls)
                    except KuaishouError as read_exc:
                        return _retry(read_exc, calls)
                    continue
                if exc.codes & CHANGED:
                    return ApproveResult(
                        ApproveState.SUPERSEDED, "the refund changed again", calls=calls
                    )
                if exc.codes & STATUS_REFUSED:
                    try:
                        snap = self._read(aftersale_id, calls)
                    except KuaishouError as read_exc:
                        return _retry(read_exc, calls)
                    if snap.status in agreed:
                        state = (
                            ApproveState.EXECUTED
                            if after_ambiguous
                            else ApproveState.DONE_ELSEWHERE
                        )
                        return ApproveResult(state, exc.message, calls=calls)
                    state = ApproveState.UNKNOWN if after_ambiguous else ApproveState.SUPERSEDED
                    return ApproveResult(
                        state, f"{exc.message} (status {snap.status})", calls=calls
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
        """Refuses a request still waiting for the seller, with ``reason`` (a person's words) as
        ``rejectDesc``. ``version`` is the refund's ``updateTime`` as ATOM last stored it (what
        the person saw): a refund changed since is not refused blind but ``SUPERSEDED`` (re-read
        it). The refusal carries the fresh ``updateTime`` as ``refundVersion``, and a reason code
        from ``open.refund.reject.reason`` for this refund: the first that needs no images (ATOM
        has none to attach). A version conflict on the way (300014 / 300017) is read again and
        never resent. ``after_ambiguous``: an earlier attempt of this refusal may have gone
        through, so a refund found refused is ours (``EXECUTED``). After an answer nobody
        knows, a read settles it: refused → ``EXECUTED``, unchanged → ``RETRY`` (the version
        guard makes the resend safe), else ``UNKNOWN``."""
        calls: list[str] = []
        try:
            snap = self._read(aftersale_id, calls)
        except KuaishouError as exc:
            return _retry(exc, calls)
        blocked = refusal_blocked(
            platform="Kuaishou",
            refused=snap.status == SELLER_REFUSED,
            awaiting_seller=snap.awaiting_seller,
            status=snap.status,
            version=version,
            current_version=snap.version,
            after_ambiguous=after_ambiguous,
            calls=calls,
        )
        if blocked is not None:
            return blocked
        try:
            calls.append(REJECT_REASONS)
            reasons = self.client.reject_reasons(aftersale_id)
        except KuaishouError as exc:
            if exc.kind == ErrorKind.REFUSED:
                return ApproveResult(ApproveState.FAILED, exc.message, calls=calls)
            return _retry(exc, calls)
        code = _reason_code(reasons)
        if code is None:
            return ApproveResult(
                ApproveState.FAILED,
                "every refusal reason Kuaishou offers for this refund needs images: refuse it "
                "in the Kuaishou console",
                calls=calls,
            )
        try:
            calls.append(REFUND_REJECT)
            self.client.refund_reject(
                refund_id=aftersale_id,
                reason_code=code,
                description=reason,
                version=snap.version,
            )
        except KuaishouError as exc:
            if exc.kind in (ErrorKind.NOT_SENT, ErrorKind.RATE_LIMITED, ErrorKind.AUTH):
                return _retry(exc, calls)
            if exc.kind == ErrorKind.AMBIGUOUS:
                return self._settle_refusal(snap, exc.message, calls)
            if exc.codes & (CHANGED | STATUS_REFUSED | {BUYER_CANCELLED}):
                # Changed between our read and the refusal: read again (for the message and
                # the caller's fresh copy), never resend on data nobody has seen.
                try:
                    fresh = self._read(aftersale_id, calls)
                except KuaishouError:
                    return ApproveResult(ApproveState.SUPERSEDED, exc.message, calls=calls)
                if fresh.status == SELLER_REFUSED:
                    return ApproveResult(ApproveState.DONE_ELSEWHERE, exc.message, calls=calls)
                return ApproveResult(
                    ApproveState.SUPERSEDED,
                    f"{exc.message} (status {fresh.status}, version {fresh.version})",
                    calls=calls,
                )
            return ApproveResult(ApproveState.FAILED, exc.message, calls=calls)
        return ApproveResult(ApproveState.EXECUTED, calls=calls)

    def _settle_refusal(self, snap: Snapshot, message: str, calls: list[str]) -> ApproveResult:
        try:
            fresh = self._read(snap.aftersale_id, calls)
        except KuaishouError:
            return ApproveResult(ApproveState.UNKNOWN, message, calls=calls)
        if fresh.status == SELLER_REFUSED:
            return ApproveResult(ApproveState.EXECUTED, message, calls=calls)
        if fresh.awaiting_seller and fresh.version == snap.version:
            return ApproveResult(ApproveState.RETRY, message, calls=calls)
        return ApproveResult(
            ApproveState.UNKNOWN, f"{message} (status {fresh.status})", calls=calls
        )

    def refresh(self, *, refresh_token: str, now: dt.datetime | None = None) -> TokenGrant:
        """A new token pair for this channel (``TokenRefused`` / ``KuaishouError``); the caller
        holds the channel's row lock and stores the pair before releasing it."""
        return token_refresh(
            app_key=self.credentials.app_key,
            app_secret=self.credentials.app_secret,
            refresh_token=refresh_token,
            api_base=self.credentials.api_base,
            deadline=self.deadline,
            now=now,
        )

    # --- helpers ----------------------------------------------------------------------------

    def _read(self, aftersale_id: str, calls: list[str]) -> Snapshot:
        calls.append(REFUND_DETAIL)
        refund = self.client.refund_detail(aftersale_id)
        try:
            return snapshot_of(refund)
        except ValueError as exc:
            raise KuaishouError(
                f"unreadable refund detail: {exc}", kind=ErrorKind.AMBIGUOUS, method=REFUND_DETAIL
            ) from exc

    def _mismatch(
        self, snap: Snapshot, *, action: str, amount: Decimal, request_type: str
    ) -> tuple[ApproveState, str] | None:
        if action == Action.APPROVE_REFUND and snap.handling != AfterSaleType.REFUND_ONLY:
            if request_type and request_type != snap.handling:
                return ApproveState.SUPERSEDED, f"the handling way is now {snap.handling or '?'}"
            return (
                ApproveState.FAILED,
                "Kuaishou cannot approve a return request as refund-only",
            )
        if action == Action.APPROVE_RETURN and snap.handling != AfterSaleType.RETURN_REFUND:
            return ApproveState.SUPERSEDED, f"the handling way is now {snap.handling or '?'}"
        if request_type and request_type != snap.handling:
            return ApproveState.SUPERSEDED, f"the handling way is now {snap.handling}"
        if snap.amount != amount:
            return ApproveState.SUPERSEDED, f"the amount is now {snap.amount}, not {amount}"
        return None

    def _act(self, snap: Snapshot, *, action: str, fen: int, calls: list[str]) -> None:
        if action == Action.APPROVE_RETURN:
            calls.append(RETURN_APPROVE)
            self.client.return_approve(
                refund_id=snap.aftersale_id, amount_fen=fen, address_id=self.return_address_id
            )
            return
        calls.append(REFUND_APPROVE)
        # The echo of the fresh read: its status, and the negotiate status and handling way that
        # _mismatch has just checked it holds (1: waiting for the seller; 10: refund only).
        self.client.refund_approve(
            refund_id=snap.aftersale_id,
            amount_fen=fen,
            status=snap.status,
            negotiate_status=1,
            handling=REFUND_ONLY_WAY,
        )

    def _settle(
        self, aftersale_id: str, agreed: frozenset[int], message: str, calls: list[str]
    ) -> ApproveResult:
        """After an attempt that may have gone through: agreed now → ours; else unknown."""
        try:
            snap = self._read(aftersale_id, calls)
        except KuaishouError:
            return ApproveResult(ApproveState.UNKNOWN, message, calls=calls)
        if snap.status in agreed:
            return ApproveResult(ApproveState.EXECUTED, message, calls=calls)
        return ApproveResult(ApproveState.UNKNOWN, f"{message} (status {snap.status})", calls=calls)


def _retry(exc: KuaishouError, calls: list[str]) -> ApproveResult:
    """Nothing was carried out by this call (a read failed, or the platform did not take the
    write): try again later. An earlier ambiguity stays with the pipeline."""
    return ApproveResult(
        ApproveState.RETRY,
        exc.message,
        retry_after=RATE_LIMIT_BACKOFF if exc.kind == ErrorKind.RATE_LIMITED else 0.0,
        auth_failed=exc.kind == ErrorKind.AUTH,
        calls=calls,
    )


def _reason_code(reasons: list[dict[str, Any]]) -> int | None:
    """The first offered reason that needs no images; its code under ``reasonCode`` (the name
    ``open.refund.reject`` takes) or ``code``."""
    for row in reasons:
        if row.get("requiredRejectImage") in (True, 1, "true"):
            continue
        code = row.get("reasonCode", row.get("code"))
        if isinstance(code, int) and not isinstance(code, bool):
            return code
        if isinstance(code, str) and code.isdigit():
            return int(code)
    return None


def _millis(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


def _polled(row: Any) -> PolledRefund | None:
    if not isinstance(row, dict):
        return None
    refund_id, updated, status = row.get("refundId"), row.get("updateTime"), row.get("status")
    if refund_id is None or not isinstance(updated, int) or not isinstance(status, int):
        return None
    return PolledRefund(
        aftersale_id=str(refund_id),
        order_id="" if row.get("oid") is None else str(row["oid"]),
        status=status,
        updated_at=from_millis(updated),
        raw=row,
    )


def _conforms(channel: KuaishouChannel) -> Channel:
    return channel  # mypy checks here that the class is a Channel
