"""A fake Douyin open platform: a real local HTTP server for the tests and the demo.

Every call is checked as the official SDK sends it: ``app_key``, ``method`` matching the path,
``v=2``, ``sign_method=hmac-sha256``, the ``sign`` over the exact body with the app secret, the
body being ``param_json`` (keys sorted at every level, compact), a live ``access_token``. It
serves ``/afterSale/Detail``, ``/order/orderDetail`` and ``/afterSale/List``, agrees a request
once through ``/afterSale/operate`` (a changed ``update_time`` is refused, a second agreement
answers 售后状态错误), issues and rotates tokens (``/token/create``, ``/token/refresh``), and
pushes signed arrays to a URL. Script steps (``fakeserver``) make it misbehave.

Where the real error codes are not documented in what we could read, the fake's answer says so
(``FAKE_``); the client recognises those cases by the words the platform uses.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from strategies.platforms.douyin.client import (
    AFTERSALE_DETAIL,
    AFTERSALE_LIST,
    AFTERSALE_OPERATE,
    ORDER_DETAIL,
    TOKEN_CREATE,
    TOKEN_REFRESH,
)
from strategies.platforms.douyin.signing import event_sign, param_json, sign
from strategies.platforms.fakeserver import FakeCall, Reply, ScriptedServer, json_reply

DAY = 86400
# Documented by third-party transcriptions of the operate page (docs/platforms/douyin.md).
STATUS_ERROR = {
    "code": 50002,
    "msg": "业务处理失败",
    "sub_code": "isv.business-failed:20309541",
    "sub_msg": "售后状态错误",
}
# The fake's own choices.
FAKE_VERSION_CHANGED = {
    "code": 50002,
    "msg": "业务处理失败",
    "sub_code": "isv.business-failed:fake-version",
    "sub_msg": "售后单已更新 请获取最新的update_time",
}
FAKE_SIGN_FAILED = {"code": 40003, "msg": "签名校验失败", "sub_code": "isv.signature-invalid"}
FAKE_TOKEN_FAILED = {
    "code": 40003,
    "msg": "access_token无效",
    "sub_code": "isv.access-token-invalid",
}
FAKE_RATE_LIMITED = {"code": 40001, "msg": "请求过于频繁", "sub_code": "isv.access-limit-exceeded"}


def _error(answer: dict[str, Any]) -> Reply:
    return json_reply({**answer, "log_id": secrets.token_hex(8), "data": None})


@dataclass
class FakeDouyin(ScriptedServer):
    app_key: str = "7000000000000000000"
    app_secret: str = "fake-douyin-secret"
    shop_id: str = "88001"
    access_ttl: int = 7 * DAY
    clock: Any = time.time

    aftersales: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    agreements: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    refusals: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    access_tokens: dict[str, float] = field(default_factory=dict)
    refresh_tokens: dict[str, bool] = field(default_factory=dict)  # token -> still valid
    _msg_ids: Any = field(default_factory=lambda: itertools.count(1))

    # --- state ------------------------------------------------------------------------------

    def issue_tokens(self) -> tuple[str, str]:
        with self.lock:
            access, refresh = "dy-at-" + secrets.token_hex(8), "dy-rt-" + secrets.token_hex(8)
            self.access_tokens[access] = self.clock() + self.access_ttl
            self.refresh_tokens[refresh] = True
            return access, refresh

    def add_order(
        self,
        order_id: str,
        *,
        status: int = 3,
        pay_time: int | None = None,
        ship_time: int | None = None,
        items: Sequence[tuple[int, str, int, int]] = ((3001, "T-shirt", 1, 990),),
        buyer: str = "dy-buyer-1",
    ) -> dict[str, Any]:
        paid = pay_time if pay_time is not None else int(self.clock()) - 3 * DAY
        order = {
            "order_id": order_id,
            "order_status": status,
            "pay_time": paid,
            "ship_time": ship_time
            if ship_time is not None
            else (paid + DAY if status in (3, 101, 5) else 0),
            "doudian_open_id": buyer,
            "order_amount": sum(n * p for _, _, n, p in items),
            "sku_order_list": [
                {"product_id": pid, "product_name": name, "item_num": n, "origin_amount": price}
                for pid, name, n, price in items
            ],
        }
        with self.lock:
            self.orders[order_id] = order
        return order

    def add_aftersale(
        self,
        aftersale_id: str,
        *,
        order_id: str,
        amount: int,
        kind: int = 1,
        status: int = 6,
        reason: str = "不想要了",
    ) -> dict[str, Any]:
        """A request waiting for the seller; ``kind`` is ``after_sale_type`` (1 shipped refund
        only), ``amount`` in fen."""
        now = int(self.clock())
        info = {
            "after_sale_id": int(aftersale_id),
            "after_sale_status": status,
            "after_sale_type": kind,
            "refund_status": 1,
            "refund_total_amount": amount,
            "apply_time": now,
            "update_time": now,
            "reason": reason,
            "reason_code": 0,
            "got_pkg": 1 if kind != 2 else 0,
            "order_id": order_id,  # kept to build the answers
        }
        with self.lock:
            self.aftersales[aftersale_id] = info
        return info

    def update_aftersale(self, aftersale_id: str, **changes: Any) -> dict[str, Any]:
        with self.lock:
            info = self.aftersales[aftersale_id]
            info.update(changes)
            info["update_time"] = max(int(self.clock()), info["update_time"] + 1)
            return dict(info)

    # --- pushes -----------------------------------------------------------------------------

    def message(self, aftersale_id: str, *, tag: str = "200", msg_id: str = "") -> dict[str, Any]:
        with self.lock:
            info = dict(self.aftersales[aftersale_id])
        data = {
            "aftersale_id": info["after_sale_id"],
            "aftersale_status": info["after_sale_status"],
            "aftersale_type": info["after_sale_type"],
            "apply_time": info["apply_time"],
            "p_id": int(info["order_id"]),
            "s_id": int(info["order_id"]),
            "reason_code": info["reason_code"],
            "refund_amount": info["refund_total_amount"],
            "refund_post_amount": 0,
            "shop_id": int(self.shop_id),
            "update_time": info["update_time"],
        }
        return {
            "tag": tag,
            "msg_id": msg_id or f"dy-{next(self._msg_ids)}-{aftersale_id}-{info['update_time']}",
            "data": json.dumps(data, separators=(",", ":")),
        }

    def push(
        self, url: str, messages: list[dict[str, Any]], *, signature: str = "", timeout: float = 3.0
    ) -> requests.Response:
        """POSTs ``messages`` as the platform does: a JSON array, ``event-sign`` over the bytes."""
        body = json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return requests.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "app-id": self.app_key,
                "event-sign": signature
                or event_sign(app_key=self.app_key, app_secret=self.app_secret, body=body),
            },
            timeout=timeout,
            allow_redirects=False,
        )

    def verification(self, url: str) -> requests.Response:
        return self.push(url, [{"tag": "0", "msg_id": "", "data": "{}"}])

    # --- serving ----------------------------------------------------------------------------

    def api_of(self, verb: str, path: str, params: dict[str, str]) -> str:
        return path.strip("/").replace("/", ".")

    def rate_limited_answer(self, call: FakeCall) -> Reply:
        return _error(FAKE_RATE_LIMITED)

    def error_answer(self, call: FakeCall, step: Any) -> Reply:
        if step == "auth":
            return _error(FAKE_TOKEN_FAILED)
        if step == "status_error":
            return _error(STATUS_ERROR)
        if step == "system_error":
            return _error({"code": 20000, "msg": "系统错误", "sub_code": "isp.service-error:10002"})
        if isinstance(step, dict):
            return _error(step)
        return _error(
            {"code": 50002, "msg": "业务处理失败", "sub_code": f"isv.business-failed:{step}"}
        )

    def handle(self, call: FakeCall) -> Reply:
        problem = self._authenticate(call)
        if problem is not None:
            return _error(problem)
        param = json.loads(call.body)
        handler = {
            AFTERSALE_DETAIL: self._detail,
            ORDER_DETAIL: self._order,
            AFTERSALE_LIST: self._list,
            AFTERSALE_OPERATE: self._operate,
            TOKEN_CREATE: self._token_create,
            TOKEN_REFRESH: self._token_refresh,
        }.get(call.api)
        if handler is None:
            return _error(
                {
                    "code": 40004,
                    "msg": f"unknown method {call.api}",
                    "sub_code": "isv.parameter-invalid",
                }
            )
        return handler(call, param)

    def _authenticate(self, call: FakeCall) -> dict[str, Any] | None:
        query = call.query
        if call.verb != "POST":
            return {"code": 40004, "msg": "POST only", "sub_code": "isv.parameter-invalid"}
        for key in ("app_key", "method", "timestamp", "v", "sign_method", "sign"):
            if key not in query:
                return {"code": 40004, "msg": f"missing {key}", "sub_code": "isv.parameter-invalid"}
        if (
            query["method"] != call.api
            or query["v"] != "2"
            or query["sign_method"] != "hmac-sha256"
        ):
            return {
                "code": 40004,
                "msg": "method, v or sign_method",
                "sub_code": "isv.parameter-invalid",
            }
        if query["app_key"] != self.app_key:
            return {"code": 40004, "msg": "unknown app_key", "sub_code": "isv.app-key-invalid"}
        try:
            text = call.body.decode("utf-8")
            parsed = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            return {
                "code": 40004,
                "msg": "param_json is not JSON",
                "sub_code": "isv.parameter-invalid",
            }
        if not isinstance(parsed, dict) or param_json(parsed) != text:
            return {
                "code": 40004,
                "msg": "param_json must be sorted compact JSON",
                "sub_code": "isv.parameter-invalid",
            }
        expected = sign(
            app_key=self.app_key,
            app_secret=self.app_secret,
            method=query["method"],
            param_json=text,
            timestamp=query["timestamp"],
        )
        if not secrets.compare_digest(expected, query["sign"]):
            return FAKE_SIGN_FAILED
        if call.api in (TOKEN_CREATE, TOKEN_REFRESH):
            return None
        expiry = self.access_tokens.get(query.get("access_token", ""))
        if expiry is None or expiry <= self.clock():
            return FAKE_TOKEN_FAILED
        return None

    def _detail_of(self, info: dict[str, Any]) -> dict[str, Any]:
        order = self.orders.get(info["order_id"], {})
        public = {k: v for k, v in info.items() if k != "order_id"}
        return {
            "process_info": {"after_sale_info": public},
            "order_info": {
                "shop_order_id": int(info["order_id"]),
                "sku_order_infos": [
                    {
                        "product_id": sku["product_id"],
                        "product_name": sku["product_name"],
                        "item_quantity": sku["item_num"],
                        "pay_amount": sku["origin_amount"] * sku["item_num"],
                        "order_status": order.get("order_status"),
                    }
                    for sku in order.get("sku_order_list", [])
                ],
            },
        }

    def _ok(self, call: FakeCall, data: Any) -> Reply:
        call.done = True
        return json_reply(
            {
                "code": 10000,
                "msg": "success",
                "sub_code": "",
                "sub_msg": "",
                "log_id": secrets.token_hex(8),
                "data": data,
            }
        )

    def _detail(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        info = self.aftersales.get(str(param.get("after_sale_id")))
        if info is None:
            return _error(
                {
                    "code": 50002,
                    "msg": "业务处理失败",
                    "sub_code": "isv.business-failed:not-found",
                    "sub_msg": "售后单不存在",
                }
            )
        return self._ok(call, self._detail_of(info))

    def _order(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        order = self.orders.get(str(param.get("shop_order_id")))
        if order is None:
            return _error(
                {
                    "code": 50002,
                    "msg": "业务处理失败",
                    "sub_code": "isv.business-failed:not-found",
                    "sub_msg": "订单不存在",
                }
            )
        return self._ok(call, {"shop_order_detail": dict(order)})

    def _list(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        start, end = param.get("update_start_time"), param.get("update_end_time")
        page, size = param.get("page", 0), param.get("size", 10)
        if not isinstance(start, int) or not isinstance(end, int) or end < start:
            return _error(
                {"code": 40004, "msg": "update time range", "sub_code": "isv.parameter-invalid"}
            )
        if (
            not isinstance(size, int)
            or not 1 <= size <= 100
            or not isinstance(page, int)
            or page < 0
        ):
            return _error({"code": 40004, "msg": "page/size", "sub_code": "isv.parameter-invalid"})
        rows = sorted(
            (i for i in self.aftersales.values() if start <= i["update_time"] <= end),
            key=lambda i: (i["update_time"], i["after_sale_id"]),
        )
        chunk = rows[page * size : (page + 1) * size]
        items = [
            {
                "aftersale_info": {
                    "aftersale_id": str(i["after_sale_id"]),
                    "aftersale_status": i["after_sale_status"],
                    "aftersale_type": i["after_sale_type"],
                    "update_time": i["update_time"],
                    "apply_time": i["apply_time"],
                    "refund_amount": i["refund_total_amount"],
                },
                "order_info": {"shop_order_id": i["order_id"]},
            }
            for i in chunk
        ]
        more = (page + 1) * size < len(rows)
        return self._ok(
            call, {"items": items, "has_more": more, "total": len(rows), "page": page, "size": size}
        )

    def _operate(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        type_, items = param.get("type"), param.get("items")
        if type_ not in (201, 101, 202) or not isinstance(items, list) or len(items) != 1:
            return _error({"code": 40004, "msg": "type/items", "sub_code": "isv.parameter-invalid"})
        item = items[0]
        info = self.aftersales.get(str(item.get("aftersale_id")))
        if info is None:
            return _error(
                {
                    "code": 20000,
                    "msg": "系统错误",
                    "sub_code": "isp.service-error:10000",
                    "sub_msg": "存在无效的售后单",
                }
            )
        if info["after_sale_status"] != 6:
            return _error(STATUS_ERROR)
        version = item.get("update_time")
        if version is not None and version != info["update_time"]:
            return _error(FAKE_VERSION_CHANGED)
        if type_ == 202:
            # The fake's choice: a refusal of a refund-only request, with the seller's words.
            if info["after_sale_type"] not in (1, 2):
                return _error(STATUS_ERROR)
            if not str(item.get("reason") or "").strip():
                return _error({"code": 40004, "msg": "reason", "sub_code": "isv.parameter-invalid"})
            info["after_sale_status"] = 27
            info["update_time"] = max(int(self.clock()), info["update_time"] + 1)
            self.refusals.append((str(info["after_sale_id"]), item))
            return self._ok(
                call,
                {
                    "items": [
                        {"aftersale_id": info["after_sale_id"], "status_code": 0, "status_msg": ""}
                    ]
                },
            )
        if type_ == 201:
            if info["after_sale_type"] not in (1, 2):
                return _error(STATUS_ERROR)
            info.update(after_sale_status=12, refund_status=3)
        else:
            if info["after_sale_type"] != 0:
                return _error(STATUS_ERROR)
            if not (item.get("logistics") or {}).get("receiver_address_id"):
                return _error(
                    {
                        "code": 40004,
                        "msg": "logistics.receiver_address_id",
                        "sub_code": "isv.parameter-invalid",
                    }
                )
            info["after_sale_status"] = 7
        info["update_time"] = max(int(self.clock()), info["update_time"] + 1)
        self.agreements.append((str(info["after_sale_id"]), type_, item))
        return self._ok(
            call,
            {
                "items": [
                    {"aftersale_id": info["after_sale_id"], "status_code": 0, "status_msg": ""}
                ]
            },
        )

    def _grant(self, call: FakeCall) -> Reply:
        access, refresh = "dy-at-" + secrets.token_hex(8), "dy-rt-" + secrets.token_hex(8)
        self.access_tokens[access] = self.clock() + self.access_ttl
        self.refresh_tokens[refresh] = True
        return self._ok(
            call,
            {
                "access_token": access,
                "expires_in": self.access_ttl,
                "refresh_token": refresh,
                "scope": "SCOPE",
                "shop_id": self.shop_id,
                "shop_name": "Fake Douyin shop",
            },
        )

    def _token_create(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        if (
            param.get("grant_type") != "authorization_self"
            or str(param.get("shop_id")) != self.shop_id
        ):
            return _error(
                {"code": 40004, "msg": "grant_type/shop_id", "sub_code": "isv.parameter-invalid"}
            )
        return self._grant(call)

    def _token_refresh(self, call: FakeCall, param: dict[str, Any]) -> Reply:
        token = str(param.get("refresh_token", ""))
        if param.get("grant_type") != "refresh_token" or not self.refresh_tokens.get(token):
            return _error(
                {"code": 40004, "msg": "refresh_token无效", "sub_code": "isv.refresh-token-invalid"}
            )
        # The fake's choice: a refresh token works once (rotated like Kuaishou's).
        self.refresh_tokens[token] = False
        return self._grant(call)
