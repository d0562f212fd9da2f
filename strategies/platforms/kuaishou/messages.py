"""Kuaishou's message push (开发文档 "消息服务说明"): decryption and the envelope.

The body is Base64 of AES/CBC/PKCS5Padding ciphertext; the key is the Base64-decoded message key
of the app (应用中心 → 详情 → 查看), the IV sixteen zero bytes. The plaintext is one JSON
envelope: ``eventId, bizId, userId, openId, appKey, event, info`` (a JSON string), ``createTime``
(ms) and ``test``. The platform also sends a heartbeat ``{"test":true}``; it is answered like any
message and carries no event.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from strategies.platforms.channel import PushEvent, PushKind, PushRejected, from_millis

IV = bytes(16)
ADD_REFUND = "kwaishop_aftersales_addRefund"
UPDATE_REFUND = "kwaishop_aftersales_updateRefund"

# The answer the platform waits for (HTTP 200 within 3 s), for a message and a heartbeat alike.
PUSH_ANSWER: dict[str, Any] = {"result": 1}

# A heartbeat the platform may send in clear (the guide quotes it unencrypted); nothing else is
# ever accepted without decryption.
_PLAIN_HEARTBEAT = {"test": True}


def _key(message_key: str) -> bytes:
    try:
        key = base64.b64decode(message_key, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the message key is not Base64") from exc
    if len(key) not in (16, 24, 32):
        raise ValueError(f"the message key is {len(key)} bytes; AES needs 16, 24 or 32")
    return key


def encrypt_message(plaintext: str, *, message_key: str) -> str:
    """What the platform sends for ``plaintext`` (the fake platform and tests use it)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_key(message_key)), modes.CBC(IV)).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def decrypt_message(body: bytes | str, *, message_key: str) -> str:
    """The plaintext of a pushed body; ``ValueError`` for anything that is not one."""
    raw = body.strip() if isinstance(body, bytes) else body.strip().encode("ascii", "replace")
    try:
        ciphertext = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the body is not Base64") from exc
    if not ciphertext or len(ciphertext) % 16:
        raise ValueError("the body is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(_key(message_key)), modes.CBC(IV)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        return plain.decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("the body does not decrypt with this message key") from exc


def envelope_parse(body: bytes, *, message_key: str) -> dict[str, Any]:
    """The decrypted envelope of a push, or ``PushRejected(400)``: nothing is stored for it."""
    try:
        plain = json.loads(body)
    except ValueError:
        plain = None
    if plain == _PLAIN_HEARTBEAT:
        return dict(_PLAIN_HEARTBEAT)
    try:
        text = decrypt_message(body, message_key=message_key)
        envelope = json.loads(text)
    except ValueError as exc:
        raise PushRejected(f"undecryptable push: {exc}", status=400) from exc
    if not isinstance(envelope, dict):
        raise PushRejected("the decrypted push is not a JSON object", status=400)
    return envelope


def events_from_envelope(envelope: dict[str, Any]) -> list[PushEvent]:
    """The after-sales events of one decrypted envelope ([] for a heartbeat)."""
    if envelope.get("test") is True:
        return []
    event_id = envelope.get("eventId")
    if not isinstance(event_id, str) or not event_id:
        raise PushRejected("the push has no eventId", status=400)
    event = str(envelope.get("event") or "")
    info: dict[str, Any] = {}
    raw_info = envelope.get("info")
    if isinstance(raw_info, str) and raw_info:
        try:
            parsed = json.loads(raw_info)
        except ValueError as exc:
            raise PushRejected("the push's info is not JSON", status=400) from exc
        if isinstance(parsed, dict):
            info = parsed
    elif isinstance(raw_info, dict):
        info = raw_info
    refund_id = info.get("refundId", envelope.get("bizId"))
    if event == ADD_REFUND:
        kind = PushKind.NEW
    elif event == UPDATE_REFUND:
        kind = PushKind.UPDATED
    else:
        kind = PushKind.OTHER
    moment = info.get("updateTime") or info.get("createTime") or envelope.get("createTime")
    return [
        PushEvent(
            event_id=event_id,
            kind=kind,
            event=event,
            aftersale_id="" if refund_id is None else str(refund_id),
            order_id="" if info.get("orderId") is None else str(info["orderId"]),
            merchant=str(envelope.get("openId") or ""),
            occurred_at=from_millis(moment) if isinstance(moment, int) else None,
            raw={**envelope, "info": info or raw_info},
        )
    ]
