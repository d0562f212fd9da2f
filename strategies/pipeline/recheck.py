"""The platform is asked again about every execution left ``unknown`` (API.md): when an
answer left it unclear whether money moved, ATOM keeps the reservation and finds out.

A beat task runs this every few minutes. For each ``unknown`` approval of the last
``RECHECK_DAYS`` days, oldest first:

- **generic gateway**: the status check (``GET /aftersales/{id}``) says ``approved: true`` →
  paid (the request ``executed``, the reservation kept); ``approved: false`` → not paid (the
  request ``failed``, the reservation released once), as the execution itself trusts it after
  an ambiguous attempt; no answer, or anything but a JSON boolean → still ``unknown``;
- **connected marketplace**: the request read again is refunded or being refunded → paid;
  anything else stays ``unknown`` (a marketplace still waiting for the seller may yet apply a
  late agreement, so only a person says "not paid" there).

A settled one is recorded exactly as a person's confirmation would be (one
``ExecutionConfirmation``, no user: "the platform's status check"), through the same claim, so
a person confirming at the same moment and this check never both count. Reads only: nothing
is ever sent to the platform again from here.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from strategies.models import AfterSaleRequest, Channel, Outcome, RequestStatus
from strategies.pipeline.channels import ChannelUnavailable, channel_fetch
from strategies.pipeline.execute import decision_confirm_by_platform
from strategies.platforms.generic.gateways import gateway_get
from strategies.platforms.registry import CONNECTED

logger = logging.getLogger(__name__)

RECHECK_DAYS = 30
# One run stays short whatever the platform does: at most this many requests, and no new
# check once this many seconds have gone (the next run goes on).
RECHECK_BATCH = 200
RECHECK_BUDGET_SECONDS = 60.0


@dataclass
class Rechecked:
    paid: list[int] = field(default_factory=list)
    not_paid: list[int] = field(default_factory=list)
    still_unknown: list[int] = field(default_factory=list)


def unknown_executions_recheck(*, now: dt.datetime | None = None) -> Rechecked:
    """Asks the platform about each ``unknown`` execution and records what it settles."""
    now = now or timezone.now()
    started = time.monotonic()
    result = Rechecked()
    rows = list(
        AfterSaleRequest.objects.filter(
            status=RequestStatus.UNKNOWN,
            decision__outcome=Outcome.APPROVED,
            decision__executed_at__isnull=True,
            decision__failed_at__isnull=True,
            decision__decided_at__gte=now - dt.timedelta(days=RECHECK_DAYS),
        )
        .order_by("decision__decided_at", "pk")
        .values_list("decision__pk", "aftersale_id", "shop_id")[:RECHECK_BATCH]
    )
    shops = {shop_id for _, _, shop_id in rows}
    channels = {
        c.shop_id: c for c in Channel.objects.filter(platform__in=CONNECTED, shop_id__in=shops)
    }
    for decision_id, aftersale_id, shop_id in rows:
        if time.monotonic() - started > RECHECK_BUDGET_SECONDS:
            break
        channel = channels.get(shop_id)
        paid = _ask_channel(channel, aftersale_id) if channel else _ask_gateway(aftersale_id)
        if paid is None:
            result.still_unknown.append(decision_id)
            continue
        if decision_confirm_by_platform(decision_id=decision_id, paid=paid):
            (result.paid if paid else result.not_paid).append(decision_id)
    return result


def _ask_gateway(aftersale_id: str) -> bool | None:
    deadline = time.monotonic() + float(settings.ATOM_GATEWAY_TIMEOUT)
    try:
        return gateway_get().approved(aftersale_id=aftersale_id, deadline=deadline)
    except Exception:  # a misconfigured gateway settles nothing: asked again next run
        logger.warning("status of %s not checked", aftersale_id, exc_info=True)
        return None


def _ask_channel(channel: Channel, aftersale_id: str) -> bool | None:
    try:
        fetched = channel_fetch(channel, aftersale_id)
    except ChannelUnavailable:
        return None
    return True if fetched.snapshot.done else None
