"""A thin client for the Douyin APIs the channel needs.

Every call is ``POST {api_base}/<method with . as />?app_key=…&method=…&timestamp=<unix s>&v=2
&sign_method=hmac-sha256&sign=…&access_token=…`` with the ``param_json`` string as the JSON body,
as the official Go SDK sends it (``core/doudian_op_api_client.go``), bounded by one whole-call
deadline and never following a redirect. Success is ``code == 10000``.
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
from strategies.platforms.douyin.signing import SIGN_METHOD, VERSION, param_json, sign
from strategies.platforms.http import TransportError, http_call

DEFAULT_API_BASE = "https://openapi-fxg.jinritemai.com"

AFTERSALE_DETAIL = "afterSale.Detail"
AFTERSALE_OPERATE = "afterSale.operate"
AFTERSALE_LIST = "afterSale.List"
ORDER_DETAIL = "order.orderDetail"
TOKEN_CREATE = "token.create"
TOKEN_REFRESH = "token.refresh"

SUCCESS = 10000
SYSTEM_ERROR = 20000  # isp.service-error ("empty answer, retry"): may have been processed
PAGE_SIZE = 100
MAX_WINDOW = dt.timedelta(days=1)
# The official SDK says a refresh token lives 14 days.
REFRESH_TOKEN_LIFETIME = dt.timedelta(days=14)

# Not documented in what we could read (docs/platforms/douyin.md): recognised by their words.
RATE_LIMIT_PHRASES = ("access-limit", "flow-limit", "rate-limit", "限流", "频繁", "too many")
AUTH_PHRASES = ("access-token", "access_token", "signature", "sign-", "app-key", "授权", "签名")


class ErrorKind(enum.StrEnum):
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    REFUSED = "refused"
    NOT_SENT = "not_sent"
    AMBIGUOUS = "ambiguous"


class DouyinError(Exception):
    def __init__(
        self, message: str, *, kind: ErrorKind, code: int = 0, sub_code: str = "", method: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code
        self.sub_code = sub_code
        self.method = method


@dataclass(frozen=True)
class Credentials:
    app_key: str
    app_secret: str
    access_token: str = ""
    shop_id: str = ""
    api_base: str = DEFAULT_API_BASE


def path_of(method: str) -> str:
    """``afterSale.operate`` → ``/afterSale/operate``."""
    return "/" + method.replace(".", "/")


def classify(answer: Mapping[str, Any]) -> ErrorKind:
    code = answer.get("code")
    if code == SYSTEM_ERROR:
        return ErrorKind.AMBIGUOUS
    text = " ".join(str(answer.get(k) or "") for k in ("sub_code", "sub_msg", "msg")).lower()
    if any(p in text for p in RATE_LIMIT_PHRASES):
        return ErrorKind.RATE_LIMITED
    if any(p in text for p in AUTH_PHRASES):
        return ErrorKind.AUTH
    return ErrorKind.REFUSED


def _envelope(
    *, base: str, app_key: str, app_secret: str, method: str, body: str, token: str, now: float
) -> tuple[str, dict[str, str]]:
    timestamp = str(int(now))
    query = {
        "app_key": app_key,
        "method": method,
        "timestamp": timestamp,
        "v": VERSION,
        "sign_method": SIGN_METHOD,
        "sign": sign(
            app_key=app_key,
            app_secret=app_secret,
            method=method,
            param_json=body,
            timestamp=timestamp,
        ),
    }
    if token:
        query["access_token"] = token
    return base.rstrip("/") + path_of(method), query


def _post(
    *,
    credentials: Credentials,
    method: str,
    param: Mapping[str, Any],
    token: str,
    deadline: float,
    now: float,
) -> Any:
    body = param_json(param)
    url, query = _envelope(
        base=credentials.api_base,
        app_key=credentials.app_key,
        app_secret=credentials.app_secret,
        method=method,
        body=body,
        token=token,
        now=now,
    )
    try:
        answer = http_call(
            "POST",
            url,
            params=query,
            body=body.encode("utf-8"),
            # The SDK's headers; x-open-no-old-err-code asks for the current error codes.
            headers={"Content-Type": "application/json", "x-open-no-old-err-code": "1"},
            deadline=deadline,
        )
    except TransportError as exc:
        kind = ErrorKind.AMBIGUOUS if exc.sent else ErrorKind.NOT_SENT
        raise DouyinError(exc.message, kind=kind, method=method) from exc
    if answer.status != 200:
        raise DouyinError(
            f"{method}: HTTP {answer.status}", kind=ErrorKind.AMBIGUOUS, method=method
        )
    try:
        envelope = json.loads(answer.body)
    except ValueError as exc:
        raise DouyinError(
            f"{method}: the answer is not JSON", kind=ErrorKind.AMBIGUOUS, method=method
        ) from exc
    if not isinstance(envelope, dict):
        raise DouyinError(f"{method}: not a JSON object", kind=ErrorKind.AMBIGUOUS, method=method)
    if envelope.get("code") == SUCCESS:
        return envelope.get("data")
    code = envelope.get("code")
    raise DouyinError(
        f"{method} refused: {code} {envelope.get('msg') or ''} "
        f"{envelope.get('sub_code') or ''} {envelope.get('sub_msg') or ''}".strip(),
        kind=classify(envelope),
        code=code if isinstance(code, int) else 0,
        sub_code=str(envelope.get("sub_code") or ""),
        method=method,
    )


class DouyinClient:
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

    def call(self, method: str, param: Mapping[str, Any]) -> Any:
        return _post(
            credentials=self.credentials,
            method=method,
            param=param,
            token=self.credentials.access_token,
            deadline=self.deadline,
            now=self.clock(),
        )

    def aftersale_detail(self, aftersale_id: str) -> dict[str, Any]:
        return _object(
            self.call(AFTERSALE_DETAIL, {"after_sale_id": aftersale_id}), AFTERSALE_DETAIL
        )

    def order_detail(self, shop_order_id: str) -> dict[str, Any]:
        return _object(self.call(ORDER_DETAIL, {"shop_order_id": shop_order_id}), ORDER_DETAIL)

    def aftersale_list(self, *, start: int, end: int, page: int) -> dict[str, Any]:
        """One page (from 0) of the requests updated in ``[start, end]`` (Unix seconds)."""
        param = {
            "update_start_time": start,
            "update_end_time": end,
            "order_by": ["update_time asc"],
            "page": page,
            "size": PAGE_SIZE,
        }
        return _object(self.call(AFTERSALE_LIST, param), AFTERSALE_LIST)

    def aftersale_operate(self, *, type_: int, items: list[dict[str, Any]]) -> dict[str, Any]:
        data = self.call(AFTERSALE_OPERATE, {"type": type_, "items": items})
        return data if isinstance(data, dict) else {}


def _object(data: Any, method: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise DouyinError(
            f"{method}: the answer has no data object", kind=ErrorKind.REFUSED, method=method
        )
    return data


def _grant(data: Any, method: str, sent_at: dt.datetime) -> TokenGrant:
    try:
        access = str(data["access_token"])
        refresh = str(data["refresh_token"])
        expires_in = int(data["expires_in"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DouyinError(
            f"{method}: no token pair in the answer", kind=ErrorKind.AMBIGUOUS, method=method
        ) from exc
    scope = str(data.get("scope") or "")
    return TokenGrant(
        access_token=access,
        refresh_token=refresh,
        expires_at=sent_at + dt.timedelta(seconds=expires_in),
        refresh_expires_at=sent_at + REFRESH_TOKEN_LIFETIME,
        merchant=str(data.get("shop_id") or ""),
        scopes=tuple(s for s in scope.split(",") if s),
    )


def _token_call(
    *,
    credentials: Credentials,
    method: str,
    param: Mapping[str, Any],
    deadline: float,
    now: dt.datetime,
) -> TokenGrant:
    try:
        data = _post(
            credentials=credentials,
            method=method,
            param=param,
            token="",
            deadline=deadline,
            now=now.timestamp(),
        )
    except DouyinError as exc:
        if exc.kind == ErrorKind.REFUSED or exc.kind == ErrorKind.AUTH:
            raise TokenRefused(exc.message, code=exc.sub_code or str(exc.code)) from exc
        raise
    return _grant(data, method, now)


def token_create(
    *, credentials: Credentials, deadline: float = 10.0, now: dt.datetime | None = None
) -> TokenGrant:
    """A token for a self-built app's own shop (``authorization_self`` with ``shop_id``)."""
    param = {"code": "", "grant_type": "authorization_self", "shop_id": credentials.shop_id}
    return _token_call(
        credentials=credentials,
        method=TOKEN_CREATE,
        param=param,
        deadline=deadline,
        now=now or dt.datetime.now(dt.UTC),
    )


def token_refresh(
    *,
    credentials: Credentials,
    refresh_token: str,
    deadline: float = 10.0,
    now: dt.datetime | None = None,
) -> TokenGrant:
    param = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return _token_call(
        credentials=credentials,
        method=TOKEN_REFRESH,
        param=param,
        deadline=deadline,
        now=now or dt.datetime.now(dt.UTC),
    )
