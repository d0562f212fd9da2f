"""Request signatures (API.md "Authentication"): HMAC-SHA256 with the shop's key over
``<timestamp>.<raw body>`` for a POST and ``<timestamp>.GET <path>`` for a GET, so headers
captured from one GET cannot read another request.

Used by the intake API to verify, and by the traffic simulator and tests to sign.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

SHOP_HEADER = "X-Atom-Shop"
TIMESTAMP_HEADER = "X-Atom-Timestamp"
SIGNATURE_HEADER = "X-Atom-Signature"
API_PREFIX = "/api/v1"
# What Django's escape_uri_path leaves as it is, less "/": an id is one path segment.
_PATH_SAFE = ":@&+$,!~*'()"


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``timestamp.body``."""
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_content(*, method: str, path: str = "", body: bytes = b"") -> bytes:
    """What follows ``<timestamp>.`` in the signed message: the body, or ``GET <path>``.

    ``path`` is the request path exactly as sent (percent-encoding included, no query string).
    """
    if method == "GET":
        return b"GET " + path.encode("utf-8")
    return body


def signature_matches(*, secret: str, timestamp: str, content: bytes, signature: str) -> bool:
    expected = sign(secret=secret, timestamp=timestamp, body=content)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace"))


def aftersale_path(aftersale_id: str) -> str:
    """``GET /api/v1/aftersales/{aftersale_id}``'s path, the id as one path segment."""
    # Quoting only what a URL path cannot carry: the ids of API.md 1.1 pass unchanged, so the
    # path signed is the path any server sees.
    return f"{API_PREFIX}/aftersales/{quote(aftersale_id, safe=_PATH_SAFE)}"


def signed_headers(
    *,
    shop_code: str,
    secret: str,
    body: bytes = b"",
    method: str = "POST",
    path: str = "",
    timestamp: int | None = None,
) -> dict[str, str]:
    """The three headers a platform client sends: over ``body`` for a POST, ``path`` for a GET."""
    if method == "GET" and not path:
        raise ValueError("a GET is signed over its path")
    ts = str(int(time.time()) if timestamp is None else timestamp)
    content = signed_content(method=method, path=path, body=body)
    return {
        SHOP_HEADER: shop_code,
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(secret=secret, timestamp=ts, body=content),
    }
