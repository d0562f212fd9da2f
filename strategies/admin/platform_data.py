"""The platform's data (products, orders, after-sales requests): read-only for everyone.

The one write: an owner confirms whether a request left ``unknown`` (an ambiguous gateway
attempt the platform could not settle) was paid or not: ``confirmations.py``, shared with the
review queue.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
)
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from strategies.admin.common import (
    REQUEST_STATUS_COLOURS,
    badge,
    money_column,
    operator_filters,
)
from strategies.admin.confirmations import PaymentConfirmationAdmin
from strategies.admin.tenancy import (
    ReadOnlyAdminMixin,
    ShopScopedAdminMixin,
    shop_context,
)
from strategies.models import (
    AfterSaleRequest,
    Order,
    OrderItem,
    Product,
)

# --------------------------------------------------------------------------------------------
# Platform data: read-only


@admin.register(Product)
class ProductAdmin(ShopScopedAdminMixin, admin.ModelAdmin):
    list_display = ("product_id", "title")
    search_fields = ("=product_id", "title")

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(super().get_list_display(request))
        return [*columns, "shop"] if shop_context(request).operator else columns

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return operator_filters(request, [])


class OrderItemInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OrderItem
    fields = ("product_id", "title", "quantity", "display_price")
    readonly_fields = fields
    extra = 0
    display_price = money_column("price", _("price"))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The order itself is already scoped to the user's shop.
        return True


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, ShopScopedAdminMixin, admin.ModelAdmin):
    list_display = ("order_id", "status", "paid_at", "shipped_at", "received_at")
    list_filter = ("status",)
    search_fields = ("=order_id",)
    show_full_result_count = False
    inlines = (OrderItemInline,)

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return operator_filters(request, self.list_filter)


@admin.register(AfterSaleRequest)
class AfterSaleRequestAdmin(ReadOnlyAdminMixin, ShopScopedAdminMixin, PaymentConfirmationAdmin):
    list_display = (
        "aftersale_id",
        "order",
        "type",
        "reason",
        "display_amount",
        "status_badge",
        "received_at",
    )
    list_filter = ("status", "type")
    list_select_related = ("order",)
    search_fields = ("=aftersale_id", "=order__order_id")
    show_full_result_count = False
    ordering = ("-received_at", "-id")
    readonly_fields = ("display_amount", "gateway_outcome", "confirmation")
    actions = ("confirm_paid", "confirm_not_paid")
    display_amount = money_column("amount", _("amount"))

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # The detail shows the amount as every page does (100,000.00), in the same place.
        fields = [f for f in super().get_fields(request, obj) if f != "display_amount"]
        return ["display_amount" if f == "amount" else f for f in fields]

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return operator_filters(request, self.list_filter)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("decision__confirmation")

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: AfterSaleRequest) -> str:
        return badge(obj.get_status_display(), REQUEST_STATUS_COLOURS.get(obj.status, "#8a8a8a"))

    @admin.display(description=_("gateway's last answer"))
    def gateway_outcome(self, obj: AfterSaleRequest) -> str:
        decision = getattr(obj, "decision", None)
        return decision.failure_reason if decision is not None else ""

    @admin.display(description=_("confirmed"))
    def confirmation(self, obj: AfterSaleRequest) -> str:
        decision = getattr(obj, "decision", None)
        confirmation = getattr(decision, "confirmation", None) if decision else None
        if confirmation is None:
            return ""
        values = {
            "verdict": confirmation.get_verdict_display(),
            "user": confirmation.username,
            "at": confirmation.confirmed_at.astimezone(obj.shop.zone).strftime("%Y-%m-%d %H:%M"),
        }
        if not confirmation.username:  # settled by asking the platform again (pipeline.recheck)
            return gettext("%(verdict)s, by the platform's status check at %(at)s") % values
        return gettext("%(verdict)s, by %(user)s at %(at)s") % values
