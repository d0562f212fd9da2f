"""The platform's data (products, orders, after-sales requests): read-only for everyone.

The one write: an owner confirms whether a request left ``unknown`` (an ambiguous gateway
attempt the platform could not settle) was paid or not, through the execution service's
confirmations (audited).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
)
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from strategies.admin.common import (
    REQUEST_STATUS_COLOURS,
    badge,
    money_column,
    operator_filters,
)
from strategies.admin.tenancy import (
    ReadOnlyAdminMixin,
    ShopScopedAdminMixin,
    shop_context,
)
from strategies.models import (
    AfterSaleRequest,
    ExecutionConfirmation,
    Order,
    OrderItem,
    Product,
    RequestStatus,
)
from strategies.pipeline.execute import decision_confirm_not_paid, decision_confirm_paid

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
class AfterSaleRequestAdmin(ReadOnlyAdminMixin, ShopScopedAdminMixin, admin.ModelAdmin):
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
        return gettext("%(verdict)s, by %(user)s at %(at)s") % {
            "verdict": confirmation.get_verdict_display(),
            "user": confirmation.username,
            "at": confirmation.confirmed_at.astimezone(obj.shop.zone).strftime("%Y-%m-%d %H:%M"),
        }

    # -- confirming a request left `unknown` (owners and operators; viewers only read) --------

    def has_confirm_permission(self, request: HttpRequest) -> bool:
        return shop_context(request).may_edit

    @admin.action(
        description=_("Confirm the selected requests were PAID (awaiting confirmation only)"),
        permissions=["confirm"],
    )
    def confirm_paid(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._confirm(request, queryset, paid=True)

    @admin.action(
        description=_(
            "Confirm the selected requests were NOT PAID and release their reservations "
            "(awaiting confirmation only)"
        ),
        permissions=["confirm"],
    )
    def confirm_not_paid(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._confirm(request, queryset, paid=False)

    def _confirm(
        self, request: HttpRequest, queryset: QuerySet, *, paid: bool
    ) -> HttpResponse | None:
        waiting = list(
            queryset.filter(status=RequestStatus.UNKNOWN, decision__isnull=False).select_related(
                "decision"
            )
        )
        if not waiting:
            self.message_user(
                request,
                gettext("None of the selected requests is awaiting confirmation: nothing done."),
                messages.WARNING,
            )
            return None
        if request.POST.get("post") != "yes":
            # Money is at stake: the person sees what they confirm before it is done.
            return TemplateResponse(
                request,
                "admin/strategies/aftersalerequest/confirm_execution.html",
                {
                    **self.admin_site.each_context(request),
                    "title": gettext("Confirm paid") if paid else gettext("Confirm not paid"),
                    "opts": self.model._meta,
                    "requests": waiting,
                    "paid": paid,
                    "action": "confirm_paid" if paid else "confirm_not_paid",
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "skipped": queryset.count() - len(waiting),
                },
            )
        user = request.user
        if not isinstance(user, AbstractBaseUser):  # an action needs a signed-in user
            raise PermissionDenied
        confirm = decision_confirm_paid if paid else decision_confirm_not_paid
        done = sum(confirm(decision_id=r.decision.pk, user=user) for r in waiting)
        verdict = (
            ExecutionConfirmation.Verdict.PAID.label
            if paid
            else ExecutionConfirmation.Verdict.NOT_PAID.label
        )
        self.message_user(
            request,
            ngettext(
                "%(n)d request confirmed “%(verdict)s”.",
                "%(n)d requests confirmed “%(verdict)s”.",
                done,
            )
            % {"n": done, "verdict": verdict},
            messages.SUCCESS,
        )
        if done < len(waiting):
            self.message_user(
                request,
                gettext("%(n)d were confirmed by someone else meanwhile: left as they are.")
                % {"n": len(waiting) - done},
                messages.WARNING,
            )
        return None
