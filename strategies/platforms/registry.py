"""From a shop's stored ``Channel`` row to its platform adapter (``platforms.channel.Channel``).

The one place that knows which adapter class serves which platform and how its credentials are
laid out; everything above it (push intake, fetch, poll, execution, tokens) is written once
against the neutral protocol.
"""

from __future__ import annotations

from typing import Any

from strategies.models import Channel as ChannelRow
from strategies.models import Platform
from strategies.platforms.channel import Channel
from strategies.platforms.douyin.channel import DouyinChannel
from strategies.platforms.douyin.client import DEFAULT_API_BASE as DOUYIN_API_BASE
from strategies.platforms.douyin.client import Credentials as DouyinCredentials
from strategies.platforms.douyin.client import DouyinError
from strategies.platforms.douyin.client import ErrorKind as DouyinErrorKind
from strategies.platforms.douyin.mapping import snapshot_of as douyin_snapshot
from strategies.platforms.kuaishou.channel import KuaishouChannel
from strategies.platforms.kuaishou.client import DEFAULT_API_BASE as KUAISHOU_API_BASE
from strategies.platforms.kuaishou.client import Credentials as KuaishouCredentials
from strategies.platforms.kuaishou.client import ErrorKind as KuaishouErrorKind
from strategies.platforms.kuaishou.client import KuaishouError
from strategies.platforms.kuaishou.mapping import snapshot_of as kuaishou_snapshot
from strategies.platforms.kuaishou.signing import HMAC_SHA256

CONNECTED = frozenset({Platform.KUAISHOU.value, Platform.DOUYIN.value})

# What a read (fetch, poll, refresh) raises when a retry may work.
CALL_ERRORS: tuple[type[Exception], ...] = (KuaishouError, DouyinError)


def is_auth_error(exc: Exception) -> bool:
    """The platform refused the channel's token or signature (refresh once, then alert)."""
    kind = getattr(exc, "kind", None)
    return kind in (KuaishouErrorKind.AUTH, DouyinErrorKind.AUTH)


class NotConnected(Exception):
    """The shop speaks the generic API: it has no marketplace adapter."""


def adapter_for(row: ChannelRow, *, deadline: float = 10.0) -> Channel:
    """The adapter of ``row`` with its credentials opened; ``deadline`` bounds each call."""
    if row.platform == Platform.KUAISHOU:
        ks = KuaishouCredentials(
            app_key=row.secret("app_key"),
            app_secret=row.secret("app_secret"),
            sign_secret=row.secret("sign_secret"),
            access_token=row.secret("access_token"),
            sign_method=row.sign_method or HMAC_SHA256,
            api_base=row.api_base or KUAISHOU_API_BASE,
        )
        return KuaishouChannel(
            credentials=ks,
            message_key=row.secret("message_key"),
            return_address_id=row.return_address_id,
            deadline=deadline,
        )
    if row.platform == Platform.DOUYIN:
        dy = DouyinCredentials(
            app_key=row.secret("app_key"),
            app_secret=row.secret("app_secret"),
            access_token=row.secret("access_token"),
            shop_id=row.merchant_id,
            api_base=row.api_base or DOUYIN_API_BASE,
        )
        return DouyinChannel(
            credentials=dy, return_address_id=row.return_address_id, deadline=deadline
        )
    raise NotConnected(row.platform)


def stored_version(platform: str, payload: Any) -> int | None:
    """The platform's version (Kuaishou ``updateTime``, Douyin ``update_time``) of a request as
    ATOM stored it (the fetch's payload): what a person saw. None when it cannot be read."""
    try:
        if platform == Platform.KUAISHOU:
            return kuaishou_snapshot(payload["refund"]).version or None
        if platform == Platform.DOUYIN:
            return douyin_snapshot(payload["detail"]).version or None
    except (KeyError, TypeError, ValueError):
        return None
    return None
