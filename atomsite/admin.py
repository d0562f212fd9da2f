"""The login locks in the admin, for platform operators only (django-axes' models).

An operator sees who was locked out, from where and how often, and lifts a lock by deleting its
access attempt (axes' reset). Merchant staff never see these pages: the attempts name other
shops' users and addresses.
"""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessLog
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from strategies.admin.tenancy import is_operator


class OperatorOnlyMixin:
    """Visible to operators, read-only; deleting is the one write (it lifts the lock)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_operator(request.user)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_operator(request.user)


@admin.register(AccessAttempt)
class LoginLockAdmin(OperatorOnlyMixin, AccessAttemptAdmin):
    actions = ["unlock"]

    @admin.action(description=_("Unlock: forget the failed logins"), permissions=["delete"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        count, _per_model = queryset.delete()
        self.message_user(
            request,
            ngettext("%(count)d lock lifted.", "%(count)d locks lifted.", count) % {"count": count},
            messages.SUCCESS,
        )


@admin.register(AccessLog)
class LoginLogAdmin(OperatorOnlyMixin, AccessLogAdmin):
    pass
