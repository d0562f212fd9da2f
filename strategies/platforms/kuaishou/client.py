"""A thin client for the Kuaishou APIs the channel needs, and nothing else.

Every call is ``{api_base}/open/<method with . as />``, form-urlencoded, signed (``signing``),
bounded by one whole-call deadline, never following a redirect (``platforms.http``). Reads go as
GET with every parameter in the query, writes as POST with ``appkey`` in the query and the rest
in the form body, the verbs the official Java SDK declares for these APIs (docs/platforms/
kuaishou.md). Success is ``result == 1``; anything else raises ``KuaishouError`` with a ``kind``
the channel maps (``errors``).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strategies.platforms.channel import TokenGrant, TokenRefused
from strategies.platforms.http import HttpAnswer, TransportError, http_call
from strategies.platforms.kuaishou.signing import HMAC_SHA256, param_json, signed_params

DEFAULT_API_BASE = "https://openapi.kwaixiaodian.com"

REFUND_DETAIL = "open.seller.order.refund.detail"
ORDER_DETAIL = "open.seller.order.detail"
REFUND_LIST = "open.seller.order.refund.pcursor.list"
REFUND_APPROVE = "open.seller.order.refund.approve"
RETURN_APPROVE = "open.seller.order.refund.returngoods.approve"
REFUND_REJECT = "open.refund.reject"
REJECT_REASONS = "open.refund.reject.reason"

READS = frozenset({REFUND_DETAIL, ORDER_DETAIL, REFUND_LIST, REJECT_REASONS})
WRITES = frozenset({REFUND_APPROVE, RETURN_APPROVE, REFUND_REJECT})

# The list's cursor at its end (官方: 若返回"nomore"则标识到底).
NO_MORE = "nomore"
# The list answers at most this many per page and one day per window.
PAGE_SIZE = 100
MAX_WINDOW = dt.timedelta(days=1)

# Rate limits: the message is documented (K1008 "Exceed qps limit" / "Exceed quota limit"); the
# codes are PLATFORMS.md's, unconfirmed (docs/platforms/kuaishou.md).
RATE_LIMIT_CODES = frozenset({"15", "16", "17", "1016", "1017", "802000"})
RATE_LIMIT_PHRASES = ("exceed qps limit", "exceed quota limit")
# Authentication: 24 AUTHORIZATION_REVOKED (K0006) and 26 主账号不存在 (K0005) are documented, 27
# and 28 are PLATFORMS.md's. 21 is NOT one: the support pages show result 21 for business
# refusals ("order operation reject", stock errors).
AUTH_CODES = frozenset({"24", "26", "27", "28"})
AUTH_PHRASES = (
    "鉴权失败",
    "token过期",
    "验签失败",
    "签名校验失败",
    "authorization_revoked",
    "token中无scope权限",
)

# OAuth errors that need the merchant to authorise again (APP授权说明 §4).
REFUSED_OAUTH_ERRORS = frozenset(
    {"access_denied", "invalid_grant", "invalid_scope", "unauthorized_client", "invalid_openid"}
)


class ErrorKind(enum.StrEnum):
    RATE_LIMITED = "rate_limited"  # not processed; retry later, slower
    AUTH = "auth"  # not processed; refresh the token once, then alert
    REFUSED = "refused"  # the platform answered no (a business code)
    NOT_SENT = "not_sent"  # never reached the platform
    AMBIGUOUS = "ambiguous"  # may have been processed: no answer, a 5xx, a 3xx, garbage


class KuaishouError(Exception):
    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        code: str = "",
        codes: frozenset[str] = frozenset(),
        method: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code
        self.codes = codes | ({code} if code else set())
        self.method = method


@dataclass(frozen=True)
class Credentials:
    app_key: str
    app_secret: str
    sign_secret: str
    access_token: str
    sign_method: str = HMAC_SHA256
    api_base: str = DEFAULT_API_BASE


def path_of(method: str) -> str:
    """``open.seller.order.refund.approve`` → ``/open/seller/order/refund/approve``."""
    return "/" + method.replace(".", "/")


def codes_of(answer: Mapping[str, Any]) -> set[str]:
    """Every code an error answer carries (``result``, ``code``, ``sub_code``), as strings: the
    support pages show the code in ``result``, PLATFORMS.md in ``code``."""
    codes = set()
    for key in ("result", "code", "sub_code", "error_code"):
        value = answer.get(key)
        if value is not None and not isinstance(value, bool) and str(value).strip():
            codes.add(str(value).strip())
    return codes


def classify(answer: Mapping[str, Any]) -> ErrorKind:
    codes = codes_of(answer)
    text = " ".join(str(answer.get(k) or "") for k in ("error_msg", "msg", "error")).lower()
    if codes & RATE_LIMIT_CODES or any(p in text for p in RATE_LIMIT_PHRASES):
        return ErrorKind.RATE_LIMITED
    if codes & AUTH_CODES or any(p.lower() in text for p in AUTH_PHRASES):
        return ErrorKind.AUTH
    return ErrorKind.REFUSED


class KuaishouClient:
    def __init__(
        self,
        credentials: Credentials,
        *,
        deadline: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credentials = credentials
        self.deadline = deadline
        self.clock = clock

    # --- one call ---------------------------------------------------------------------------

    def call(self, method: str, param: Mapping[str, Any]) -> Any:
        """The ``data`` of a successful call of ``method`` with ``param``."""
        creds = self.credentials
        params = signed_params(
            app_key=creds.app_key,
            method=method,
            param=param_json(param),
            access_token=creds.access_token,
            timestamp_ms=int(self.clock() * 1000),
            sign_method=creds.sign_method,
            sign_secret=creds.sign_secret,
        )
        url = creds.api_base.rstrip("/") + path_of(method)
        try:
            if method in WRITES:
                query = {"appkey": params.pop("appkey")}
                answer = http_call("POST", url, params=query, form=params, deadline=self.deadline)
            else:
                answer = http_call("GET", url, params=params, deadline=self.deadline)
        except TransportError as exc:
            kind = ErrorKind.AMBIGUOUS if exc.sent else ErrorKind.NOT_SENT
            raise KuaishouError(exc.message, kind=kind, method=method) from exc
        body = _answer_json(answer, method)
        if body.get("result") == 1:
            return body.get("data")
        codes = codes_of(body)
        code = next((c for c in sorted(codes) if c != str(body.get("result"))), "") or str(
            body.get("result", "")
        )
        message = str(body.get("error_msg") or body.get("msg") or "")
        raise KuaishouError(
            f"{method} refused: {code} {message}".strip(),
            kind=classify(body),
            code=code,
            codes=frozenset(codes),
            method=method,
        )

    # --- the APIs ---------------------------------------------------------------------------

    def refund_detail(self, refund_id: str) -> dict[str, Any]:
        return _object(self.call(REFUND_DETAIL, {"refundId": int(refund_id)}), REFUND_DETAIL)

    def order_detail(self, order_id: str) -> dict[str, Any]:
        return _object(self.call(ORDER_DETAIL, {"orderId": int(order_id)}), ORDER_DETAIL)

    def refund_list(self, *, begin_ms: int, end_ms: int, pcursor: str) -> dict[str, Any]:
        """One page of refunds updated in ``[begin_ms, end_ms]`` (at most one day), oldest
        first; ``pcursor`` is ``""`` for the first page."""
        param = {
            "beginTime": begin_ms,
            "endTime": end_ms,
            "type": 9,  # all refunds (8 would be "waiting for refund" only)
            "pageSize": PAGE_SIZE,
            "sort": 2,  # ascending
            "queryType": 2,  # by update time
            "pcursor": pcursor,
        }
        return _object(self.call(REFUND_LIST, param), REFUND_LIST)

    def refund_approve(
        self, *, refund_id: str, amount_fen: int, status: int, negotiate_status: int, handling: int
    ) -> Any:
        """Agree a refund-only request; ``status``, ``negotiate_status`` and ``handling`` echo a
        fresh detail read (``refundHandingWay`` is the platform's spelling)."""
        return self.call(
            REFUND_APPROVE,
            {
                "refundId": int(refund_id),
                "refundAmount": amount_fen,
                "status": status,
                "negotiateStatus": negotiate_status,
                "refundHandingWay": handling,
            },
        )

    def return_approve(self, *, refund_id: str, amount_fen: int, address_id: str = "") -> Any:
        """Agree a return; ``refundAmount`` is only checked against the refund's own amount, and
        without ``addressId`` the shop's default return address is used."""
        param: dict[str, Any] = {"refundId": int(refund_id), "refundAmount": amount_fen}
        if address_id:
            param["addressId"] = int(address_id)
        return self.call(RETURN_APPROVE, param)

    def reject_reasons(self, refund_id: str) -> list[dict[str, Any]]:
        """The refusal reasons the platform offers for this refund (仅退款和退货退款拒绝原因列表),
        each with its code and whether a description or images are required. The answer's
        field names are not in the sources we could read: a list, or the first list inside the
        data object, is taken (docs/platforms/kuaishou.md)."""
        data = self.call(REJECT_REASONS, {"refundId": int(refund_id)})
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(data, list):
            raise KuaishouError(
                f"{REJECT_REASONS}: the answer has no list of reasons",
                kind=ErrorKind.REFUSED,
                method=REJECT_REASONS,
            )
        return [r for r in data if isinstance(r, dict)]

    def refund_reject(
        self, *, refund_id: str, reason_code: int, description: str, version: int
    ) -> Any:
        """Refuse a request; ``version`` is the refund's ``updateTime`` (``refundVersion``)."""
        return self.call(
            REFUND_REJECT,
            {
                "refundId": int(refund_id),
                "reasonCode": reason_code,
                "rejectDesc": description,
                "refundVersion": version,
            },
        )


def _answer_json(answer: HttpAnswer, method: str) -> dict[str, Any]:
    if answer.status != 200:
        # No business answer: a 3xx (a misconfigured base URL), a 5xx or a proxy's page. The call
        # may have been processed behind it.
        raise KuaishouError(
            f"{method}: HTTP {answer.status}", kind=ErrorKind.AMBIGUOUS, method=method
        )
    try:
        body = json.loads(answer.body)
    except ValueError as exc:
        raise KuaishouError(
            f"{method}: the answer is not JSON", kind=ErrorKind.AMBIGUOUS, method=method
        ) from exc
    if not isinstance(body, dict):
        raise KuaishouError(
            f"{method}: the answer is not a JSON object", kind=ErrorKind.AMBIGUOUS, method=method
        )
    return body


def _object(data: Any, method: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise KuaishouError(
            f"{method}: the answer has no data object", kind=ErrorKind.REFUSED, method=method
        )
    return data


def token_refresh(
    *,
    app_key: str,
    app_secret: str,
    refresh_token: str,
    api_base: str = DEFAULT_API_BASE,
    deadline: float = 10.0,
    now: dt.datetime | None = None,
) -> TokenGrant:
    """A new token pair (APP授权说明 §2.4). Every refresh returns a new refresh token and the old
    one dies within minutes, so exactly one refresh may run per channel at a time and its answer
    must be stored before anything else. ``TokenRefused`` when the platform says no for good;
    ``KuaishouError`` when a retry may work (after a lost answer, retry soon, while the old
    refresh token still lives)."""
    url = api_base.rstrip("/") + "/oauth2/refresh_token"
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "app_id": app_key,
        "app_secret": app_secret,
    }
    sent_at = now or dt.datetime.now(dt.UTC)
    try:
        answer = http_call("POST", url, form=form, deadline=deadline)
    except TransportError as exc:
        kind = ErrorKind.AMBIGUOUS if exc.sent else ErrorKind.NOT_SENT
        raise KuaishouError(exc.message, kind=kind, method="oauth2.refresh_token") from exc
    body = _answer_json(answer, "oauth2.refresh_token")
    if body.get("result") != 1:
        error = str(body.get("error") or "")
        detail = str(body.get("error_msg") or "")
        if error in REFUSED_OAUTH_ERRORS:
            raise TokenRefused(f"refresh refused: {error} {detail}".strip(), code=detail or error)
        raise KuaishouError(
            f"refresh failed: {body.get('result')} {error} {detail}".strip(),
            kind=ErrorKind.AMBIGUOUS,
            code=str(body.get("result", "")),
            method="oauth2.refresh_token",
        )
    try:
        access = str(body["access_token"])
        refresh = str(body["refresh_token"])
        expires_in = int(body["expires_in"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KuaishouError(
            "refresh answer lacks the token pair",
            kind=ErrorKind.AMBIGUOUS,
            method="oauth2.refresh_token",
        ) from exc
    refresh_in = body.get("refresh_token_expires_in")
    scopes = body.get("scopes") or ()
    return TokenGrant(
        access_token=access,
        refresh_token=refresh,
        expires_at=sent_at + dt.timedelta(seconds=expires_in),
        refresh_expires_at=(
            sent_at + dt.timedelta(seconds=int(refresh_in)) if refresh_in is not None else None
        ),
        merchant=str(body.get("open_id") or ""),
        scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else (),
    )
