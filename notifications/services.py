"""Alerts and their deliveries: claim, then act.

- ``alerts_check_ledger`` claims an ``Alert`` by inserting it under its unique (strategy, day,
  level): only the caller whose insert won creates the notice and the deliveries,
  so any number of workers and replays give one alert per strategy, level and shop-local day.
- ``delivery_send`` claims a delivery with a conditional UPDATE (pending and due, or a lease
  that expired) before calling the transport, so a replayed task never sends twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from strategies.formatting import money
from strategies.models import AfterSaleRequest, DailyLedger, Shop
from strategies.pipeline.publish import SEND_DELIVERY_TASK, publish_on_commit
from strategies.pipeline.review import QUEUE_STATUSES
from strategies.selectors import shop_today

from .models import (
    Alert,
    AlertLevel,
    Channel,
    DeadlineReminder,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Notice,
    NoticeRead,
)
from .transports import TransportError, transport_for

logger = logging.getLogger(__name__)

LEVELS: tuple[int, ...] = (AlertLevel.WARNING, AlertLevel.REACHED)
# The lowest level: a ledger below it needs no look.
FIRST_LEVEL = min(LEVELS)


def _reached(*, ledger: DailyLedger, cap: Decimal, level: int) -> bool:
    """Whether the ledger is at ``level`` percent of ``cap``.

    The cap is also reached once a request was passed over because its amount would pass it
    (``cap_refused_at``): approvals seldom add up to the cap exactly.
    """
    if level >= AlertLevel.REACHED and ledger.cap_refused_at is not None:
        return True
    return ledger.consumed * 100 >= cap * level


def _levels_reached(*, ledger: DailyLedger, cap: Decimal) -> list[int]:
    """Every level at or below the highest one reached: a level passed over by a jump counts
    as reached too, so it can never be announced after a higher one."""
    reached = [level for level in LEVELS if _reached(ledger=ledger, cap=cap, level=level)]
    return [level for level in LEVELS if reached and level <= max(reached)]


def _render(name: str, context: dict) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return render_to_string(f"notifications/{name}", context).strip()


def _claim_alert(*, ledger: DailyLedger, level: int, cap: Decimal) -> int | None:
    """The new alert's id, or None if another caller already holds this level for the day.

    The insert under the unique (strategy, day, level) is the claim; in its own savepoint, so a
    lost claim leaves the caller's transaction usable.
    """
    try:
        with transaction.atomic():
            return Alert.objects.create(
                shop_id=ledger.shop_id,
                strategy_id=ledger.strategy_id,
                day=ledger.day,
                level=level,
                consumed=ledger.consumed,
                cap=cap,
            ).pk
    except IntegrityError:
        # A concurrent claimer's insert waits for its COMMIT, so its row is visible by now.
        held = Alert.objects.filter(strategy_id=ledger.strategy_id, day=ledger.day, level=level)
        if held.exists():
            return None
        raise


def alerts_check_ledger(*, ledger_id: int) -> list[Alert]:
    """Raises the alerts the ledger has reached against its strategy's current cap.

    Idempotent: returns only the alerts this call created (usually none). A cap lowered below
    the day's consumption raises each level at most once: no storm. When one call claims
    several levels at once (95% and 100% in one jump), only the highest is announced (one
    notice, one SMS, one e-mail); the lower ones are claimed all the same, so they never fire
    later that day.
    """
    ledger = DailyLedger.objects.select_related("shop", "strategy").filter(pk=ledger_id).first()
    if ledger is None:
        return []
    cap = ledger.strategy.daily_cap
    levels = _levels_reached(ledger=ledger, cap=cap)
    if not levels:
        return []
    with transaction.atomic():
        claimed = [
            alert_id
            for alert_id in (_claim_alert(ledger=ledger, level=level, cap=cap) for level in levels)
            if alert_id is not None
        ]
        if not claimed:
            return []
        alerts = Alert.objects.select_related("shop", "strategy").filter(pk__in=claimed)
        created = list(alerts.order_by("level"))
        _alert_announce(alert=created[-1])
    for alert in created:
        logger.info(
            "alert %s%% for strategy %s on %s (%s of %s)%s",
            alert.level,
            ledger.strategy_id,
            ledger.day,
            ledger.consumed,
            cap,
            "" if alert is created[-1] else " (claimed silently: a higher level was announced)",
        )
    return created


@dataclass(frozen=True)
class AlertLinks:
    """Where a cap alert leads (paths of the admin; ``absolute`` prefixes ATOM_ADMIN_URL): its
    strategy (None once archived), the consumption dashboard on the alert's day, "pause this
    strategy" (a confirmation page that comes back to the notice) and "raise the cap" (the
    strategy form at its daily cap field)."""

    strategy: str | None
    dashboard: str
    pause: str | None
    raise_cap: str | None
    notice: str | None

    def absolute(self) -> AlertLinks:
        base = settings.ATOM_ADMIN_URL.rstrip("/")
        return AlertLinks(
            **{name: (base + value if value else value) for name, value in self.__dict__.items()}
        )


def alert_links(
    *, alert: Alert, notice: Notice | None = None, operator: bool = False
) -> AlertLinks:
    """An operator's links name the shop (``?shop=<id>``), as every operator page does."""
    shop_query = f"shop={alert.shop_id}&" if operator else ""
    dashboard = (
        reverse("monitoring:consumption") + "?" + shop_query + f"day={alert.day.isoformat()}"
    )
    notice_url = reverse("admin:notifications_notice_change", args=[notice.pk]) if notice else None
    if alert.strategy.archived_at is not None:
        return AlertLinks(None, dashboard, None, None, notice_url)
    change = reverse("admin:strategies_strategy_change", args=[alert.strategy_id])
    pause = reverse("admin:strategies_strategy_pause", args=[alert.strategy_id])
    if notice_url:
        pause += "?" + urlencode({"next": notice_url})
    return AlertLinks(
        strategy=change,
        dashboard=dashboard,
        pause=pause,
        # The form's daily cap field (its id in the admin's form): one click, then type.
        raise_cap=change + "#id_daily_cap",
        notice=notice_url,
    )


def _alert_announce(*, alert: Alert) -> None:
    """For the winner of the claim only: the inbox notice and one delivery per channel."""
    shop = alert.shop
    percent = (alert.consumed * 100 / alert.cap).quantize(Decimal("0.01"))
    context = {
        "shop": shop,
        "strategy": alert.strategy,
        "alert": alert,
        "level": alert.level,
        "reached": alert.level >= AlertLevel.REACHED,
        "percent": percent,
        # Money as every page shows it (100,000.00).
        "consumed": money(alert.consumed),
        "cap": money(alert.cap),
        # What may still be approved today: smaller requests can fit, larger ones go to a person.
        "left": money(max(alert.cap - alert.consumed, Decimal("0.00"))),
        "day": alert.day.isoformat(),
    }
    notice = Notice.objects.create(
        shop=shop,
        alert=alert,
        title=_render("notice_title.txt", context)[:200],
        body=_render("notice_body.txt", context),
    )
    # The SMS and the e-mail link to the notice, the strategy, the dashboard, "pause" and
    # "raise the cap" when the back office's address is known (ATOM_ADMIN_URL); the inbox
    # notice shows the same links on its page (NoticeAdmin.display_links).
    if settings.ATOM_ADMIN_URL:
        context["links"] = alert_links(alert=alert, notice=notice).absolute()
    now = timezone.now()
    deliveries = []
    if shop.phone:
        deliveries.append(
            Delivery(
                shop=shop,
                alert=alert,
                channel=Channel.SMS,
                recipient=shop.phone,
                body=_render("alert_sms.txt", context),
                next_attempt_at=now,
            )
        )
    if shop.alert_email and settings.ATOM_EMAIL_ENABLED:
        deliveries.append(
            Delivery(
                shop=shop,
                alert=alert,
                channel=Channel.EMAIL,
                recipient=shop.alert_email,
                subject=" ".join(_render("alert_email_subject.txt", context).split())[:200],
                body=_render("alert_email_body.txt", context),
                next_attempt_at=now,
            )
        )
    for delivery in deliveries:
        delivery.save()
        _enqueue_send(delivery_id=delivery.pk)


def _enqueue_send(*, delivery_id: int, countdown: float | None = None) -> None:
    publish_on_commit(SEND_DELIVERY_TASK, delivery_id, countdown=countdown)


@dataclass(frozen=True)
class SendResult:
    """What one ``delivery_send`` did: ``status`` after the call; ``retry_in`` seconds when a
    temporary failure put the delivery back to pending; ``claimed`` False when another worker
    holds it or it was already done."""

    status: str
    claimed: bool
    retry_in: int | None = None


def retry_delay(*, attempts: int) -> int:
    """Exponential back-off: base, 2x base, 4x base... capped."""
    base = settings.ATOM_NOTIFY_RETRY_BASE_SECONDS
    return int(min(base * 2 ** max(attempts - 1, 0), settings.ATOM_NOTIFY_RETRY_MAX_SECONDS))


def delivery_send(*, delivery_id: int, now: dt.datetime | None = None) -> SendResult:
    now = now or timezone.now()
    lease = dt.timedelta(seconds=settings.ATOM_NOTIFY_LEASE_SECONDS)
    due = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=DeliveryStatus.SENDING, lease_until__lt=now
    )
    max_attempts = settings.ATOM_NOTIFY_MAX_ATTEMPTS
    with transaction.atomic():
        # Every attempt used up (workers killed mid-send, each claim counted): give up for good
        # instead of claiming it again on every lease expiry.
        exhausted = Delivery.objects.filter(due, pk=delivery_id, attempts__gte=max_attempts).update(
            status=DeliveryStatus.FAILED,
            lease_until=None,
            last_error=f"gave up after {max_attempts} attempts without a result",
        )
        if exhausted:
            logger.warning("delivery %s failed for good: attempts used up", delivery_id)
            return SendResult(status=DeliveryStatus.FAILED, claimed=False)
        claimed = Delivery.objects.filter(due, pk=delivery_id).update(
            status=DeliveryStatus.SENDING, lease_until=now + lease, attempts=F("attempts") + 1
        )
        if claimed:
            delivery = Delivery.objects.get(pk=delivery_id)
            attempt = DeliveryAttempt.objects.create(delivery=delivery, at=now)
    if not claimed:
        status = Delivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first()
        return SendResult(status=status or "", claimed=False)

    try:
        try:
            transport_for(delivery.channel).notify(
                recipient=delivery.recipient,
                subject=delivery.subject,
                body=delivery.body,
                idempotency_key=str(delivery.idempotency_key),
            )
        except TransportError:
            raise
        except Exception as exc:
            # A bug or an unforeseen error in a transport: a temporary failure, recorded on the
            # attempt, never a delivery left in "sending" to be claimed again forever.
            logger.exception("delivery %s: unexpected error in the transport", delivery_id)
            raise TransportError(f"unexpected error: {type(exc).__name__}: {exc}") from exc
    except TransportError as exc:
        gave_up = not exc.permanent and delivery.attempts >= max_attempts
        error = exc.message
        if gave_up:
            error = f"{error} (gave up after {delivery.attempts} attempts)"
        with transaction.atomic():
            DeliveryAttempt.objects.filter(pk=attempt.pk).update(
                ok=False, error=error, permanent=exc.permanent or gave_up
            )
            if exc.permanent or gave_up:
                Delivery.objects.filter(pk=delivery_id).update(
                    status=DeliveryStatus.FAILED, last_error=error, lease_until=None
                )
                logger.warning("delivery %s failed for good: %s", delivery_id, error)
                return SendResult(status=DeliveryStatus.FAILED, claimed=True)
            delay = retry_delay(attempts=delivery.attempts)
            Delivery.objects.filter(pk=delivery_id).update(
                status=DeliveryStatus.PENDING,
                last_error=error,
                lease_until=None,
                next_attempt_at=now + dt.timedelta(seconds=delay),
            )
        logger.info("delivery %s failed, retry in %ss: %s", delivery_id, delay, error)
        return SendResult(status=DeliveryStatus.PENDING, claimed=True, retry_in=delay)

    with transaction.atomic():
        DeliveryAttempt.objects.filter(pk=attempt.pk).update(ok=True)
        Delivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.SENT, sent_at=timezone.now(), lease_until=None, last_error=""
        )
    return SendResult(status=DeliveryStatus.SENT, claimed=True)


def alerts_sweep(*, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Heals lost messages: re-checks the ledgers of today and yesterday (shop-local) at or
    above the first level, or refused for the cap, that still miss an alert, and re-enqueues
    deliveries that are due or whose lease expired.

    Yesterday is the grace window: an alert task lost just before the shop's midnight, or a
    beat run that came late, is still raised (for the day it belongs to)."""
    now = now or timezone.now()
    utc_day = now.astimezone(dt.UTC).date()
    # Today in any zone is within a day of the UTC date, yesterday within two; each row is then
    # pinned to its shop's own today and yesterday.
    candidates = (
        DailyLedger.objects.filter(
            Q(consumed__gte=F("strategy__daily_cap") * FIRST_LEVEL / 100)
            | Q(cap_refused_at__isnull=False),
            day__range=(utc_day - dt.timedelta(days=2), utc_day + dt.timedelta(days=1)),
        )
        .select_related("shop", "strategy")
        .order_by("id")
    )
    recent = []
    for row in candidates:
        today = shop_today(shop=row.shop, now=now)
        if row.day in (today, today - dt.timedelta(days=1)):
            recent.append(row)
    existing = set(
        Alert.objects.filter(
            strategy_id__in=[ledger.strategy_id for ledger in recent],
            day__in={ledger.day for ledger in recent},
        ).values_list("strategy_id", "day", "level")
    )
    checked = 0
    for ledger in recent:
        missing = [
            level
            for level in _levels_reached(ledger=ledger, cap=ledger.strategy.daily_cap)
            if (ledger.strategy_id, ledger.day, level) not in existing
        ]
        if missing:
            alerts_check_ledger(ledger_id=ledger.pk)
            checked += 1

    stale = Delivery.objects.filter(
        Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.SENDING, lease_until__lt=now)
    ).values_list("pk", flat=True)[:limit]
    resent = 0
    for delivery_id in stale:
        _enqueue_send(delivery_id=delivery_id)
        resent += 1
    return {"ledgers_checked": checked, "deliveries_enqueued": resent}


def notices_mark_read(
    *, notice_ids: list[int], user_id: int, now: dt.datetime | None = None
) -> int:
    """Marks the given notices read by one user (only those they had not read); returns how
    many changed. Nobody else's read state moves.

    The caller passes ids it already scoped to the user's shop."""
    already = set(
        NoticeRead.objects.filter(notice_id__in=notice_ids, user_id=user_id).values_list(
            "notice_id", flat=True
        )
    )
    new = [pk for pk in dict.fromkeys(notice_ids) if pk not in already]
    at = now or timezone.now()
    # A second tab reading the same notice at the same moment: the unique constraint keeps one.
    NoticeRead.objects.bulk_create(
        [NoticeRead(notice_id=pk, user_id=user_id, read_at=at) for pk in new],
        ignore_conflicts=True,
    )
    return len(new)


def delivery_attempts_purge(*, now: dt.datetime | None = None, days: int | None = None) -> int:
    days = settings.ATOM_NOTIFY_KEEP_ATTEMPTS_DAYS if days is None else days
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    deleted, _ = DeliveryAttempt.objects.filter(at__lt=cutoff).delete()
    return deleted


# --- The review queue's daily digest ---------------------------------------------------------


def review_digest_send(*, now: dt.datetime | None = None, hours: int | None = None) -> int:
    """E-mails each shop (with an alert address) the requests waiting for a person whose
    platform deadline falls within ``hours`` (``ATOM_REVIEW_DIGEST_HOURS``); each request is
    named in one digest only (``DeadlineReminder``). Returns the number of digests sent.

    Per shop, the reminders are recorded and the mail sent in one transaction: a send that
    fails rolls the reminders back, so the next run names them again."""
    if not settings.ATOM_EMAIL_ENABLED:
        return 0
    now = now or timezone.now()
    horizon = now + dt.timedelta(
        hours=settings.ATOM_REVIEW_DIGEST_HOURS if hours is None else hours
    )
    sent = 0
    for shop in Shop.objects.exclude(alert_email="").order_by("pk"):
        with transaction.atomic():
            due = list(
                AfterSaleRequest.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(
                    shop=shop,
                    status__in=QUEUE_STATUSES,
                    platform_deadline__gt=now,
                    platform_deadline__lte=horizon,
                    deadline_reminder__isnull=True,
                )
                .order_by("platform_deadline", "id")
                .only("pk", "aftersale_id", "amount", "platform_deadline")[:500]
            )
            if not due:
                continue
            DeadlineReminder.objects.bulk_create(
                [DeadlineReminder(request=r, shop=shop, sent_at=now) for r in due]
            )
            context = {
                "shop": shop,
                "hours": int((horizon - now).total_seconds() // 3600),
                "requests": [
                    {
                        "aftersale_id": r.aftersale_id,
                        "amount": money(r.amount),
                        "deadline": r.platform_deadline.astimezone(shop.zone).strftime(
                            "%Y-%m-%d %H:%M"
                        )
                        if r.platform_deadline
                        else "",
                    }
                    for r in due
                ],
            }
            transport_for(Channel.EMAIL).notify(
                recipient=shop.alert_email,
                subject=" ".join(_render("review_digest_subject.txt", context).split())[:200],
                body=_render("review_digest_body.txt", context),
                idempotency_key=f"review-digest-{shop.pk}-{now.isoformat()}",
            )
            sent += 1
    return sent


# --- connected marketplaces: a channel that cannot authenticate (PLATFORMS.md "Channels") ------


def channel_alert_raise(*, channel_id: int, kind: int) -> Notice | None:
    """The shop's inbox notice for a channel alert the core claimed once (``Channel.*_alerted_at``
    set by a conditional update), and its SMS and e-mail on the shop's channels as for a cap
    alert (one ``Delivery`` per notice and channel, sent after COMMIT). A redelivered task finds
    the notice already there and adds nothing: the channel's row lock serialises the look and
    the insert."""
    from strategies.models import Channel as ShopChannel
    from strategies.pipeline.publish import (
        CHANNEL_ALERT_EXPIRING,
        CHANNEL_ALERT_POLL,
        CHANNEL_ALERT_PUSH,
    )

    with transaction.atomic():
        row = (
            ShopChannel.objects.select_for_update().select_related("shop").filter(pk=channel_id)
        ).first()
        if row is None:
            return None
        expiring = kind == CHANNEL_ALERT_EXPIRING
        claimed_at = {
            CHANNEL_ALERT_EXPIRING: row.refresh_expiry_alerted_at,
            CHANNEL_ALERT_PUSH: row.push_alerted_at,
            CHANNEL_ALERT_POLL: row.poll_alerted_at,
        }.get(kind, row.auth_alerted_at)
        if claimed_at is None:
            return None  # cleared by a new authorisation since
        with translation.override(settings.LANGUAGE_CODE):
            platform = str(row.get_platform_display())
            if kind == CHANNEL_ALERT_PUSH:
                title = _("%(platform)s pushes to this shop are refused") % {"platform": platform}
                body = _(
                    "ATOM refused %(count)s pushes in a row from this shop's %(platform)s app "
                    "(%(error)s). Check that the message key (Kuaishou) or the app secret "
                    "(Douyin) entered in Channel is the one in the platform's console: until "
                    "then new requests arrive only through the poller, minutes late."
                ) % {
                    "platform": platform,
                    "count": row.push_refusals,
                    "error": row.last_error or "?",
                }
            elif kind == CHANNEL_ALERT_POLL:
                title = _("%(platform)s cannot be read for this shop") % {"platform": platform}
                body = _(
                    "ATOM failed to poll this shop's %(platform)s %(count)s times in a row "
                    "(%(error)s). Pushes still come in, but a lost push is no longer found "
                    "until polling works again; the channel's health panel shows the latest "
                    "error."
                ) % {
                    "platform": platform,
                    "count": row.poll_failures,
                    "error": row.last_error or "?",
                }
            elif expiring:
                title = _("%(platform)s authorisation expires soon") % {"platform": platform}
                expires = row.refresh_expires_at
                body = _(
                    "The refresh token of this shop's %(platform)s app expires on %(day)s. "
                    "Authorise the app again in the platform's console and enter the new "
                    "tokens (Channel), or requests will stop coming in and going out."
                ) % {"platform": platform, "day": expires.date().isoformat() if expires else "?"}
            else:
                title = _("%(platform)s refuses this shop's credentials") % {"platform": platform}
                body = _(
                    "%(platform)s refused the shop's token (%(error)s). Requests are not "
                    "fetched or approved until the app is authorised again and the new tokens "
                    "are entered (Channel)."
                ) % {"platform": platform, "error": row.last_error or "?"}
        if Notice.objects.filter(
            shop_id=row.shop_id, title=title[:200], created_at__gte=claimed_at
        ).exists():
            return None
        notice = Notice.objects.create(shop_id=row.shop_id, title=title[:200], body=body)
        _channel_alert_deliveries(shop=row.shop, notice=notice)
    logger.warning("channel %s alert %s raised for shop %s", channel_id, kind, row.shop_id)
    return notice


def _channel_alert_deliveries(*, shop: Shop, notice: Notice) -> None:
    """The SMS and the e-mail of a channel alert, on the channels a cap alert uses."""
    now = timezone.now()
    deliveries = []
    with translation.override(settings.LANGUAGE_CODE):
        if shop.phone:
            sms = _("[ATOM] %(shop)s: %(title)s. %(message)s") % {
                "shop": shop.name,
                "title": notice.title,
                "message": notice.body,
            }
            deliveries.append(
                Delivery(
                    shop=shop,
                    notice=notice,
                    channel=Channel.SMS,
                    recipient=shop.phone,
                    body=sms,
                    next_attempt_at=now,
                )
            )
        if shop.alert_email and settings.ATOM_EMAIL_ENABLED:
            greeting = _("Hello %(shop)s,") % {"shop": shop.name}
            footer = _("This message is sent once per authorisation of the shop's app.")
            deliveries.append(
                Delivery(
                    shop=shop,
                    notice=notice,
                    channel=Channel.EMAIL,
                    recipient=shop.alert_email,
                    subject=" ".join(notice.title.split())[:200],
                    body=f"{greeting}\n\n{notice.body}\n\n{footer}\n",
                    next_attempt_at=now,
                )
            )
    for delivery in deliveries:
        delivery.save()
        _enqueue_send(delivery_id=delivery.pk)
