"""The 热门策略 (popular strategies) menu entry, named as the seeds name the platform's own:
it opens the small-amount template (小额自动仅退款), for those who may create strategies."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from strategies.admin.tenancy import SHOP_PARAM, ShopScopedAdminMixin, shop_context
from strategies.models import PopularStrategy


@admin.register(PopularStrategy)
class PopularStrategyAdmin(ShopScopedAdminMixin, admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return shop_context(request).may_edit

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return shop_context(request).may_edit

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # the entry opens the template; "add" is the strategy list's

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        context = shop_context(request)
        if context.foreign_shop_asked:
            raise Http404
        if not context.may_edit or context.shop is None:
            # A viewer may not create; an operator first picks a shop (the 403 page offers them).
            raise PermissionDenied
        url = reverse("admin:strategies_strategy_template")
        if context.operator:
            url += "?" + urlencode({SHOP_PARAM: context.shop.pk})
        return HttpResponseRedirect(url)
