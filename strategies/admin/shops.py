"""Shops and staff, for operators; a member sees their own shop, never its API secret."""

from __future__ import annotations

from django.contrib import admin, messages
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.translation import gettext

from strategies.admin.tenancy import OperatorOnlyAdminMixin, ShopScopedAdminMixin
from strategies.models import Membership, Shop
from strategies.services.shops import shop_secret_generate


@admin.register(Shop)
class ShopAdmin(ShopScopedAdminMixin, admin.ModelAdmin):
    """Operators manage shops; a member sees their own shop (read only), never its API secret."""

    shop_field = "pk"  # a shop is its own shop
    list_display = ("code", "name", "timezone", "phone", "alert_email")
    search_fields = ("code", "name")
    fields = ("code", "name", "timezone", "phone", "alert_email")

    def save_model(self, request: HttpRequest, obj: Shop, form: ModelForm, change: bool) -> None:
        if not change:
            obj.api_secret = shop_secret_generate()
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(
                request,
                gettext("The shop's API secret (shown once): %(secret)s")
                % {"secret": obj.api_secret},
                messages.WARNING,
            )


@admin.register(Membership)
class MembershipAdmin(OperatorOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "shop", "role")
    list_filter = ("role", "shop")
    list_select_related = ("user", "shop")
    search_fields = ("user__username", "shop__code")
