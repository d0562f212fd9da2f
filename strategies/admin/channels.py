"""A shop's marketplace channel in the back office (PLATFORMS.md "Channels").

Operators connect a shop or change its credentials with the channel form: every secret field is
write-only (never rendered back, left empty to keep what is stored) and the form saves through
``services.channels.connect_shop``. Everyone who may see the shop sees its channel's health on
the shop's page (last push, last poll, token expiry, last error), never a secret: hints only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from strategies.admin.tenancy import OperatorOnlyAdminMixin, ReadOnlyAdminMixin, shop_context
from strategies.models import Channel, Platform
from strategies.services.channels import SIGN_METHODS, Credentials, connect_shop

HEALTH_FIELDS = (
    "platform",
    "app_key_hint",
    "merchant_id",
    "last_push_at",
    "push_refusals",
    "last_poll_at",
    "poll_failures",
    "access_expires_at",
    "refresh_expires_at",
    "last_refresh_at",
    "last_error",
    "last_error_at",
)


def _secret(label: Any, help_text: Any = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        help_text=help_text or _("Write-only: leave empty to keep the stored value."),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


class ChannelForm(forms.ModelForm):
    app_key = _secret(_("app key"))
    app_secret = _secret(_("app secret"))
    sign_secret = _secret(_("sign secret (Kuaishou)"))
    message_key = _secret(_("message key (Kuaishou)"))
    access_token = _secret(_("access token"))
    refresh_token = _secret(_("refresh token"))
    sign_method = forms.ChoiceField(
        label=_("sign method"),
        required=False,
        choices=[("", "—"), *[(m, m) for m in SIGN_METHODS]],
    )
    expires_in = forms.IntegerField(
        label=_("access token lifetime (seconds)"), required=False, min_value=1
    )
    refresh_expires_in = forms.IntegerField(
        label=_("refresh token lifetime (seconds)"), required=False, min_value=1
    )

    api_base = forms.URLField(
        label=_("API base URL"),
        required=False,
        assume_scheme="https",
        help_text=_("Empty: the platform's own. A sandbox or a test server otherwise."),
    )

    class Meta:
        model = Channel
        fields = ("shop", "platform", "merchant_id", "api_base", "return_address_id")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.credentials = Credentials(
            **{
                name: data.get(name) or ""
                for name in (*Channel.SEALED, "sign_method", "merchant_id", "api_base")
            },
            return_address_id=data.get("return_address_id") or "",
            expires_in=data.get("expires_in"),
            refresh_expires_in=data.get("refresh_expires_in"),
        )
        shop = data.get("shop") or getattr(self.instance, "shop", None)
        if shop is None or self.errors:
            return data
        # The service validates (a missing credential, a bad sign method); tried here in a
        # transaction rolled back, so its refusal shows on the form.
        try:
            with transaction.atomic():
                connect_shop(shop=shop, platform=data["platform"], credentials=self.credentials)
                transaction.set_rollback(True)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc
        return data


@admin.register(Channel)
class ChannelAdmin(OperatorOnlyAdminMixin, admin.ModelAdmin):
    form = ChannelForm
    list_display = ("shop", "platform", "app_key_hint", "last_push_at", "last_poll_at", "error")
    list_filter = ("platform",)
    list_select_related = ("shop",)
    readonly_fields = (
        "push_url",
        "app_key_hint",
        "app_secret_hint",
        "sign_secret_hint",
        "message_key_hint",
        "access_token_hint",
        "refresh_token_hint",
        *HEALTH_FIELDS[3:],
    )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return [
            (None, {"fields": ["shop", "platform", "push_url"]}),
            (
                _("Credentials (write-only)"),
                {
                    "fields": [
                        "app_key",
                        "app_key_hint",
                        "app_secret",
                        "app_secret_hint",
                        "sign_secret",
                        "sign_secret_hint",
                        "message_key",
                        "message_key_hint",
                        "sign_method",
                        "access_token",
                        "access_token_hint",
                        "expires_in",
                        "refresh_token",
                        "refresh_token_hint",
                        "refresh_expires_in",
                    ]
                },
            ),
            (
                _("Shop on the platform"),
                {"fields": ["merchant_id", "api_base", "return_address_id"]},
            ),
            (_("Health"), {"fields": list(HEALTH_FIELDS[3:])}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*self.readonly_fields, "shop") if obj is not None else self.readonly_fields

    @admin.display(description=_("push URL"))
    def push_url(self, obj: Channel) -> str:
        if obj.pk is None or obj.platform == Platform.GENERIC:
            return "—"
        return f"/platforms/{obj.platform}/push/<app key>"

    @admin.display(description=_("last error"))
    def error(self, obj: Channel) -> str:
        return (obj.last_error or "")[:80]

    def save_model(self, request: HttpRequest, obj: Channel, form: Any, change: bool) -> None:
        saved = connect_shop(shop=obj.shop, platform=obj.platform, credentials=form.credentials)
        obj.pk = saved.pk


class ChannelHealthInline(ReadOnlyAdminMixin, admin.StackedInline):
    """The channel's health on the shop's page: nothing secret, nothing editable."""

    model = Channel
    can_delete = False
    fields = HEALTH_FIELDS
    readonly_fields = HEALTH_FIELDS
    verbose_name = _("channel")
    verbose_name_plural = _("channel health")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Whoever sees the shop sees its channel's health (the shop admin scopes the shop).
        return shop_context(request).may_view
