"""Request signatures (API.md): HMAC-SHA256 over ``<timestamp>.<raw body>`` with the shop's key.

Used by the intake API to verify, and by the traffic simulator and tests to sign.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SHOP_HEADER = "X-Atom-Shop"
TIMESTAMP_HEADER = "X-Atom-Timestamp"
SIGNATURE_HEADER = "X-Atom-Signature"


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``timestamp.body``."""
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_matches(*, secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    expected = sign(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace"))


def signed_headers(
    *, shop_code: str, secret: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The three headers a platform client sends with ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        SHOP_HEADER: shop_code,
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(secret=secret, timestamp=ts, body=body),
    }
