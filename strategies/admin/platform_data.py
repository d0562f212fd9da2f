"""The platform's data (products, orders, after-sales requests): read-only for everyone."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import (
    HttpRequest,
)
from django.utils.translation import gettext_lazy as _

from strategies.admin.common import (
    REQUEST_STATUS_COLOURS,
    badge,
    operator_filters,
)
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
    fields = ("product_id", "title", "quantity", "price")
    readonly_fields = fields
    extra = 0

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
class AfterSaleRequestAdmin(ReadOnlyAdminMixin, ShopScopedAdminMixin, admin.ModelAdmin):
    list_display = (
        "aftersale_id",
        "order",
        "type",
        "reason",
        "amount",
        "status_badge",
        "received_at",
    )
    list_filter = ("status", "type")
    list_select_related = ("order",)
    search_fields = ("=aftersale_id", "=order__order_id")
    show_full_result_count = False
    ordering = ("-received_at", "-id")

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return operator_filters(request, self.list_filter)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: AfterSaleRequest) -> str:
        return badge(obj.get_status_display(), REQUEST_STATUS_COLOURS.get(obj.status, "#8a8a8a"))
