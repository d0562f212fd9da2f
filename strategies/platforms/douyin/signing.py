"""Douyin's request signature v2 and push ``event-sign``, as the official Go SDK computes them
(``utils/sign_util.go``, ``utils/common_util.go``, ``core/doudian_op_api_client.go``), pinned to
PLATFORMS.md's vector.

- ``param_json``: the parameters as JSON, keys sorted at every level, compact, no HTML escaping
  (the SDK marshals, decodes into maps and re-encodes with ``SetEscapeHTML(false)``).
- ``sign``: lowercase hex HMAC-SHA256, keyed with the app secret, over ``app_secret + "app_key"
  + app_key + "method" + method + "param_json" + param_json + "timestamp" + timestamp + "v2" +
  app_secret``.
- ``event-sign`` of a push: lowercase hex MD5 of ``app_key + raw body + app_secret``
  (``message/doudian_sign.go``, a community addition to the SDK).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

SIGN_METHOD = "hmac-sha256"
VERSION = "2"


def param_json(param: Mapping[str, Any]) -> str:
    text = json.dumps(param, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Go's encoder escapes these two even without HTML escaping; Python's does not.
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def sign(*, app_key: str, app_secret: str, method: str, param_json: str, timestamp: str) -> str:
    pattern = (
        f"{app_secret}app_key{app_key}method{method}param_json{param_json}"
        f"timestamp{timestamp}v{VERSION}{app_secret}"
    )
    return hmac.new(app_secret.encode(), pattern.encode("utf-8"), hashlib.sha256).hexdigest()


def event_sign(*, app_key: str, app_secret: str, body: bytes) -> str:
    digest = hashlib.md5(app_key.encode() + body + app_secret.encode())  # noqa: S324 - theirs
    return digest.hexdigest()


def event_sign_matches(*, app_key: str, app_secret: str, body: bytes, signature: str) -> bool:
    expected = event_sign(app_key=app_key, app_secret=app_secret, body=body)
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
