"""A fake Kuaishou open platform: a real local HTTP server for the tests and the demo.

It checks every call as the platform does (the ``sign`` over the exact parameters with the sign
secret, the app key, a live access token, the verb), serves refund and order details and the
refund list, agrees each refund once (a second approve answers 300010, as the platform does for a
refund no longer waiting for the seller), refuses a stale status echo (300014 / 300017), takes a
refusal once (an offered reason code, the current ``refundVersion``: 300014 otherwise), rotates
tokens on refresh (the old refresh token is discarded), and pushes encrypted messages to a URL.
Script steps (``fakeserver``) make it time out, drip, fail, rate-limit, or answer any business
code, e.g. ``fake.script(REFUND_APPROVE, "300013")``.

Where the real platform's behaviour is not documented, the fake's choice is written next to it
(see also docs/platforms/kuaishou.md).
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from strategies.platforms.fakeserver import FakeCall, Reply, ScriptedServer, json_reply
from strategies.platforms.kuaishou.client import (
    ORDER_DETAIL,
    READS,
    REFUND_APPROVE,
    REFUND_DETAIL,
    REFUND_LIST,
    REFUND_REJECT,
    REJECT_REASONS,
    RETURN_APPROVE,
    WRITES,
)
from strategies.platforms.kuaishou.messages import ADD_REFUND, UPDATE_REFUND, encrypt_message
from strategies.platforms.kuaishou.signing import signature_matches

REFRESH = "oauth2.refresh_token"
# The fake's own read-only pages (no platform has them): what it approved, for the demo's user.
APPROVALS_PAGE = "fake.approvals"
APPROVALS_JSON = "fake.approvals.json"
PAGE_ROWS = 200
DAY_MS = 24 * 3600 * 1000

# The 返回码 of the refund APIs (开发文档 "返回码说明").
MESSAGES = {
    "300008": "HANDING WAY ERROR",
    "300009": "REFUND AMOUNT IS ZERO",
    "300010": "REFUND ORDER STATUS ERROR",
    "300011": "REFUND ORDER NOT FOUND",
    "300013": "BUYER CANCEL REFUND",
    "300014": "REFUND ORDER UPDATED",
    "300016": "NEGOTIATE STATUS INVALID",
    "300017": "REFUND NEGOTIATE STATUS CHANGED",
    "300018": "REFUND ORDER STATUS NOT ALLOW",
    "300019": "SEARCH TIME RANGE EXPAND LIMIT",
}
# The fake's answers where only the message is documented: the code is PLATFORMS.md's.
AUTH_FAILED = {"result": 28, "error_msg": "鉴权失败"}
SIGN_FAILED = {"result": 27, "error_msg": "签名校验失败"}


# The fake's refusal reasons (the real list depends on the refund and is not documented in the
# sources we read: docs/platforms/kuaishou.md): the first needs images, so a channel must skip it.
REJECT_REASON_LIST = [
    {
        "reasonCode": 701,
        "reasonDesc": "买家已使用商品",
        "requiredRejectDesc": True,
        "requiredRejectImage": True,
    },
    {
        "reasonCode": 702,
        "reasonDesc": "与买家协商一致",
        "requiredRejectDesc": True,
        "requiredRejectImage": False,
    },
]


def now_ms(clock: Any = time.time) -> int:
    return int(clock() * 1000)


@dataclass
class FakeKuaishou(ScriptedServer):
    app_key: str = "ks-fake-app"
    app_secret: str = "fake-app-secret"
    sign_secret: str = "fake-sign-secret"
    message_key: str = field(
        default_factory=lambda: base64.b64encode(secrets.token_bytes(16)).decode()
    )
    open_id: str = "fake-merchant-open-id"
    seller_id: int = 10001
    access_ttl: int = 172800  # 48 h
    refresh_ttl: int = 180 * 86400
    # The old refresh token "dies within 5 minutes" (APP授权说明 §2.4) and a reused one answers
    # refreshToken.discarded (K0008); the fake discards it after this many seconds (0: at once,
    # the strictest reading).
    discard_grace: float = 0.0
    page_size_cap: int = 100  # lower it to make the list answer in several pages
    clock: Any = time.time

    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    approvals: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    rejections: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    reject_reasons: list[dict[str, Any]] = field(default_factory=lambda: list(REJECT_REASON_LIST))
    approved_at: dict[str, float] = field(default_factory=dict)  # refund id -> clock() (s)
    # access token -> expiry (s); refresh token -> (expiry, discarded at or None)
    access_tokens: dict[str, float] = field(default_factory=dict)
    refresh_tokens: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    pushes: list[tuple[str, int, float]] = field(default_factory=list)  # (event id, status, s)
    _event_ids: Any = field(default_factory=lambda: itertools.count(1))

    # --- state ------------------------------------------------------------------------------

    def issue_tokens(self) -> tuple[str, str]:
        """A fresh authorisation: (access token, refresh token)."""
        with self.lock:
            now = self.clock()
            access, refresh = "at-" + secrets.token_hex(8), "rt-" + secrets.token_hex(8)
            self.access_tokens[access] = now + self.access_ttl
            self.refresh_tokens[refresh] = (now + self.refresh_ttl, None)
            return access, refresh

    def add_order(
        self,
        order_id: str,
        *,
        status: int = 40,
        pay_time: int | None = None,
        send_time: int | None = None,
        items: Sequence[tuple[int, str, int, int]] = ((9001, "T-shirt", 1, 990),),
        buyer_open_id: str = "buyer-open-1",
    ) -> dict[str, Any]:
        """An order: ``items`` are (item id, title, quantity, unit price in fen)."""
        paid = pay_time if pay_time is not None else now_ms(self.clock) - 3 * DAY_MS
        order = {
            "oid": int(order_id),
            "status": status,
            "payTime": paid,
            "sendTime": send_time
            if send_time is not None
            else (paid + DAY_MS if status >= 40 else 0),
            "buyerOpenId": buyer_open_id,
            "sellerId": self.seller_id,
            "totalFee": sum(num * price for _, _, num, price in items),
            "orderProductInfoList": [
                {"itemId": item, "itemTitle": title, "num": num, "price": price}
                for item, title, num, price in items
            ],
        }
        with self.lock:
            self.orders[order_id] = order
        return order

    def add_refund(
        self,
        refund_id: str,
        *,
        order_id: str,
        fee: int,
        handling_way: int = 10,
        status: int = 10,
        negotiate_status: int = 1,
        special: int = 0,
        reason: str = "不想要了",
        buyer_open_id: str = "buyer-open-1",
        submit_time: int | None = None,
    ) -> dict[str, Any]:
        """A refund waiting for the seller; ``fee`` in fen."""
        now = now_ms(self.clock)
        refund = {
            "refundId": int(refund_id),
            "oid": int(order_id),
            "sellerId": self.seller_id,
            "buyerOpenId": buyer_open_id,
            "handlingWay": handling_way,
            "specialRefundType": special,
            "refundFee": fee,
            "refundReason": 0,
            "refundReasonDesc": reason,
            "status": status,
            "negotiateStatus": negotiate_status,
            "submitTime": submit_time if submit_time is not None else now,
            "createTime": submit_time if submit_time is not None else now,
            "updateTime": now,
        }
        with self.lock:
            self.refunds[refund_id] = refund
        return refund

    def update_refund(self, refund_id: str, **changes: Any) -> dict[str, Any]:
        """Changes a refund as the buyer or the platform would, moving its ``updateTime``."""
        with self.lock:
            refund = self.refunds[refund_id]
            refund.update(changes)
            refund["updateTime"] = max(now_ms(self.clock), refund["updateTime"] + 1)
            return dict(refund)

    def approvals_of(self, refund_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [param for rid, _, param in self.approvals if rid == refund_id]

    def rejections_of(self, refund_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [param for rid, param in self.rejections if rid == refund_id]

    @property
    def approvals_url(self) -> str:
        return f"{self.url}/approvals"

    def approvals_summary(self) -> dict[str, Any]:
        """What the read-only pages show: the count and the latest approvals, newest first."""
        with self.lock:
            latest = self.approvals[-PAGE_ROWS:][::-1]
            return {
                "approved": len(self.approvals),
                "refunds": len(self.refunds),
                "approvals": [
                    {
                        "refundId": rid,
                        "api": api,
                        "refundAmount": param.get("refundAmount"),
                        "approvedAt": int(self.approved_at.get(rid, 0) * 1000),
                    }
                    for rid, api, param in latest
                ],
            }

    def _approvals_page(self, call: FakeCall) -> Reply:
        summary = self.approvals_summary()
        if call.api == APPROVALS_JSON:
            return json_reply(summary)
        rows = "".join(
            "<tr><td>{}</td><td>{}</td><td>{:.2f}</td><td>{}</td></tr>".format(
                html.escape(a["refundId"]),
                html.escape(a["api"]),
                (a["refundAmount"] or 0) / 100,
                time.strftime("%H:%M:%S", time.localtime(a["approvedAt"] / 1000)),
            )
            for a in summary["approvals"]
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' "
            "content='5'><title>Fake Kuaishou: approvals</title></head><body>"
            f"<h1>Fake Kuaishou open platform</h1><p>{summary['approved']} approval(s) of "
            f"{summary['refunds']} refund(s); the latest {PAGE_ROWS} below (JSON: "
            "<a href='/approvals.json'>/approvals.json</a>).</p><table border='1'>"
            "<tr><th>refundId</th><th>API</th><th>refundAmount (yuan)</th><th>at</th></tr>"
            f"{rows}</table></body></html>"
        )
        return Reply(200, page.encode("utf-8"), content_type="text/html;charset=utf-8")

    # --- pushes -----------------------------------------------------------------------------

    def envelope(
        self, refund_id: str, *, event: str = ADD_REFUND, event_id: str = ""
    ) -> dict[str, Any]:
        with self.lock:
            refund = dict(self.refunds[refund_id])
        info: dict[str, Any] = {
            "orderId": refund["oid"],
            "refundId": refund["refundId"],
            "handlingWay": refund["handlingWay"],
            "specialRefundType": refund["specialRefundType"],
            "status": refund["status"],
        }
        if event == UPDATE_REFUND:
            info.update(eventType=1, updateTime=refund["updateTime"])
        else:
            info["createTime"] = refund["createTime"]
        return {
            "eventId": event_id or f"{next(self._event_ids)}_{refund_id}_{refund['updateTime']}",
            "bizId": refund["refundId"],
            "userId": self.seller_id,
            "openId": self.open_id,
            "appKey": self.app_key,
            "event": event,
            "info": json.dumps(info, separators=(",", ":")),
            "createTime": now_ms(self.clock),
            "test": False,
        }

    def push(
        self, url: str, envelope: dict[str, Any], *, timeout: float = 3.0
    ) -> requests.Response:
        """POSTs ``envelope`` encrypted, as the platform does (text/plain, 3 s for the answer)."""
        body = encrypt_message(
            json.dumps(envelope, ensure_ascii=False), message_key=self.message_key
        )
        return self.push_raw(
            url, body.encode("ascii"), event_id=str(envelope.get("eventId", "")), timeout=timeout
        )

    def push_raw(
        self, url: str, body: bytes, *, event_id: str = "", timeout: float = 3.0
    ) -> requests.Response:
        started = time.monotonic()
        response = requests.post(
            url,
            data=body,
            headers={"Content-Type": "text/plain;charset=utf-8"},
            timeout=timeout,
            allow_redirects=False,
        )
        with self.lock:
            self.pushes.append((event_id, response.status_code, time.monotonic() - started))
        return response

    def heartbeat(self, url: str, *, encrypted: bool = True) -> requests.Response:
        body = json.dumps({"test": True}, separators=(",", ":"))
        if encrypted:
            body = encrypt_message(body, message_key=self.message_key)
        return self.push_raw(url, body.encode("utf-8"))

    # --- serving ----------------------------------------------------------------------------

    def api_of(self, verb: str, path: str, params: dict[str, str]) -> str:
        if path == "/oauth2/refresh_token":
            return REFRESH
        if verb == "GET" and path in ("/", "/approvals"):
            return APPROVALS_PAGE
        if verb == "GET" and path == "/approvals.json":
            return APPROVALS_JSON
        return path.strip("/").replace("/", ".")

    def rate_limited_answer(self, call: FakeCall) -> Reply:
        # The message is K1008's; the code PLATFORMS.md's.
        return json_reply(
            {
                "result": 802000,
                "error_msg": f"Exceed qps limit, KEY [apiId:{call.api};appkey:{self.app_key}],"
                f" MAX_QPS [{self.max_qps or 10.0}]",
            }
        )

    def error_answer(self, call: FakeCall, step: Any) -> Reply:
        if step == "auth":
            return json_reply(AUTH_FAILED)
        code = str(step)
        return json_reply(
            {"result": int(code) if code.isdigit() else 21, "error_msg": MESSAGES.get(code, code)}
        )

    def handle(self, call: FakeCall) -> Reply:
        if call.api == REFRESH:
            return self._refresh(call)
        if call.api in (APPROVALS_PAGE, APPROVALS_JSON):
            return self._approvals_page(call)
        problem = self._authenticate(call)
        if problem is not None:
            return json_reply(problem)
        try:
            param = json.loads(call.params["param"])
        except (KeyError, ValueError):
            return json_reply({"result": 21, "error_msg": "param is not JSON"})
        handler = {
            REFUND_DETAIL: self._detail,
            ORDER_DETAIL: self._order,
            REFUND_LIST: self._list,
            REFUND_APPROVE: self._approve,
            RETURN_APPROVE: self._return_approve,
            REFUND_REJECT: self._reject,
            REJECT_REASONS: self._reject_reasons,
        }.get(call.api)
        if handler is None:
            return json_reply({"result": 21, "error_msg": f"unknown api {call.api}"})
        return handler(call, param)

    def _authenticate(self, call: FakeCall) -> dict[str, Any] | None:
        params = call.params
        for key in ("appkey", "method", "version", "param", "timestamp", "signMethod", "sign"):
            if key not in params:
                return {"result": 21, "error_msg": f"missing {key}"}
        if params["method"] != call.api:
            return {"result": 21, "error_msg": "method does not match the path"}
        # The official SDK's verbs (GET for these reads, POST for these writes).
        expected_verb = "GET" if call.api in READS else "POST" if call.api in WRITES else call.verb
        if call.verb != expected_verb:
            return {"result": 21, "error_msg": f"{call.api} takes {expected_verb}"}
        if params["appkey"] != self.app_key:
            return {"result": 21, "error_msg": "unknown appkey"}
        if not signature_matches(params, sign_secret=self.sign_secret):
            return SIGN_FAILED
        expiry = self.access_tokens.get(params.get("access_token", ""))
        if expiry is None or expiry <= self.clock():
            return AUTH_FAILED
        return None

    def _detail(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        refund = self.refunds.get(str(param.get("refundId")))
        if refund is None:
            return self.error_answer(call, "300011")
        call.done = True
        return json_reply({"result": 1, "data": dict(refund)})

    def _order(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        order = self.orders.get(str(param.get("orderId")))
        if order is None:
            return json_reply({"result": 21, "error_msg": "order operation reject"})
        call.done = True
        return json_reply({"result": 1, "data": dict(order)})

    def _list(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        begin, end = param.get("beginTime"), param.get("endTime")
        if not isinstance(begin, int) or not isinstance(end, int) or end < begin:
            return json_reply({"result": 21, "error_msg": "ENDTIME MUST AFTER BEGINTIME"})
        if end - begin > DAY_MS:
            return self.error_answer(call, "300019")
        size = param.get("pageSize")
        if not isinstance(size, int) or not 1 <= size <= 100:
            return json_reply({"result": 21, "error_msg": "pageSize must be 1 to 100"})
        if "pcursor" not in param:
            return json_reply({"result": 21, "error_msg": "missing pcursor"})
        key = "updateTime" if param.get("queryType") == 2 else "createTime"
        rows = sorted(
            (r for r in self.refunds.values() if begin <= r[key] <= end),
            key=lambda r: (r[key], r["refundId"]),
            reverse=param.get("sort") != 2,
        )
        offset = int(param["pcursor"] or 0)
        size = min(size, self.page_size_cap)
        page = rows[offset : offset + size]
        following = offset + size
        call.done = True
        return json_reply(
            {
                "result": 1,
                "data": {
                    "pcursor": str(following) if following < len(rows) else "nomore",
                    "refundOrderInfoList": [dict(r) for r in page],
                    "totalSize": len(rows),
                },
            }
        )

    def _approve(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        refund = self.refunds.get(str(param.get("refundId")))
        if refund is None:
            return self.error_answer(call, "300011")
        if refund["status"] not in (10, 11):
            return self.error_answer(call, "300010")
        if param.get("status") != refund["status"]:
            return self.error_answer(call, "300014")
        if param.get("negotiateStatus") != refund["negotiateStatus"]:
            return self.error_answer(call, "300017")
        if refund["negotiateStatus"] != 1:
            return self.error_answer(call, "300016")
        # The fake's choice: this API agrees refund-only requests only.
        if param.get("refundHandingWay") != refund["handlingWay"] or refund["handlingWay"] != 10:
            return self.error_answer(call, "300008")
        amount = param.get("refundAmount")
        if not isinstance(amount, int) or amount <= 0:
            return self.error_answer(call, "300009")
        if amount != refund["refundFee"]:
            return json_reply({"result": 21, "error_msg": "refundAmount does not match the refund"})
        refund.update(
            status=50,
            negotiateStatus=2,
            updateTime=max(now_ms(self.clock), refund["updateTime"] + 1),
        )
        self.approvals.append((str(refund["refundId"]), call.api, param))
        self.approved_at[str(refund["refundId"])] = self.clock()
        call.done = True
        return json_reply({"result": 1, "data": {}})

    def _return_approve(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        refund = self.refunds.get(str(param.get("refundId")))
        if refund is None:
            return self.error_answer(call, "300011")
        if refund["status"] not in (10, 11):
            return self.error_answer(call, "300010")
        if refund["handlingWay"] != 1:
            return self.error_answer(call, "300008")
        if param.get("refundAmount") != refund["refundFee"]:
            return json_reply({"result": 21, "error_msg": "refundAmount does not match the refund"})
        refund.update(
            status=30,
            negotiateStatus=2,
            updateTime=max(now_ms(self.clock), refund["updateTime"] + 1),
        )
        self.approvals.append((str(refund["refundId"]), call.api, param))
        self.approved_at[str(refund["refundId"])] = self.clock()
        call.done = True
        return json_reply({"result": 1, "data": {}})

    def _reject_reasons(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        if str(param.get("refundId")) not in self.refunds:
            return self.error_answer(call, "300011")
        call.done = True
        return json_reply({"result": 1, "data": [dict(r) for r in self.reject_reasons]})

    def _reject(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        """Refuses once: a refund no longer waiting (a second refusal) answers 300010, a stale
        ``refundVersion`` 300014; the code must be one offered for the refund, with a
        description (and no images: the fake takes none) where the reason requires them."""
        refund = self.refunds.get(str(param.get("refundId")))
        if refund is None:
            return self.error_answer(call, "300011")
        if refund["status"] not in (10, 11):
            return self.error_answer(call, "300010")
        if param.get("refundVersion") != refund["updateTime"]:
            return self.error_answer(call, "300014")
        offered = {r["reasonCode"]: r for r in self.reject_reasons}
        chosen = offered.get(param.get("reasonCode"))
        if chosen is None:
            return json_reply({"result": 21, "error_msg": "reasonCode is not offered"})
        if chosen["requiredRejectImage"] and not param.get("rejectImages"):
            return json_reply({"result": 21, "error_msg": "rejectImages required"})
        if chosen["requiredRejectDesc"] and not str(param.get("rejectDesc") or "").strip():
            return json_reply({"result": 21, "error_msg": "rejectDesc required"})
        refund.update(
            status=12,
            negotiateStatus=3,
            updateTime=max(now_ms(self.clock), refund["updateTime"] + 1),
        )
        self.rejections.append((str(refund["refundId"]), param))
        call.done = True
        return json_reply({"result": 1, "data": {}})

    def _refresh(self, call: FakeCall) -> Reply:
        params = call.params
        if call.verb != "POST":
            return json_reply(
                {"result": 100200100, "error": "invalid_request", "error_msg": "POST only"}
            )
        if params.get("app_id") != self.app_key or params.get("app_secret") != self.app_secret:
            return json_reply(
                {"result": 100200101, "error": "unauthorized_client", "error_msg": "invalid app"}
            )
        if params.get("grant_type") != "refresh_token":
            return json_reply(
                {"result": 100200104, "error": "unsupported_grant_type", "error_msg": "grant_type"}
            )
        token = params.get("refresh_token", "")
        now = self.clock()
        known = self.refresh_tokens.get(token)
        if known is None or known[0] <= now:
            return json_reply(
                {
                    "result": 100200102,
                    "error": "access_denied",
                    "error_msg": "invalid refresh_token",
                }
            )
        expiry, discarded_at = known
        if discarded_at is not None and discarded_at <= now:
            return json_reply(
                {
                    "result": 100200102,
                    "error": "access_denied",
                    "error_msg": "refreshToken.discarded",
                }
            )
        self.refresh_tokens[token] = (
            expiry,
            now + self.discard_grace if discarded_at is None else discarded_at,
        )
        access, refresh = "at-" + secrets.token_hex(8), "rt-" + secrets.token_hex(8)
        self.access_tokens[access] = now + self.access_ttl
        # The new refresh token keeps the original expiry (APP授权说明 §6.2).
        self.refresh_tokens[refresh] = (expiry, None)
        call.done = True
        return json_reply(
            {
                "result": 1,
                "access_token": access,
                "expires_in": self.access_ttl,
                "refresh_token": refresh,
                "refresh_token_expires_in": int(expiry - now),
                "open_id": self.open_id,
                "scopes": ["merchant_refund", "merchant_order"],
            }
        )
