"""Reads for the platform-facing API: who is calling (the signature) and a request's status.

Both answer for one shop only: a shop's key never reaches another shop's data.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.translation import gettext

from strategies.models import AfterSaleRequest, Decision, Shop
from strategies.platforms.generic.schema import MAX_ID_LENGTH, storable_text
from strategies.platforms.generic.signing import (
    SHOP_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_matches,
)

_SHOP_CODE_RE = re.compile(r"[-a-zA-Z0-9_]{1,64}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
# Compared against when the shop is unknown, so both failures take the same work.
_UNKNOWN_SHOP_SECRET = "atom-unknown-shop"


class SignatureRejected(Exception):
    """The call is not authenticated; ``str(exc)`` says why, for the 401 body."""


def shop_for_signed_request(
    *,
    shop_code: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float | None = None,
) -> Shop:
    """The shop whose key signed ``<timestamp>.<body>`` (API.md "Authentication").

    Checked on the raw bytes, before anything parses them; the signature is compared in
    constant time; the timestamp must be within ``ATOM_SIGNATURE_MAX_SKEW_SECONDS`` of ``now``.
    An unknown shop and a wrong signature are rejected alike.
    """
    for name, value in (
        (SHOP_HEADER, shop_code),
        (TIMESTAMP_HEADER, timestamp),
        (SIGNATURE_HEADER, signature),
    ):
        if not value:
            raise SignatureRejected(gettext("Missing header %(header)s.") % {"header": name})
    assert shop_code is not None and timestamp is not None and signature is not None
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise SignatureRejected(gettext("X-Atom-Timestamp must be Unix time in seconds."))
    now = time.time() if now is None else now
    skew = settings.ATOM_SIGNATURE_MAX_SKEW_SECONDS
    if abs(int(now) - int(timestamp)) > skew:
        raise SignatureRejected(
            gettext("X-Atom-Timestamp is more than %(skew)d seconds away from the server clock.")
            % {"skew": skew}
        )
    shop = None
    if _SHOP_CODE_RE.fullmatch(shop_code):
        shop = Shop.objects.filter(code=shop_code).first()
    secret = shop.api_secret if shop is not None else _UNKNOWN_SHOP_SECRET
    matches = signature_matches(secret=secret, timestamp=timestamp, body=body, signature=signature)
    if shop is None or not matches:
        raise SignatureRejected(gettext("Unknown shop or wrong signature."))
    return shop


def request_status_for_api(*, shop: Shop, aftersale_id: str) -> dict[str, Any] | None:
    """API.md's view of one request of ``shop`` (None when the shop has no such request).

    One query: the request with its decision, if any (the raw payload is not loaded).
    """
    if not 0 < len(aftersale_id) <= MAX_ID_LENGTH or not storable_text(aftersale_id):
        return None  # could never have been stored (and PostgreSQL refuses NUL in a query)
    request = (
        AfterSaleRequest.objects.filter(shop=shop, aftersale_id=aftersale_id)
        .select_related("decision")
        .only(
            "aftersale_id",
            "status",
            "decision__outcome",
            "decision__scenario",
            "decision__strategy",
            "decision__strategy_name",
            "decision__action",
            "decision__amount",
            "decision__decided_at",
            "decision__explanations",
        )
        .first()
    )
    if request is None:
        return None
    try:
        decision: Decision | None = request.decision
    except Decision.DoesNotExist:
        decision = None
    return {
        "aftersale_id": request.aftersale_id,
        "status": request.status,
        "decision": _decision_view(decision, shop) if decision is not None else None,
        "explanations": list(decision.explanations) if decision is not None else [],
    }


def _decision_view(decision: Decision, shop: Shop) -> dict[str, Any]:
    strategy = None
    if decision.strategy_id is not None or decision.strategy_name:
        strategy = {"id": decision.strategy_id, "name": decision.strategy_name}
    return {
        "outcome": decision.outcome,
        "scenario": decision.scenario or None,
        "strategy": strategy,
        "action": decision.action or None,
        "amount": format(decision.amount.quantize(Decimal("0.01")), "f"),
        "decided_at": decision.decided_at.astimezone(shop.zone).isoformat(timespec="milliseconds"),
    }
