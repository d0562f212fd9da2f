"""The domain: shops and their staff, orders, after-sales requests, strategies, the daily ledger
and the decision log.

Models hold data and the invariants the database can enforce; the rules that need more than one
row (at most 10 strategies per scenario, the cap, claiming a request) live in ``services``.
"""

import datetime as dt
import hashlib
import uuid
import zoneinfo
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from strategies.encryption import secret_open, secret_seal
from strategies.formatting import money

DEFAULT_DAILY_CAP = Decimal("50000.00")
SMALL_AMOUNT_DAILY_CAP = Decimal("100000.00")
SMALL_AMOUNT_DEFAULT_PER_REQUEST_CAP = Decimal("10.00")
SMALL_AMOUNT_MAX_PER_REQUEST_CAP = Decimal("20.00")
MAX_STRATEGIES_PER_SCENARIO = 10
# The consumption alerts (PRODUCT.md): percentages of a strategy's daily cap, lowest first.
CAP_WARNING_PERCENT = 95
CAP_REACHED_PERCENT = 100
# Validity dates lie within these shop-local days (API.md 1.1), far inside what every layer can
# read back: PostgreSQL stores year 10000, which psycopg cannot load.
VALIDITY_FIRST_DAY = dt.date(2000, 1, 1)
VALIDITY_LAST_DAY = dt.date(2099, 12, 31)
# The database knows no shop zone: its check allows the widest span any zone's 2000-2099 takes
# (2000-01-01 00:00 at UTC+14 to 2100-01-01 00:00 at UTC-12); the form, the services and the
# import check the exact shop-local bounds.
VALIDITY_DB_FROM = dt.datetime(1999, 12, 31, 10, 0, tzinfo=dt.UTC)
VALIDITY_DB_UNTIL = dt.datetime(2100, 1, 1, 12, 0, tzinfo=dt.UTC)
# API.md 1.1: shorter shop API secrets are refused (create_shop --secret, rotation).
MIN_API_SECRET_LENGTH = 32


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(_("Unknown time zone: %(tz)s"), params={"tz": value}) from exc


class Shop(models.Model):
    code = models.SlugField(_("shop code"), max_length=64, unique=True)
    name = models.CharField(_("shop name"), max_length=120)
    timezone = models.CharField(
        _("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_timezone]
    )
    phone = models.CharField(_("main account phone"), max_length=32, blank=True)
    alert_email = models.EmailField(_("alert e-mail"), blank=True)
    # The API secret is kept encrypted (strategies/encryption.py); read and set it as
    # ``api_secret``. After a rotation the previous one still signs until ``..._until``.
    api_secret_sealed = models.TextField(_("API secret (encrypted)"), editable=False)
    api_secret_previous_sealed = models.TextField(
        _("previous API secret (encrypted)"), editable=False, blank=True, default=""
    )
    api_secret_previous_until = models.DateTimeField(
        _("previous API secret accepted until"), editable=False, null=True, blank=True
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("shop")
        verbose_name_plural = _("shops")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def api_secret(self) -> str:
        return secret_open(self.api_secret_sealed)

    @api_secret.setter
    def api_secret(self, value: str) -> None:
        self.api_secret_sealed = secret_seal(value)


class Membership(models.Model):
    """A staff user belongs to exactly one shop; the role decides whether they may edit."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner (edits strategies)")
        VIEWER = "viewer", _("Viewer (read only)")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="membership",
        verbose_name=_("user"),
    )
    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("shop")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        verbose_name = _("staff membership")
        verbose_name_plural = _("staff memberships")

    def __str__(self) -> str:
        return gettext("%(user)s, %(role)s of %(shop)s") % {
            "user": self.user,
            "role": self.get_role_display(),
            "shop": self.shop.name,
        }


class Product(models.Model):
    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="products", verbose_name=_("shop")
    )
    product_id = models.CharField(_("platform product id"), max_length=64)
    title = models.CharField(_("title"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["shop", "product_id"]
        constraints = [
            models.UniqueConstraint(fields=["shop", "product_id"], name="product_unique_per_shop")
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.title}".strip()


class OrderStatus(models.TextChoices):
    PENDING_SHIPMENT = "pending_shipment", _("Pending shipment")
    SHIPPED = "shipped", _("Shipped, not received")
    RECEIVED = "received", _("Received")
    COMPLETED = "completed", _("Completed / settled")


class Order(models.Model):
    """An order as the platform last reported it: its status is the platform's, not the parcel's."""

    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="orders", verbose_name=_("shop")
    )
    order_id = models.CharField(_("platform order id"), max_length=64)
    status = models.CharField(_("order status"), max_length=24, choices=OrderStatus.choices)
    paid_at = models.DateTimeField(_("paid at"))
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(fields=["shop", "order_id"], name="order_unique_per_shop")
        ]

    def __str__(self) -> str:
        return self.order_id


class OrderItem(models.Model):
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="items", verbose_name=_("order")
    )
    # The platform's product id, not a foreign key: an order may hold products ATOM never saw.
    product_id = models.CharField(_("platform product id"), max_length=64)
    title = models.CharField(_("title"), max_length=200, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    price = models.DecimalField(_("price"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("order item")
        verbose_name_plural = _("order items")
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="order_item_quantity_positive"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="order_item_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} x{self.quantity}"


class AfterSaleType(models.TextChoices):
    REFUND_ONLY = "refund_only", _("Refund only")
    RETURN_REFUND = "return_refund", _("Return and refund")
    REFUND_NO_RETURN = "refund_no_return", _("Refund without return")


class Reason(models.TextChoices):
    NO_LONGER_NEEDED = "no_longer_needed", _("No longer needed / ordered by mistake")
    SEVEN_DAY_NO_REASON = "seven_day_no_reason", _("Seven-day no-reason return")
    NOT_SHIPPED_ON_TIME = "not_shipped_on_time", _("Not shipped on time")
    NOT_RECEIVED = "not_received", _("Not received")
    QUALITY_ISSUE = "quality_issue", _("Quality issue")
    WRONG_OR_MISSING_ITEM = "wrong_or_missing_item", _("Wrong or missing item")
    NOT_AS_DESCRIBED = "not_as_described", _("Not as described")
    OTHER = "other", _("Other")


class RequestStatus(models.TextChoices):
    # Not the order status "Received" (签收): in Chinese a request is 已接收, an order 已签收.
    RECEIVED = "received", pgettext_lazy("after-sales request status", "Received")
    MANUAL_REVIEW = "manual_review", _("Manual review")
    APPROVED = "approved", _("Approved")
    EXECUTED = "executed", _("Executed")
    FAILED = "failed", _("Failed")
    # An attempt's outcome was ambiguous and the platform could not say whether it paid: the
    # reservation is kept until a person confirms "paid" or "not paid" (API.md "Outbound").
    UNKNOWN = "unknown", _("Awaiting confirmation")
    # Finished by a person in the review queue (strategies/pipeline/review.py, docs/review.md).
    REFUSED = "refused", _("Refused")
    # Refunded outside ATOM: marked by a person in the review queue, or a connected platform
    # (PLATFORMS.md) said so without our execution. Not ours.
    DONE_ELSEWHERE = "done_elsewhere", _("Handled elsewhere")
    # The request changed or ended on the platform before our approval was carried out: not
    # executed, reservation released.
    SUPERSEDED = "superseded", _("Superseded")


class AfterSaleRequest(models.Model):
    """An after-sales request (售后单) as the platform pushed it; the raw payload is kept."""

    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="requests", verbose_name=_("shop")
    )
    aftersale_id = models.CharField(_("after-sales id"), max_length=64)
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="requests", verbose_name=_("order")
    )
    buyer_id = models.CharField(_("buyer id"), max_length=64)
    type = models.CharField(_("type"), max_length=24, choices=AfterSaleType.choices)
    reason = models.CharField(_("reason"), max_length=32, choices=Reason.choices)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    applied_at = models.DateTimeField(_("applied at"))
    risk_flag = models.BooleanField(_("flagged as risky by the platform"), default=False)
    # The platform's own deadline for the merchant's answer (Kuaishou expireTime, Douyin
    # status_deadline); none for the generic API.
    platform_deadline = models.DateTimeField(_("platform deadline"), null=True, blank=True)
    payload = models.JSONField(_("raw payload"))
    # SHA-256 of the canonical payload: a retry with the same body is told apart from a conflict.
    payload_digest = models.CharField(_("payload fingerprint (SHA-256)"), max_length=64)
    status = models.CharField(
        _("status"), max_length=16, choices=RequestStatus.choices, default=RequestStatus.RECEIVED
    )
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("after-sales request")
        verbose_name_plural = _("after-sales requests")
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "aftersale_id"], name="aftersale_unique_per_shop"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="aftersale_amount_positive"),
        ]
        indexes = [
            # The sweeper looks only at requests still in flight.
            models.Index(
                fields=["status", "updated_at"],
                name="aftersale_in_flight",
                condition=Q(status__in=["received", "approved"]),
            ),
            # The admin's "N requests wait for confirmation" notice counts these on every page.
            models.Index(fields=["shop"], name="aftersale_unknown", condition=Q(status="unknown")),
            # The review queue: what waits for a person, oldest deadline first. The status is
            # the condition, not a key column: a key (shop, status, ...) cannot give the three
            # statuses' rows in deadline order, and a page then sorted every row of the shop's
            # queue (bench/monitor, a million rows).
            models.Index(
                fields=["shop", "platform_deadline", "applied_at", "id"],
                name="aftersale_review_queue",
                condition=Q(status__in=["manual_review", "failed", "unknown"]),
            ),
            # One status in that order (the queue's "failed" and "unknown" tabs, a few percent of
            # it): walking the index above for them filtered through most of the queue.
            models.Index(
                fields=["shop", "status", "platform_deadline", "applied_at", "id"],
                name="aftersale_review_queue_status",
                condition=Q(status__in=["manual_review", "failed", "unknown"]),
            ),
        ]

    def __str__(self) -> str:
        return self.aftersale_id


class Scenario(models.TextChoices):
    TAGGED_REFUND_NO_RETURN = (
        "tagged_refund_no_return",
        _("After shipment: tagged refund, no return"),
    )
    PRE_SHIPMENT_REFUND = "pre_shipment_refund", _("Before shipment: automatic refund only")
    POST_SHIPMENT_NO_RETURN = "post_shipment_no_return", _("After shipment: refund only, no return")
    POST_SHIPMENT_REFUND = "post_shipment_refund", _("After shipment: automatic refund only")
    POST_SHIPMENT_RETURN_REFUND = (
        "post_shipment_return_refund",
        _("After shipment: automatic return and refund"),
    )


# Scenarios are tried in this fixed order; the first hit decides (PRODUCT.md).
SCENARIO_ORDER: tuple[str, ...] = (
    Scenario.TAGGED_REFUND_NO_RETURN,
    Scenario.PRE_SHIPMENT_REFUND,
    Scenario.POST_SHIPMENT_NO_RETURN,
    Scenario.POST_SHIPMENT_REFUND,
    Scenario.POST_SHIPMENT_RETURN_REFUND,
)
# Scenarios whose strategies may restrict products / order status. The tagged scenario takes
# neither: the seeds leave products out, and API.md's strategy file ignores its order_status
# (the scenario itself already requires a shipped or received order with the platform's tag).
SCENARIOS_WITH_PRODUCTS = frozenset(SCENARIO_ORDER) - {Scenario.TAGGED_REFUND_NO_RETURN}
SCENARIOS_WITH_ORDER_STATUS = frozenset(SCENARIO_ORDER) - {
    Scenario.PRE_SHIPMENT_REFUND,
    Scenario.TAGGED_REFUND_NO_RETURN,
}


class StrategyStatus(models.TextChoices):
    INACTIVE = "inactive", _("Inactive")
    TRIAL = "trial", _("Trial run")
    ACTIVE = "active", _("Active")


class StrategyTemplate(models.TextChoices):
    NONE = "", _("Custom")
    SMALL_AMOUNT = "small_amount", _("Small-amount automatic refund")


class SettingGroup(NamedTuple):
    """One group of the strategy form, as the seeds group the settings."""

    title: str | Promise
    # Model fields (``products`` is the many-to-many); a pair is shown on one line.
    fields: tuple[str | tuple[str, str], ...]
    # The scenarios the group applies to; ``None``: every scenario.
    scenarios: frozenset[str] | None = None

    def names(self) -> tuple[str, ...]:
        return tuple(n for f in self.fields for n in ((f,) if isinstance(f, str) else f))


# The settings a merchant gives a strategy, written once, in the seeds' order and groups. The
# form (fields and fieldsets), the services' editable fields and the strategy file's keys derive
# from it; the matcher's ``StrategySnapshot`` is held to it by a test.
STRATEGY_SETTING_GROUPS: tuple[SettingGroup, ...] = (
    SettingGroup(_("Basic information"), ("name", "remark")),
    SettingGroup(_("Status"), ("status",)),
    SettingGroup(_("Validity period"), ("valid_from", "valid_until")),
    SettingGroup(_("Execution time"), ("window_start", "window_end")),
    SettingGroup(_("Products"), ("products",), SCENARIOS_WITH_PRODUCTS),
    SettingGroup(
        _("Order status"),
        (
            "covers_shipped",
            ("shipped_min_days", "shipped_max_days"),
            "covers_received",
            ("received_min_days", "received_max_days"),
        ),
        SCENARIOS_WITH_ORDER_STATUS,
    ),
    SettingGroup(_("Daily total cap / per-request cap"), ("daily_cap", "per_request_cap")),
    SettingGroup(_("Application time limit"), ("max_hours_since_payment",)),
    SettingGroup(_("After-sales reasons"), ("reasons",)),
    SettingGroup(_("Risk control"), ("risk_control",)),
    SettingGroup(_("Buyer limit"), ("max_per_buyer_30d",)),
)
STRATEGY_SETTINGS: tuple[str, ...] = tuple(n for g in STRATEGY_SETTING_GROUPS for n in g.names())
# Set once, when the strategy is made (from a template, or by an import): never by the form.
STRATEGY_CREATE_SETTINGS: tuple[str, ...] = ("template",)


def setting_applies(name: str, scenario: str) -> bool:
    """Whether setting ``name`` is used by strategies of ``scenario``."""
    group = next(g for g in STRATEGY_SETTING_GROUPS if name in g.names())
    return group.scenarios is None or scenario in group.scenarios


# Constraint name -> the setting its message is shown next to (the form, the services, the
# strategy file); filled by ``_check``.
STRATEGY_CONSTRAINT_FIELDS: dict[str, str] = {}
STRATEGY_NAME_UNIQUE = "strategy_name_unique_per_shop"
STRATEGY_CONSTRAINT_FIELDS[STRATEGY_NAME_UNIQUE] = "name"


def _check(name: str, field: str, condition: Q, message: str | Promise) -> models.CheckConstraint:
    STRATEGY_CONSTRAINT_FIELDS[name] = field
    return models.CheckConstraint(
        condition=condition,
        name=name,
        violation_error_message=message,  # type: ignore[arg-type]
    )


def _within_validity_bounds(field: str) -> Q:
    return Q(**{f"{field}__isnull": True}) | Q(
        **{f"{field}__gte": VALIDITY_DB_FROM, f"{field}__lt": VALIDITY_DB_UNTIL}
    )


_VALIDITY_BOUNDS_MESSAGE = _("Give a date within 2000-01-01 and 2099-12-31 (shop time).")


class LiveStrategyManager(models.Manager["Strategy"]):
    """Strategies not archived: the lists, the matcher, the counts and every write see these."""

    def get_queryset(self) -> "models.QuerySet[Strategy]":
        return super().get_queryset().filter(archived_at__isnull=True)


class Strategy(models.Model):
    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="strategies", verbose_name=_("shop")
    )
    scenario = models.CharField(_("scenario"), max_length=32, choices=Scenario.choices)
    template = models.CharField(
        _("template"), max_length=16, choices=StrategyTemplate.choices, default="", blank=True
    )
    # Priority within (shop, scenario): 1 is tried first. Non-unique and indexed as
    # django-admin-sortable2 requires; the services keep it 1..n.
    position = models.PositiveIntegerField(_("priority"), default=0, db_index=True)
    name = models.CharField(_("strategy name"), max_length=60)
    remark = models.CharField(_("remark"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=StrategyStatus.choices, default=StrategyStatus.INACTIVE
    )

    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    window_start = models.TimeField(_("daily window from"), null=True, blank=True)
    window_end = models.TimeField(_("daily window until"), null=True, blank=True)

    products = models.ManyToManyField(
        Product, blank=True, related_name="strategies", verbose_name=_("products")
    )

    covers_shipped = models.BooleanField(_("shipped, not received"), default=True)
    shipped_min_days = models.PositiveIntegerField(
        _("min days since shipment"), null=True, blank=True
    )
    shipped_max_days = models.PositiveIntegerField(
        _("max days since shipment"), null=True, blank=True
    )
    covers_received = models.BooleanField(_("received"), default=True)
    received_min_days = models.PositiveIntegerField(
        _("min days since receipt"), null=True, blank=True
    )
    received_max_days = models.PositiveIntegerField(
        _("max days since receipt"), null=True, blank=True
    )

    daily_cap = models.DecimalField(
        _("daily total cap"), default=DEFAULT_DAILY_CAP, max_digits=14, decimal_places=2
    )
    per_request_cap = models.DecimalField(
        _("per-request cap"), null=True, blank=True, max_digits=14, decimal_places=2
    )
    max_hours_since_payment = models.PositiveIntegerField(
        _("max hours between payment and request"), null=True, blank=True
    )
    reasons = models.JSONField(_("accepted reasons"), default=list, blank=True)
    risk_control = models.BooleanField(_("risk control"), default=True)
    max_per_buyer_30d = models.PositiveIntegerField(
        _("max auto-approvals per buyer in 30 days"), null=True, blank=True
    )

    # Every write adds one (settings, status, priority, archiving): a save made from a form
    # opened at an older version is refused (``strategy_update``), never silently undoes.
    version = models.PositiveIntegerField(_("version"), default=1)
    # Set when a strategy that decided requests is deleted: it leaves the lists, the matcher and
    # the 10-per-scenario count, and its decisions, ledgers, alerts and history still name it.
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords(
        excluded_fields=["updated_at"],
        # Not simple-history's "historical 策略": the pages name a past version as such.
        verbose_name=_("strategy version"),
        verbose_name_plural=_("strategy versions"),
    )

    # Archived ones too (history, the decision log's past); related access (decision.strategy)
    # uses Django's plain base manager, so a decision always finds its strategy.
    all_objects = models.Manager()
    objects = LiveStrategyManager()

    class Meta:
        # The live ones are the default (the admin, related managers, counts).
        default_manager_name = "objects"
        verbose_name = _("strategy")
        verbose_name_plural = _("strategies")
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["shop", "scenario", "position"], name="strategy_priority")]
        constraints = [
            # Names tell strategies apart in the lists, the log and the alerts: one per shop
            # among the live ones (an archived strategy's name may be taken again).
            models.UniqueConstraint(
                fields=["shop", "name"],
                condition=Q(archived_at__isnull=True),
                name=STRATEGY_NAME_UNIQUE,
                violation_error_message=_(
                    "This shop already has a strategy of this name: choose another name."
                ),
            ),
            _check(
                "strategy_daily_cap_positive",
                "daily_cap",
                Q(daily_cap__gt=0),
                _("The daily total cap must be above zero."),
            ),
            _check(
                "strategy_per_request_cap_positive",
                "per_request_cap",
                Q(per_request_cap__isnull=True) | Q(per_request_cap__gt=0),
                _("The per-request cap must be above zero."),
            ),
            _check(
                "strategy_per_request_cap_within_daily",
                "per_request_cap",
                Q(per_request_cap__isnull=True) | Q(per_request_cap__lte=models.F("daily_cap")),
                _("The per-request cap must not exceed the daily total cap."),
            ),
            _check(
                "strategy_small_amount_cap_at_most_20",
                "per_request_cap",
                ~Q(template=StrategyTemplate.SMALL_AMOUNT)
                | Q(
                    per_request_cap__isnull=False,
                    per_request_cap__lte=SMALL_AMOUNT_MAX_PER_REQUEST_CAP,
                ),
                _(
                    "The small-amount strategy's per-request cap must be set and may be at most "
                    "20.00."
                ),
            ),
            _check(
                "strategy_window_both_or_neither",
                "window_end",
                Q(window_start__isnull=True, window_end__isnull=True)
                | Q(window_start__isnull=False, window_end__isnull=False),
                _("Give both the start and the end of the daily window, or neither (all day)."),
            ),
            _check(
                "strategy_window_not_empty",
                "window_end",
                Q(window_start__isnull=True)
                | Q(window_end__isnull=True)
                | ~Q(window_start=models.F("window_end")),
                _("The window's end must differ from its start."),
            ),
            _check(
                "strategy_validity_well_formed",
                "valid_until",
                Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_from__lt=models.F("valid_until")),
                _("The end of the validity period must be after its start."),
            ),
            _check(
                "strategy_valid_from_within_bounds",
                "valid_from",
                _within_validity_bounds("valid_from"),
                _VALIDITY_BOUNDS_MESSAGE,
            ),
            _check(
                "strategy_valid_until_within_bounds",
                "valid_until",
                _within_validity_bounds("valid_until"),
                _VALIDITY_BOUNDS_MESSAGE,
            ),
            _check(
                "strategy_shipped_days_well_formed",
                "shipped_max_days",
                Q(shipped_min_days__isnull=True)
                | Q(shipped_max_days__isnull=True)
                | Q(shipped_min_days__lte=models.F("shipped_max_days")),
                _("The maximum days since shipment must not be below the minimum."),
            ),
            _check(
                "strategy_received_days_well_formed",
                "received_max_days",
                Q(received_min_days__isnull=True)
                | Q(received_max_days__isnull=True)
                | Q(received_min_days__lte=models.F("received_max_days")),
                _("The maximum days since receipt must not be below the minimum."),
            ),
            _check(
                "strategy_covers_an_order_status",
                "covers_received",
                ~Q(scenario__in=sorted(str(s) for s in SCENARIOS_WITH_ORDER_STATUS))
                | Q(covers_shipped=True)
                | Q(covers_received=True),
                _("Choose at least one order status."),
            ),
            _check(
                "strategy_hours_since_payment_positive",
                "max_hours_since_payment",
                Q(max_hours_since_payment__isnull=True) | Q(max_hours_since_payment__gte=1),
                _("Give at least 1 hour, or leave it empty."),
            ),
            _check(
                "strategy_buyer_limit_positive",
                "max_per_buyer_30d",
                Q(max_per_buyer_30d__isnull=True) | Q(max_per_buyer_30d__gte=1),
                _("Give at least 1, or leave it empty for no limit."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def validate_constraints(self, exclude: Any = None) -> None:
        """Each check constraint's message goes next to the setting it is about (Django puts
        them all at the top of the form)."""
        errors: dict[str, list[ValidationError]] = {}
        for constraint in self._meta.constraints:
            try:
                constraint.validate(type(self), self, exclude=exclude)
            except ValidationError as exc:
                field = STRATEGY_CONSTRAINT_FIELDS.get(constraint.name, NON_FIELD_ERRORS)
                errors.setdefault(field, []).extend(exc.error_list)
        if errors:
            raise ValidationError(errors)


class PopularStrategy(Strategy):
    """The menu's 热门策略 (popular strategies), where the seeds put the ready-made
    small-amount strategy (售后助手 > 热门策略 > 小额自动仅退款): no table of its own, its admin
    entry opens the template (strategies/admin/popular.py)."""

    class Meta:
        proxy = True
        verbose_name = _("popular strategy")
        verbose_name_plural = _("popular strategies")


class DailyLedger(models.Model):
    """What one strategy auto-approved on one shop-local day.

    Created lazily by the decision service (``ON CONFLICT DO NOTHING``), so a new day starts at
    zero without any midnight job; the cap is enforced by one conditional UPDATE on this row.
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="ledgers")
    # Money records are kept: a strategy that has ledgers is archived, never deleted.
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="ledgers")
    day = models.DateField(_("shop-local day"))
    consumed = models.DecimalField(
        _("approved amount"), default=Decimal("0.00"), max_digits=14, decimal_places=2
    )
    approved_count = models.PositiveIntegerField(_("approved requests"), default=0)
    # Set once, by the first request of the day this strategy passed over because its amount
    # would pass the cap: from then on requests go to manual review, so the 100% alert is due
    # even when the approvals never add up to the cap exactly.
    cap_refused_at = models.DateTimeField(_("first refused for the cap at"), null=True, blank=True)

    class Meta:
        verbose_name = _("daily consumption")
        verbose_name_plural = _("daily consumption")
        constraints = [
            models.UniqueConstraint(fields=["strategy", "day"], name="ledger_one_row_per_day"),
            models.CheckConstraint(
                condition=Q(consumed__gte=0), name="ledger_consumed_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["shop", "day"], name="ledger_shop_day")]

    def __str__(self) -> str:
        return gettext("%(strategy)s on %(day)s: %(consumed)s used") % {
            "strategy": self.strategy.name,
            "day": self.day.isoformat(),
            "consumed": money(self.consumed),
        }


class Outcome(models.TextChoices):
    APPROVED = "approved", _("Approved")
    MANUAL_REVIEW = "manual_review", _("Manual review")


class Action(models.TextChoices):
    APPROVE_REFUND = "approve_refund", _("Approve refund")
    APPROVE_RETURN = "approve_return", _("Approve return")


class Decision(models.Model):
    """The decision log: one row per request, inserted once (the unique request claims it).

    Search fields are copied from the request so the monitor can filter and order on tens of
    millions of rows with shop-scoped indexes and no joins.
    """

    request = models.OneToOneField(
        AfterSaleRequest,
        on_delete=models.CASCADE,
        related_name="decision",
        verbose_name=_("request"),
    )
    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="decisions", verbose_name=_("shop")
    )
    aftersale_id = models.CharField(_("after-sales id"), max_length=64)
    order_id = models.CharField(_("order id"), max_length=64)
    reason = models.CharField(_("reason"), max_length=32, choices=Reason.choices)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    scenario = models.CharField(_("scenario"), max_length=32, choices=Scenario.choices, blank=True)
    # PROTECT: a strategy that decided anything is archived, never deleted (PRODUCT.md).
    strategy = models.ForeignKey(
        Strategy,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="decisions",
        verbose_name=_("strategy"),
    )
    strategy_name = models.CharField(_("strategy name"), max_length=60, blank=True)
    # The simple-history row of the strategy as it was when it decided.
    strategy_version = models.PositiveBigIntegerField(null=True, blank=True)
    action = models.CharField(_("action"), max_length=24, choices=Action.choices, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    explanations = models.JSONField(_("explanations"), default=list)
    buyer_id = models.CharField(_("buyer id"), max_length=64)
    # The reservation this approval made (a ledger is never deleted while it is named here).
    ledger = models.ForeignKey(
        DailyLedger, on_delete=models.PROTECT, null=True, blank=True, related_name="decisions"
    )
    decided_at = models.DateTimeField(_("decided at"), db_index=False)

    # Execution through the gateway (approved decisions only).
    idempotency_key = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    execution_attempts = models.PositiveIntegerField(default=0)
    # A short lease claimed by a conditional UPDATE: two copies of the execution task running at
    # once make one gateway call; a worker killed mid-call leaves a lease that simply expires.
    execution_lease_until = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(_("executed at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    failure_reason = models.TextField(_("failure reason"), blank=True)
    # Set once when a failed execution gives its amount back to the ledger.
    released_at = models.DateTimeField(null=True, blank=True)
    # The first attempt whose outcome nobody knows (it timed out or lost its connection after
    # sending, or its worker died mid-call); never cleared. From then on a refusal is not final
    # until the platform says it did not approve (API.md "Outbound").
    execution_ambiguous_at = models.DateTimeField(_("ambiguous attempt at"), null=True, blank=True)
    # When the latest attempt started (set before its call); cleared when it ends and the
    # decision is still open. Still set when the next attempt claims the lease: the worker died
    # mid-call, which is ambiguous.
    execution_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("decision")
        verbose_name_plural = _("decisions")
        ordering = ["-decided_at", "-id"]
        indexes = [
            models.Index(fields=["shop", "-decided_at", "-id"], name="decision_shop_recent"),
            models.Index(fields=["shop", "aftersale_id"], name="decision_shop_aftersale"),
            models.Index(fields=["shop", "order_id"], name="decision_shop_order"),
            models.Index(
                fields=["shop", "scenario", "-decided_at", "-id"], name="decision_shop_scenario"
            ),
            models.Index(
                fields=["shop", "reason", "-decided_at", "-id"], name="decision_shop_reason"
            ),
            models.Index(
                fields=["shop", "strategy", "-decided_at", "-id"], name="decision_shop_strategy"
            ),
            models.Index(
                fields=["shop", "outcome", "-decided_at", "-id"], name="decision_shop_outcome"
            ),
            # Order total: what one order already had approved (read on every decision; its
            # own partial index, so no planner, stale statistics or not, scans a shop's log).
            models.Index(
                fields=["shop", "order_id"],
                name="decision_order_approvals",
                condition=Q(outcome="approved", released_at__isnull=True),
            ),
            # Per-buyer limit: approvals of one buyer over the last 30 days.
            models.Index(
                fields=["shop", "buyer_id", "decided_at"],
                name="decision_buyer_approvals",
                condition=Q(outcome="approved"),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="decision_amount_positive"),
            models.CheckConstraint(
                condition=Q(outcome="approved") | Q(ledger__isnull=True, action=""),
                name="decision_manual_review_reserves_nothing",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.aftersale_id}: {self.get_outcome_display()}"


class TrialHit(models.Model):
    """A trial strategy that would have approved a request (its ``trial_would_hit``
    explanation), one row per (decision, strategy): the decision log's strategy filter finds
    a trial strategy's requests through it, and its "would approve N / amount" per shop-local
    day is summed from it, without reading the JSON explanations of the whole log."""

    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="trial_hits")
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    # PROTECT: like a decision, a trial result keeps its strategy (archived, never deleted).
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="trial_hits")
    day = models.DateField(_("shop-local day"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("trial result")
        verbose_name_plural = _("trial results")
        constraints = [
            models.UniqueConstraint(
                fields=["decision", "strategy"], name="trial_hit_one_per_strategy"
            ),
        ]
        indexes = [
            models.Index(fields=["strategy", "day"], name="trial_hit_strategy_day"),
            models.Index(fields=["shop", "day"], name="trial_hit_shop_day"),
        ]

    def __str__(self) -> str:
        return gettext("%(strategy)s on %(day)s: would approve %(amount)s") % {
            "strategy": self.strategy.name,
            "day": self.day.isoformat(),
            "amount": money(self.amount),
        }


class ExecutionConfirmation(models.Model):
    """The audit of a person confirming an execution left ``unknown``: who said it was paid or
    not, and when. One per decision (it is confirmed once)."""

    class Verdict(models.TextChoices):
        PAID = "paid", _("Paid")
        NOT_PAID = "not_paid", _("Not paid")

    decision = models.OneToOneField(
        Decision,
        on_delete=models.PROTECT,
        related_name="confirmation",
        verbose_name=_("decision"),
    )
    verdict = models.CharField(_("verdict"), max_length=8, choices=Verdict.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    # Kept as typed at the time: the audit still names the person if the account is deleted.
    username = models.CharField(_("user name"), max_length=150)
    confirmed_at = models.DateTimeField(_("confirmed at"))

    class Meta:
        verbose_name = _("execution confirmation")
        verbose_name_plural = _("execution confirmations")

    def __str__(self) -> str:
        return f"{self.decision.aftersale_id}: {self.get_verdict_display()} ({self.username})"


# --- The review queue (strategies/pipeline/review.py; docs/review.md) ---------------------


class ReviewAction(models.TextChoices):
    APPROVE = "approve", _("Approve")
    REFUSE = "refuse", _("Refuse")
    DONE_ELSEWHERE = "done_elsewhere", _("Mark as handled elsewhere")


class ReviewResult(models.TextChoices):
    PENDING = "pending", _("In progress")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    STALE = "stale", _("Not sent: the request changed")
    UNKNOWN = "unknown", _("Awaiting confirmation")


class Review(models.Model):
    """A person's action on a request in the review queue: who did what, when, why, and what
    came of it. At most one review of a request is pending or done (a partial unique index):
    two staff clicking at once insert one; the other insert fails and sends nothing."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    request = models.ForeignKey(
        AfterSaleRequest,
        on_delete=models.CASCADE,
        related_name="reviews",
        verbose_name=_("after-sales request"),
    )
    action = models.CharField(_("action"), max_length=16, choices=ReviewAction.choices)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    username = models.CharField(_("user name"), max_length=150)
    # The request as the person saw it (its updated_at): a changed request is re-read, never
    # acted on blind.
    seen_version = models.DateTimeField()
    created_at = models.DateTimeField(_("reviewed at"))
    idempotency_key = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    result = models.CharField(
        _("result"), max_length=16, choices=ReviewResult.choices, default=ReviewResult.PENDING
    )
    detail = models.TextField(_("platform's answer"), blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    ambiguous_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        constraints = [
            models.UniqueConstraint(
                fields=["request"],
                name="review_one_open_or_done_per_request",
                condition=Q(result__in=["pending", "done", "unknown"]),
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="review_amount_positive"),
        ]
        indexes = [
            models.Index(
                fields=["result", "created_at"],
                name="review_pending",
                condition=Q(result="pending"),
            ),
            models.Index(
                fields=["shop", "action", "finished_at"],
                name="review_shop_done",
                condition=Q(result="done"),
            ),
            # The queue's "unknown" tab reads the few reviews awaiting a confirmation.
            models.Index(fields=["request"], name="review_unknown", condition=Q(result="unknown")),
        ]

    def __str__(self) -> str:
        return gettext("%(request)s: %(action)s by %(user)s") % {
            "request": self.request.aftersale_id,
            "action": self.get_action_display(),
            "user": self.username,
        }


class ReviewConfirmation(models.Model):
    """The audit of a person confirming a review left ``unknown`` (an ambiguous attempt the
    platform could not settle): who said it was carried out ("paid") or not, and when. One per
    review, as ``ExecutionConfirmation`` is one per decision."""

    review = models.OneToOneField(
        Review,
        on_delete=models.PROTECT,
        related_name="confirmation",
        verbose_name=_("review"),
    )
    verdict = models.CharField(
        _("verdict"), max_length=8, choices=ExecutionConfirmation.Verdict.choices
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    # Kept as typed at the time: the audit still names the person if the account is deleted.
    username = models.CharField(_("user name"), max_length=150)
    confirmed_at = models.DateTimeField(_("confirmed at"))

    class Meta:
        verbose_name = _("review confirmation")
        verbose_name_plural = _("review confirmations")

    def __str__(self) -> str:
        return f"{self.review_id}: {self.get_verdict_display()} ({self.username})"


# --- Backtests (strategies/backtest; docs/backtest.md) ---------------------------------------


class BacktestStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class BacktestKind(models.TextChoices):
    CURRENT = "current", _("The strategies as they are")
    EDIT = "edit", _("A strategy changed")
    ADD = "add", _("A new strategy")
    REORDER = "reorder", _("A new priority order")


class BacktestRun(models.Model):
    """One backtest: a period of the shop's requests replayed through a strategy set (the
    current one with one change), its progress while it runs, and its report once done.

    One run at a time per shop: a second start is refused by the partial unique constraint.
    """

    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="backtests", verbose_name=_("shop")
    )
    # The strategy the change is about (none for a reorder or the set as it is).
    strategy = models.ForeignKey(
        Strategy,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="backtests",
        verbose_name=_("strategy"),
    )
    scenario = models.CharField(_("scenario"), max_length=32, choices=Scenario.choices, blank=True)
    kind = models.CharField(_("change"), max_length=16, choices=BacktestKind.choices)
    title = models.CharField(_("what was tried"), max_length=200)
    first_day = models.DateField(_("first day"))
    last_day = models.DateField(_("last day"))
    # The replayed set: every strategy's snapshot and the history row it is at (None: unsaved).
    strategies = models.JSONField(_("strategies replayed"), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("run by"),
    )
    created_at = models.DateTimeField(_("run at"))
    status = models.CharField(
        _("status"), max_length=16, choices=BacktestStatus.choices, default=BacktestStatus.QUEUED
    )
    total = models.PositiveIntegerField(_("requests in the period"), default=0)
    processed = models.PositiveIntegerField(_("requests replayed"), default=0)
    # Moved on by the worker as it goes: a run whose worker died is found by its age.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    report = models.JSONField(_("report"), default=dict, blank=True)

    class Meta:
        verbose_name = _("backtest")
        verbose_name_plural = _("backtests")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["shop", "-created_at"], name="backtest_shop_recent"),
            models.Index(fields=["strategy", "-created_at"], name="backtest_strategy_recent"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["shop"],
                condition=Q(status__in=["queued", "running"]),
                name="backtest_one_at_a_time_per_shop",
                violation_error_message=_("A backtest is already running for this shop."),
            ),
            models.CheckConstraint(
                condition=Q(first_day__lte=models.F("last_day")), name="backtest_period_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.first_day} - {self.last_day})"


class BacktestChangeKind(models.TextChoices):
    GAINED = "gained", _("Would be auto-approved")
    LOST = "lost", _("Would no longer be auto-approved")
    MOVED = "moved", _("Another strategy would approve it")


class BacktestChange(models.Model):
    """A request the backtest decides otherwise than the live decision did, with the state it
    was replayed in (so its trace can be shown again: ``matching.evaluate`` on that state)."""

    run = models.ForeignKey(BacktestRun, on_delete=models.CASCADE, related_name="changes")
    request = models.ForeignKey(AfterSaleRequest, on_delete=models.CASCADE, related_name="+")
    aftersale_id = models.CharField(_("after-sales id"), max_length=64)
    order_id = models.CharField(_("order id"), max_length=64)
    decided_at = models.DateTimeField(_("decided at"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    scenario = models.CharField(_("scenario"), max_length=32, choices=Scenario.choices, blank=True)
    kind = models.CharField(_("change"), max_length=16, choices=BacktestChangeKind.choices)
    # Ids, not foreign keys: a strategy may be deleted, an unsaved one has none (< 0).
    baseline_strategy_id = models.BigIntegerField(null=True, blank=True)
    baseline_strategy_name = models.CharField(max_length=60, blank=True)
    candidate_strategy_id = models.BigIntegerField(null=True, blank=True)
    candidate_strategy_name = models.CharField(max_length=60, blank=True)
    # The request's status when the run read it: what became of it in reality.
    reality = models.CharField(_("in reality"), max_length=16)
    moment = models.JSONField(default=dict)
    codes = models.JSONField(default=list)

    class Meta:
        verbose_name = _("backtest change")
        verbose_name_plural = _("backtest changes")
        ordering = ["decided_at", "id"]
        indexes = [models.Index(fields=["run", "kind", "decided_at"], name="backtest_change_kind")]

    def __str__(self) -> str:
        return f"{self.aftersale_id}: {self.get_kind_display()}"


class Platform(models.TextChoices):
    GENERIC = "generic", _("Generic signed API")
    KUAISHOU = "kuaishou", _("Kuaishou (快手小店)")
    DOUYIN = "douyin", _("Douyin (抖店)")


def secret_hint(value: str) -> str:
    """What may be shown of a secret once entered: ``…a9f2`` (nothing for a short one)."""
    return f"…{value[-4:]}" if len(value) >= 12 else ("…" if value else "")


def app_key_digest(app_key: str) -> str:
    """The push URL names the app key: looked up by its SHA-256, the key itself is sealed."""
    return hashlib.sha256(app_key.encode("utf-8")).hexdigest()


class Channel(models.Model):
    """How one shop's requests come in and its approvals go out (PLATFORMS.md "Channels").

    A shop without a row speaks the generic API. Every credential is sealed at rest
    (``strategies/encryption.py``) and read through the properties below; only a hint of each
    is ever shown again.
    """

    SEALED = (
        "app_key",
        "app_secret",
        "sign_secret",
        "message_key",
        "access_token",
        "refresh_token",
    )

    shop = models.OneToOneField(
        Shop, on_delete=models.CASCADE, related_name="channel", verbose_name=_("shop")
    )
    platform = models.CharField(
        _("platform"), max_length=16, choices=Platform.choices, default=Platform.GENERIC
    )
    app_key_lookup = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    app_key_sealed = models.TextField(blank=True, default="", editable=False)
    app_key_hint = models.CharField(_("app key"), max_length=8, blank=True, editable=False)
    app_secret_sealed = models.TextField(blank=True, default="", editable=False)
    app_secret_hint = models.CharField(_("app secret"), max_length=8, blank=True, editable=False)
    sign_secret_sealed = models.TextField(blank=True, default="", editable=False)
    sign_secret_hint = models.CharField(_("sign secret"), max_length=8, blank=True, editable=False)
    message_key_sealed = models.TextField(blank=True, default="", editable=False)
    message_key_hint = models.CharField(_("message key"), max_length=8, blank=True, editable=False)
    access_token_sealed = models.TextField(blank=True, default="", editable=False)
    access_token_hint = models.CharField(
        _("access token"), max_length=8, blank=True, editable=False
    )
    refresh_token_sealed = models.TextField(blank=True, default="", editable=False)
    refresh_token_hint = models.CharField(
        _("refresh token"), max_length=8, blank=True, editable=False
    )
    sign_method = models.CharField(_("sign method"), max_length=16, blank=True, default="")
    access_expires_at = models.DateTimeField(_("access token expires at"), null=True, blank=True)
    refresh_expires_at = models.DateTimeField(_("refresh token expires at"), null=True, blank=True)
    # Kuaishou's openId / Douyin's shop_id: picks the shop among the channels of one app.
    merchant_id = models.CharField(_("merchant id (open id / shop id)"), max_length=64, blank=True)
    api_base = models.URLField(_("API base URL"), blank=True)
    return_address_id = models.CharField(_("return address id"), max_length=64, blank=True)

    last_push_at = models.DateTimeField(_("last push"), null=True, blank=True)
    last_poll_at = models.DateTimeField(_("last poll"), null=True, blank=True)
    last_refresh_at = models.DateTimeField(_("last token refresh"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    # The latest update time the poller saw: the next poll starts there, minus a margin.
    poll_high_water = models.DateTimeField(null=True, blank=True)
    # Alerts fire once: the first caller whose conditional update sets ``*_alerted_at`` raises
    # it; a new authorisation (connect_shop) clears them.
    auth_failed_at = models.DateTimeField(_("authentication refused at"), null=True, blank=True)
    auth_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    refresh_expiry_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Pushes refused in a row (wrong message key or app secret); an accepted push resets it.
    # The alert is claimed once per set of credentials (connect_shop clears the claim), so
    # refused pushes from anyone who knows the URL cost at most one message.
    push_refusals = models.PositiveIntegerField(_("pushes refused in a row"), default=0)
    push_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Polls that failed in a row (the platform down, slowing us down, answering garbage; an
    # authentication refusal has its own alert); a poll that succeeds resets both, so the
    # next outage alerts again.
    poll_failures = models.PositiveIntegerField(_("polls failed in a row"), default=0)
    poll_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return f"{self.shop.name}: {self.get_platform_display()}"

    def secret(self, name: str) -> str:
        """The plain value of sealed credential ``name`` ("" when unset)."""
        sealed = getattr(self, f"{name}_sealed")
        return secret_open(sealed) if sealed else ""

    def set_secret(self, name: str, value: str) -> None:
        if name not in self.SEALED:
            raise ValueError(name)
        setattr(self, f"{name}_sealed", secret_seal(value) if value else "")
        setattr(self, f"{name}_hint", secret_hint(value))
        if name == "app_key":
            self.app_key_lookup = app_key_digest(value) if value else ""


class PushMessage(models.Model):
    """One message a platform pushed, stored before it is answered; deduplicated by the
    platform's own event id (one INSERT … ON CONFLICT DO NOTHING)."""

    platform = models.CharField(_("platform"), max_length=16, choices=Platform.choices)
    event_id = models.CharField(_("event id"), max_length=128)
    # Null: the app's message named a merchant no channel has (stored, ignored).
    channel = models.ForeignKey(
        Channel, on_delete=models.SET_NULL, null=True, blank=True, related_name="pushes"
    )
    kind = models.CharField(_("kind"), max_length=16)
    event = models.CharField(_("event"), max_length=64, blank=True)
    aftersale_id = models.CharField(_("after-sales id"), max_length=64, blank=True)
    merchant = models.CharField(max_length=64, blank=True)
    raw = models.JSONField(_("message"))
    received_at = models.DateTimeField(_("received at"))
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("pushed message")
        verbose_name_plural = _("pushed messages")
        constraints = [
            models.UniqueConstraint(fields=["platform", "event_id"], name="push_once_per_event")
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="push_unprocessed",
                condition=Q(processed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} {self.event_id}"
