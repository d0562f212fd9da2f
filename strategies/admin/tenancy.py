"""Tenant scoping for the admin: merchant staff see and touch only their own shop.

Superusers (platform operators) see every shop. Staff get their rights from their
``Membership`` role, not from Django's model permissions: an owner edits, a viewer reads.
Every admin of shop data inherits ``ShopScopedAdminMixin``; custom admin views and JSON
endpoints call ``shop_for_user`` / ``scope_to_user`` themselves.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from strategies.models import Membership, Shop

AnyUser = AbstractBaseUser | AnonymousUser

# The largest id a URL may name: PostgreSQL's bigint (the ids are BigAutoFields).
MAX_ID = 2**63 - 1


def parse_id(value: object) -> int | None:
    """An object id from a URL or query string, or ``None`` when it is not one.

    Only ASCII digits count: ``str.isdigit()`` also accepts "²" and other scripts' digits,
    which ``int()`` then refuses or reads as another number. Ids beyond bigint are not ids.
    """
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value) > len(str(MAX_ID)):
        return None  # and never ask int() for thousands of digits
    number = int(value)
    return number if number <= MAX_ID else None


def membership_for_user(user: AnyUser) -> Membership | None:
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return None
    if hasattr(user, "_atom_membership"):
        cached: Membership | None = user._atom_membership
        return cached
    user_pk: int = user.pk  # type: ignore[assignment]
    membership = Membership.objects.select_related("shop").filter(user_id=user_pk).first()
    user._atom_membership = membership  # type: ignore[union-attr]
    return membership


def shop_for_user(user: AnyUser) -> Shop | None:
    membership = membership_for_user(user)
    return membership.shop if membership else None


def is_operator(user: AnyUser) -> bool:
    return bool(getattr(user, "is_superuser", False) and getattr(user, "is_active", False))


def can_edit(user: AnyUser) -> bool:
    if is_operator(user):
        return True
    membership = membership_for_user(user)
    return membership is not None and membership.role == Membership.Role.OWNER


def scope_to_user(queryset: QuerySet, user: AnyUser, *, shop_field: str = "shop") -> QuerySet:
    """Rows of the user's shop only (all rows for an operator, none for an outsider)."""
    if is_operator(user):
        return queryset
    shop = shop_for_user(user)
    if shop is None:
        return queryset.none()
    return queryset.filter(**{shop_field: shop})


def shop_or_404(user: AnyUser, *, code: str | None = None) -> Shop:
    """The shop a custom view works on: the member's own, or any shop for an operator."""
    if is_operator(user):
        shops = Shop.objects.all()
        if code:
            return shops.filter(code=code).first() or _raise_404()
        first = shops.first()
        return first or _raise_404()
    shop = shop_for_user(user)
    if shop is None or (code and shop.code != code):
        _raise_404()
    return shop  # type: ignore[return-value]


def _raise_404() -> Any:
    raise Http404


class NotFoundIs404Mixin:
    """Another shop's object is "not found" (404), not Django's redirect to the admin index."""

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> HttpResponse:
        raise Http404


class OperatorShopFilter(admin.SimpleListFilter):
    """Narrows a list to one shop; offered to operators only (staff see one shop anyway)."""

    title = _("shop")
    parameter_name = "shop"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        if not is_operator(request.user):
            return []
        return [(str(s.pk), str(s)) for s in Shop.objects.order_by("code")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        shop_id = parse_id(value)
        if shop_id is None:
            return queryset.none()
        return queryset.filter(shop_id=shop_id)


class ShopScopedAdminMixin(NotFoundIs404Mixin):
    """Scopes an admin's rows, dropdowns and rights to the user's shop.

    ``shop_field`` is the lookup from the model to its shop (``"shop"``, ``"order__shop"``...).
    ``editable_by_owner``: owners may add/change/delete; otherwise the admin is read-only for
    staff. Operators keep every right.
    """

    shop_field = "shop"
    editable_by_owner = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return scope_to_user(queryset, request.user, shop_field=self.shop_field)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user) or shop_for_user(request.user) is not None

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.has_module_permission(request)

    def _may_write(self, request: HttpRequest) -> bool:
        if is_operator(request.user):
            return True
        return self.editable_by_owner and can_edit(request.user)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._may_write(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may_write(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may_write(request)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Dropdowns list only the user's own rows: a forged foreign id becomes a form error.
        related = db_field.related_model
        if related is Shop and not is_operator(request.user):
            own = shop_for_user(request.user)
            kwargs["queryset"] = Shop.objects.filter(pk=own.pk) if own else Shop.objects.none()
        elif _has_shop(related):
            kwargs["queryset"] = scope_to_user(related._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.related_model
        if _has_shop(related):
            kwargs["queryset"] = scope_to_user(related._default_manager.all(), request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]


def _has_shop(model: type[Model]) -> bool:
    return any(f.name == "shop" for f in model._meta.get_fields())
