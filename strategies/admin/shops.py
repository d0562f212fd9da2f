"""Shops and staff, for operators; a member sees their own shop, never its API secret."""

from __future__ import annotations

from django.contrib import admin
from django.forms import ModelForm
from django.http import (
    HttpRequest,
    HttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext

from strategies.admin.channels import ChannelHealthInline
from strategies.admin.tenancy import OperatorOnlyAdminMixin, ShopScopedAdminMixin
from strategies.models import Membership, Shop
from strategies.services.shops import shop_secret_generate

# The request attribute carrying a new shop's secret from save_model to response_add.
_NEW_SECRET = "_atom_new_shop_secret"


@admin.register(Shop)
class ShopAdmin(ShopScopedAdminMixin, admin.ModelAdmin):
    """Operators manage shops; a member sees their own shop (read only), never its API secret."""

    shop_field = "pk"  # a shop is its own shop
    list_display = ("code", "name", "timezone", "phone", "alert_email")
    search_fields = ("code", "name")
    fields = ("code", "name", "timezone", "phone", "alert_email")

    def get_inlines(self, request: HttpRequest, obj: Shop | None) -> list[type]:
        # The channel's health on an existing shop's page only (a new shop has none yet). It is
        # read only, so a POST of the shop's form does without it (and its management form).
        if obj is None or request.method == "POST":
            return []
        return [ChannelHealthInline]

    def save_model(self, request: HttpRequest, obj: Shop, form: ModelForm, change: bool) -> None:
        if not change:
            secret = shop_secret_generate()
            obj.api_secret = secret
            # For response_add only: never a message (a cookie), the session or a log.
            setattr(request, _NEW_SECRET, secret)
        super().save_model(request, obj, form, change)

    def response_add(
        self, request: HttpRequest, obj: Shop, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The new shop's API secret, shown once on a page no cache keeps (not a redirect)."""
        secret = getattr(request, _NEW_SECRET, None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("The API secret of %(shop)s") % {"shop": obj},
            "opts": self.opts,
            "shop": obj,
            "secret": secret,
            "change_url": reverse("admin:strategies_shop_change", args=[obj.pk]),
            "add_url": reverse("admin:strategies_shop_add"),
        }
        response = TemplateResponse(request, "admin/strategies/shop/secret_once.html", context)
        add_never_cache_headers(response)
        return response


@admin.register(Membership)
class MembershipAdmin(OperatorOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "shop", "role")
    list_filter = ("role", "shop")
    list_select_related = ("user", "shop")
    search_fields = ("user__username", "shop__code")
