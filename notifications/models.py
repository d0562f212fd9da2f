"""Alerts on a strategy's daily consumption, the admin inbox and the outgoing deliveries.

Exactly-once lives here, in PostgreSQL: an ``Alert`` row is the claim (unique per strategy, day
and level), a ``Delivery`` row is unique per (alert, channel) (a cap alert's) or per (notice,
channel) (a channel alert's: the notice is its claim) and is sent only by whoever wins the
conditional UPDATE that moves it to ``sending``. Every attempt is logged as a row.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from strategies.models import CAP_REACHED_PERCENT, CAP_WARNING_PERCENT, Shop, Strategy


class AlertLevel(models.IntegerChoices):
    # xgettext:no-python-format (a label, never %-formatted: "% o" is not a placeholder)
    WARNING = CAP_WARNING_PERCENT, _("95% of the daily cap")
    REACHED = CAP_REACHED_PERCENT, _("Daily cap reached")


class Alert(models.Model):
    """One consumption threshold crossed by one strategy on one shop-local day."""

    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("shop")
    )
    # Kept forever: a strategy that alerted is archived, never deleted (PRODUCT.md).
    strategy = models.ForeignKey(
        Strategy, on_delete=models.PROTECT, related_name="alerts", verbose_name=_("strategy")
    )
    day = models.DateField(_("shop-local day"))
    level = models.PositiveSmallIntegerField(_("level"), choices=AlertLevel.choices)
    consumed = models.DecimalField(_("consumed at the time"), max_digits=14, decimal_places=2)
    cap = models.DecimalField(_("daily cap at the time"), max_digits=14, decimal_places=2)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-created_at", "-id"]
        constraints = [
            # The claim: however many workers cross the line, one row per level per day.
            models.UniqueConstraint(
                fields=["strategy", "day", "level"], name="alert_once_per_strategy_day_level"
            ),
        ]

    def __str__(self) -> str:
        # Named as a merchant knows it: the strategy, the shop's day, the threshold.
        return gettext("%(strategy)s, %(day)s: %(level)s") % {
            "strategy": self.strategy.name,
            "day": self.day.isoformat(),
            "level": self.get_level_display(),
        }


class Notice(models.Model):
    """A message in the shop's admin inbox. Who has read it is per user (``NoticeRead``)."""

    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="notices", verbose_name=_("shop")
    )
    alert = models.OneToOneField(
        Alert,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notice",
        verbose_name=_("alert"),
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("message"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["shop", "-created_at", "-id"], name="notice_shop_recent"),
        ]

    def __str__(self) -> str:
        return self.title


class NoticeRead(models.Model):
    """One user has read one notice. Reading is each user's own: a colleague's inbox, and the
    shop's, stay as they were (a viewer reads, and changes nothing for anyone else)."""

    notice = models.ForeignKey(
        Notice, on_delete=models.CASCADE, related_name="reads", verbose_name=_("notice")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notice_reads",
        verbose_name=_("user"),
    )
    read_at = models.DateTimeField(_("read at"))

    class Meta:
        verbose_name = _("notice read")
        verbose_name_plural = _("notices read")
        constraints = [
            # Also the index of "unread by this user" (NOT EXISTS per notice).
            models.UniqueConstraint(fields=["notice", "user"], name="notice_read_once_per_user"),
        ]

    def __str__(self) -> str:
        return gettext("“%(notice)s” read by %(user)s") % {
            "notice": self.notice.title,
            "user": self.user,
        }


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("E-mail")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed for good")


class Delivery(models.Model):
    """One message of one alert on one channel; the text is rendered once, when claimed.

    The alert is a cap ``Alert`` or, for a connected marketplace's channel alert (no strategy,
    no day), the inbox ``Notice`` that announced it: exactly one of the two is set."""

    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("shop")
    )
    alert = models.ForeignKey(
        Alert,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("alert"),
    )
    notice = models.ForeignKey(
        Notice,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("notice"),
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    recipient = models.CharField(_("recipient"), max_length=254)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("message"))
    # Sent to the SMS provider so that a resend after a lost answer is recognised there.
    idempotency_key = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    status = models.CharField(
        _("status"), max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    # While `sending`: the claim expires here, so a worker killed mid-send is retried later.
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="delivery_once_per_channel"),
            models.UniqueConstraint(
                fields=["notice", "channel"], name="delivery_once_per_notice_channel"
            ),
            models.CheckConstraint(
                condition=Q(alert__isnull=False, notice__isnull=True)
                | Q(alert__isnull=True, notice__isnull=False),
                name="delivery_of_an_alert_or_a_notice",
            ),
        ]
        indexes = [
            # The sweep looks only at deliveries still in flight.
            models.Index(
                fields=["status", "next_attempt_at"],
                name="delivery_in_flight",
                condition=Q(status__in=["pending", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} → {self.recipient}"


class DeliveryAttempt(models.Model):
    """One try of one delivery, logged before the transport is called (``ok`` is None until it
    answers: a row left at None means the worker died mid-send)."""

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    at = models.DateTimeField(_("at"), db_index=True)
    ok = models.BooleanField(_("succeeded"), null=True)
    error = models.TextField(_("error"), blank=True)
    permanent = models.BooleanField(_("permanent failure"), default=False)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return gettext("%(delivery)s at %(at)s") % {
            "delivery": self.delivery,
            "at": f"{timezone.localtime(self.at):%Y-%m-%d %H:%M:%S}",
        }


class DeadlineReminder(models.Model):
    """A request named in a shop's daily digest of requests close to their platform deadline:
    once per request (the unique request), whatever the number of digest runs."""

    request = models.OneToOneField(
        "strategies.AfterSaleRequest",
        on_delete=models.CASCADE,
        related_name="deadline_reminder",
        verbose_name=_("after-sales request"),
    )
    shop = models.ForeignKey("strategies.Shop", on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(_("sent at"))

    class Meta:
        verbose_name = _("deadline reminder")
        verbose_name_plural = _("deadline reminders")

    def __str__(self) -> str:
        return gettext("%(request)s reminded at %(at)s") % {
            "request": self.request.aftersale_id,
            "at": f"{timezone.localtime(self.sent_at):%Y-%m-%d %H:%M}",
        }
