"""Reads for the platform-facing API: who is calling (the signature) and a request's status.

Both answer for one shop only: a shop's key never reaches another shop's data.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest
from django.utils.encoding import iri_to_uri
from django.utils.translation import gettext

from strategies.encryption import secret_open, secret_sealed_dummy
from strategies.models import AfterSaleRequest, Decision, Outcome, RequestStatus, Review, Shop
from strategies.pipeline.rows import shop_by_code
from strategies.platforms.generic.schema import MAX_ID_LENGTH, storable_text
from strategies.platforms.generic.signing import (
    SHOP_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_matches,
    signed_content,
)

_SHOP_CODE_RE = re.compile(r"[-a-zA-Z0-9_]{1,64}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")


class SignatureRejected(Exception):
    """The call is not authenticated; ``str(exc)`` says why, for the 401 body."""


def request_path_as_sent(request: HttpRequest) -> str:
    """The path the client sent (percent-encoding kept, no query string), for a GET signature.

    gunicorn (``RAW_URI``) and uWSGI or mod_wsgi (``REQUEST_URI``) pass it on. A server that
    does not (Django's runserver, the test client) gives only the decoded path: it is encoded
    again, which gives back the path sent for every id of API.md 1.1 (they need no encoding).
    """
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI") or ""
    if raw.startswith("/"):
        return raw.split("?", 1)[0]
    return iri_to_uri(request.path)


def shop_for_signed_request(
    *,
    shop_code: str | None,
    timestamp: str | None,
    signature: str | None,
    method: str,
    path: str,
    body: bytes,
    now: float | None = None,
) -> Shop:
    """The shop whose key signed the call (API.md "Authentication"): ``<timestamp>.<body>`` for a
    POST, ``<timestamp>.GET <path>`` for a GET.

    Checked on the raw bytes, before anything parses them; the timestamp must be within
    ``ATOM_SIGNATURE_MAX_SKEW_SECONDS`` of ``now``. A shop's previous secret still signs until
    its grace period ends (``rotate_shop_secret``). An unknown shop and a wrong signature are
    rejected alike and cost the same work: two secrets opened, two signatures computed and
    compared in constant time, whichever shop is named and whether it is mid-rotation. Opening
    is a look-up once a process decrypted that ciphertext (``secret_open``), the dummy's too;
    so a known shop's first call in a process (or one evicted from the 1,024 remembered) costs
    one Fernet decrypt (~10 µs) more than an unknown shop's: a difference seen once, not per
    call, and the signature is needed either way.
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
        shop = shop_by_code(shop_code)
    dummy = secret_sealed_dummy()
    current, previous, in_grace = dummy, dummy, False
    if shop is not None:
        current = shop.api_secret_sealed
        until = shop.api_secret_previous_until
        if shop.api_secret_previous_sealed and until is not None:
            previous, in_grace = shop.api_secret_previous_sealed, until.timestamp() > now
    content = signed_content(method=method, path=path, body=body)
    # Both always computed (no short cut): the work does not depend on the shop or its secrets.
    by_current = signature_matches(
        secret=secret_open(current), timestamp=timestamp, content=content, signature=signature
    )
    by_previous = signature_matches(
        secret=secret_open(previous), timestamp=timestamp, content=content, signature=signature
    )
    if shop is None or not (by_current | (by_previous & in_grace)):
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
    stored = list(decision.explanations) if decision is not None else []
    return {
        "aftersale_id": request.aftersale_id,
        "status": request.status,
        "decision": _decision_view(decision, shop) if decision is not None else None,
        # API.md: "every strategy tried". A request-level reason (no strategy to try) is the
        # decision's ``reason`` instead, so a client reading ``strategy.id`` never meets null.
        "explanations": [e for e in stored if e.get("strategy") is not None],
        "review": _review_view(request, decision, shop),
    }


# The statuses a person's review can have left (or be working on); only then is it looked up.
_REVIEWABLE = {
    RequestStatus.MANUAL_REVIEW,
    RequestStatus.FAILED,
    RequestStatus.UNKNOWN,
    RequestStatus.EXECUTED,
    RequestStatus.REFUSED,
    RequestStatus.DONE_ELSEWHERE,
}


def _review_view(
    request: AfterSaleRequest, decision: Decision | None, shop: Shop
) -> dict[str, Any] | None:
    """Who did what, when, with which result (the latest review), or None. An automatic
    approval executed as decided costs no query."""
    if request.status not in _REVIEWABLE or (
        request.status == RequestStatus.EXECUTED
        and decision is not None
        and decision.outcome == Outcome.APPROVED
    ):
        return None
    review = (
        Review.objects.filter(request_id=request.pk)
        .order_by("-created_at", "-id")
        .select_related("confirmation")
        .only(
            "action",
            "username",
            "created_at",
            "finished_at",
            "reason",
            "result",
            "detail",
            "confirmation__verdict",
            "confirmation__username",
            "confirmation__confirmed_at",
        )
        .first()
    )
    if review is None:
        return None
    local = shop.zone
    return {
        "action": review.action,
        "by": review.username,
        "at": review.created_at.astimezone(local).isoformat(timespec="milliseconds"),
        "reason": review.reason,
        "result": review.result,
        "finished_at": (
            review.finished_at.astimezone(local).isoformat(timespec="milliseconds")
            if review.finished_at
            else None
        ),
        # A review left unknown and confirmed by a person ("paid" / "not paid"), or None.
        "confirmation": _review_confirmation_view(review, local),
    }


def _review_confirmation_view(review: Review, local: Any) -> dict[str, Any] | None:
    try:
        confirmation = review.confirmation
    except ObjectDoesNotExist:
        return None
    return {
        "verdict": confirmation.verdict,
        "by": confirmation.username,
        "at": confirmation.confirmed_at.astimezone(local).isoformat(timespec="milliseconds"),
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
        "reason": next(
            (
                {"code": e["code"], "message": e["message"]}
                for e in decision.explanations
                if e.get("strategy") is None
            ),
            None,
        ),
    }
