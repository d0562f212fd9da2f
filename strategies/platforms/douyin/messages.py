"""Douyin's message push: the ``event-sign`` header, then a JSON array of ``{tag, msg_id, data}``
with ``data`` a JSON string. Tag ``"0"`` is the console's verification push. After-sales tags
(消息 tag 对照表, as the SDK's message structs name them): 200 buyer applied, 201 refund agreed,
206 refunded, 207 closed, 208 buyer modified; others are kept as ``other``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from strategies.platforms.channel import PushEvent, PushKind, PushRejected, from_seconds
from strategies.platforms.douyin.signing import event_sign_matches

SIGN_HEADER = "event-sign"
VERIFICATION_TAG = "0"
KINDS = {
    "200": PushKind.NEW,
    "201": PushKind.AGREED,
    "206": PushKind.AGREED,
    "207": PushKind.CLOSED,
    "208": PushKind.UPDATED,
}
# The answer the platform waits for (within 3 s).
PUSH_ANSWER: dict[str, Any] = {"code": 0, "msg": "success"}
_MOMENTS = ("modify_time", "close_time", "success_time", "agree_time", "apply_time")


def header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def push_events(
    body: bytes, headers: Mapping[str, str], *, app_key: str, app_secret: str
) -> list[PushEvent]:
    """The events of a signed push; ``PushRejected(401)`` for a wrong or missing ``event-sign``
    (checked on the raw bytes, in constant time, before parsing), ``PushRejected(400)`` for a
    body that is not the platform's array."""
    signature = header(headers, SIGN_HEADER)
    if not signature or not event_sign_matches(
        app_key=app_key, app_secret=app_secret, body=body, signature=signature
    ):
        raise PushRejected("wrong or missing event-sign", status=401)
    try:
        messages = json.loads(body)
    except ValueError as exc:
        raise PushRejected("the push is not JSON", status=400) from exc
    if not isinstance(messages, list):
        raise PushRejected("the push is not a JSON array", status=400)
    events = []
    for message in messages:
        if not isinstance(message, dict):
            raise PushRejected("a pushed message is not an object", status=400)
        tag = str(message.get("tag", ""))
        if tag == VERIFICATION_TAG:
            continue
        msg_id = message.get("msg_id")
        if not isinstance(msg_id, str) or not msg_id:
            raise PushRejected("a pushed message has no msg_id", status=400)
        raw_data = message.get("data")
        data: dict[str, Any] = {}
        if isinstance(raw_data, str) and raw_data:
            try:
                parsed = json.loads(raw_data)
            except ValueError as exc:
                raise PushRejected("a pushed message's data is not JSON", status=400) from exc
            data = parsed if isinstance(parsed, dict) else {}
        moment = next((data[k] for k in _MOMENTS if isinstance(data.get(k), int)), None)
        events.append(
            PushEvent(
                event_id=msg_id,
                kind=KINDS.get(tag, PushKind.OTHER),
                event=tag,
                aftersale_id="" if data.get("aftersale_id") is None else str(data["aftersale_id"]),
                order_id="" if data.get("p_id") is None else str(data["p_id"]),
                merchant="" if data.get("shop_id") is None else str(data["shop_id"]),
                occurred_at=from_seconds(moment) if moment else None,
                raw={**message, "data": data or raw_data},
            )
        )
    return events
