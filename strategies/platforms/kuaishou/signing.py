"""Kuaishou's request signature (开发文档 "API调用说明" §4), pinned to PLATFORMS.md's vectors.

The input is the parameters ``access_token, appkey, method, param, signMethod, timestamp,
version`` that are present (``None`` dropped), sorted by key, joined ``k=v`` with ``&``, then
``&signSecret=<sign secret>``. ``MD5``: lowercase hex MD5 of it; ``HMAC_SHA256``: Base64 of
HMAC-SHA256 keyed with the sign secret (not the app secret). The signature covers the exact
``param`` string sent, so the JSON is serialised once, here, and that string is both signed and
sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

HMAC_SHA256 = "HMAC_SHA256"
MD5 = "MD5"
SIGN_METHODS = (HMAC_SHA256, MD5)
VERSION = "1"

SIGNED_KEYS = ("access_token", "appkey", "method", "param", "signMethod", "timestamp", "version")


def param_json(param: Mapping[str, Any]) -> str:
    """The ``param`` string: compact JSON in the order given, non-ASCII kept as UTF-8 (as in the
    official example ``{"title":"短袖"}``)."""
    return json.dumps(param, ensure_ascii=False, separators=(",", ":"))


def sign_input(params: Mapping[str, str | None], *, sign_secret: str) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k in SIGNED_KEYS and v is not None)
    joined = "&".join(f"{key}={value}" for key, value in pairs)
    return f"{joined}&signSecret={sign_secret}"


def sign(params: Mapping[str, str | None], *, sign_secret: str) -> str:
    """The ``sign`` of ``params``, by the ``signMethod`` they carry (MD5 when absent, as the
    official SDK does)."""
    method = params.get("signMethod") or MD5
    text = sign_input(params, sign_secret=sign_secret).encode("utf-8")
    if method == HMAC_SHA256:
        digest = hmac.new(sign_secret.encode("utf-8"), text, hashlib.sha256).digest()
        return base64.b64encode(digest).decode("ascii")
    if method == MD5:
        return hashlib.md5(text).hexdigest()  # noqa: S324 - the platform's algorithm
    raise ValueError(f"unknown signMethod {method!r}: use HMAC_SHA256 or MD5")


def signature_matches(params: Mapping[str, str | None], *, sign_secret: str) -> bool:
    """Whether ``params['sign']`` is the signature of ``params`` (constant-time)."""
    given = params.get("sign") or ""
    try:
        expected = sign(params, sign_secret=sign_secret)
    except ValueError:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "replace"))


def signed_params(
    *,
    app_key: str,
    method: str,
    param: str,
    access_token: str | None,
    timestamp_ms: int,
    sign_method: str,
    sign_secret: str,
) -> dict[str, str]:
    """Every system parameter of one call, ``sign`` included."""
    if sign_method not in SIGN_METHODS:
        raise ValueError(f"unknown signMethod {sign_method!r}: use HMAC_SHA256 or MD5")
    params: dict[str, str] = {
        "appkey": app_key,
        "method": method,
        "version": VERSION,
        "param": param,
        "timestamp": str(timestamp_ms),
        "signMethod": sign_method,
    }
    if access_token:
        params["access_token"] = access_token
    params["sign"] = sign(params, sign_secret=sign_secret)
    return params
