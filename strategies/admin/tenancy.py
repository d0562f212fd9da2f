"""Tenant scoping for the admin: merchant staff see and touch only their own shop.

Superusers (platform operators) see every shop. Staff get their rights from their
``Membership`` role, not from Django's model permissions: an owner edits, a viewer reads.

A page asks ``shop_context(request)`` who is asking and which shop it is about; the answer is
resolved once and kept on the request (one membership query for staff, one shop query for an
operator who picked a shop). Every page names its shop the same way, ``?shop=<id>``: an
operator's choice; for staff, their own shop's id or nothing (another shop's id is "not found").

Admins of shop data inherit ``ShopScopedAdminMixin``; ``ReadOnlyAdminMixin`` and
``OperatorOnlyAdminMixin`` say the two other kinds of rights once.
"""

from __future__ import annotations

from dataclasses import dataclass
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

# The query parameter that names the shop a page is about, on every admin page.
SHOP_PARAM = "shop"


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


def is_operator(user: AnyUser) -> bool:
    """A platform operator: an active superuser (read from the user, no query)."""
    return bool(getattr(user, "is_superuser", False) and getattr(user, "is_active", False))


@dataclass(frozen=True)
class ShopContext:
    """Who is asking and which shop the page is about, for one request.

    ``shop``: a member's own shop, always (whatever ``?shop=`` says); an operator's shop as
    chosen with ``?shop=<id>``, or ``None`` before they choose. ``shop_asked``: the raw
    ``?shop=`` value, ``None`` when absent.
    """

    user_id: int | None
    operator: bool
    shop: Shop | None
    may_edit: bool
    shop_asked: str | None = None

    @property
    def member(self) -> bool:
        """Merchant staff of a shop (an operator is not a member, even with a membership)."""
        return not self.operator and self.shop is not None

    @property
    def may_view(self) -> bool:
        return self.operator or self.member

    @property
    def foreign_shop_asked(self) -> bool:
        """A member's ``?shop=`` names a shop that is not theirs: treated as not found."""
        if self.operator or self.shop is None or self.shop_asked is None:
            return False
        return parse_id(self.shop_asked) != self.shop.pk

    @property
    def unknown_shop_asked(self) -> bool:
        """An operator's ``?shop=`` names no shop (not an id, or no such shop)."""
        return self.operator and bool(self.shop_asked) and self.shop is None

    def scope(self, queryset: QuerySet, *, shop_field: str = "shop") -> QuerySet:
        """The rows this user may see: all for an operator, their shop's, or none.

        ``shop_field`` leads from the rows to their shop; ``"pk"`` scopes shops themselves."""
        if self.operator:
            return queryset
        if self.shop is None:
            return queryset.none()
        return queryset.filter(**{shop_field: self.shop.pk if shop_field == "pk" else self.shop})

    def shop_query(self) -> dict[str, int]:
        """``{"shop": id}`` for links that keep an operator's choice (staff need none)."""
        return {SHOP_PARAM: self.shop.pk} if self.operator and self.shop is not None else {}


_CACHE_ATTRIBUTE = "_atom_shop_context"


def shop_context(request: HttpRequest) -> ShopContext:
    """The request's ``ShopContext``, resolved on first use and kept on the request."""
    user = request.user
    active = bool(getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))
    user_id: int | None = user.pk if active else None  # type: ignore[assignment]
    cached: ShopContext | None = getattr(request, _CACHE_ATTRIBUTE, None)
    if cached is not None and cached.user_id == user_id:
        return cached
    context = _resolve(user=user, user_id=user_id, shop_asked=request.GET.get(SHOP_PARAM))
    setattr(request, _CACHE_ATTRIBUTE, context)
    return context


def _resolve(*, user: AnyUser, user_id: int | None, shop_asked: str | None) -> ShopContext:
    if user_id is None:
        return ShopContext(user_id=None, operator=False, shop=None, may_edit=False)
    if is_operator(user):
        shop_id = parse_id(shop_asked)
        shop = Shop.objects.filter(pk=shop_id).first() if shop_id is not None else None
        return ShopContext(
            user_id=user_id, operator=True, shop=shop, may_edit=True, shop_asked=shop_asked
        )
    membership = Membership.objects.select_related("shop").filter(user_id=user_id).first()
    if membership is None:
        return ShopContext(user_id=user_id, operator=False, shop=None, may_edit=False)
    return ShopContext(
        user_id=user_id,
        operator=False,
        shop=membership.shop,
        may_edit=membership.role == Membership.Role.OWNER,
        shop_asked=shop_asked,
    )


class NotFoundIs404Mixin:
    """Another shop's object is "not found" (404), not Django's redirect to the admin index."""

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> HttpResponse:
        raise Http404


class ReadOnlyAdminMixin:
    """Nobody adds, changes or deletes these rows by hand, operators included (they are written
    by the pipeline or the platform). Works for model admins and inlines alike."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OperatorOnlyAdminMixin(NotFoundIs404Mixin):
    """Platform configuration: operators see and manage it; merchant staff never see it."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return shop_context(request).operator

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return shop_context(request).operator

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return shop_context(request).operator

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return shop_context(request).operator

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return shop_context(request).operator


class OperatorShopFilter(admin.SimpleListFilter):
    """Narrows a list to one shop; offered to operators only (staff see one shop anyway)."""

    title = _("shop")
    parameter_name = SHOP_PARAM

    def __init__(self, request: HttpRequest, params: dict, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.shop_field = getattr(model_admin, "shop_field", "shop")

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        if not shop_context(request).operator:
            return []
        return [(str(s.pk), str(s)) for s in Shop.objects.order_by("code")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        shop_id = parse_id(value)
        if shop_id is None:
            return queryset.none()
        return queryset.filter(**{f"{self.shop_field}__pk": shop_id})


class ShopScopedAdminMixin(NotFoundIs404Mixin):
    """Scopes an admin's rows, dropdowns and rights to the user's shop.

    ``shop_field`` is the lookup from the model to its shop (``"shop"``, ``"order__shop"``...).
    ``editable_by_owner``: owners may add/change/delete; otherwise the admin is read-only for
    staff. Operators keep every right (unless ``ReadOnlyAdminMixin`` comes first).
    """

    shop_field = "shop"
    editable_by_owner = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return shop_context(request).scope(queryset, shop_field=self.shop_field)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # ``?shop=`` naming another shop is "not found" on every list, as on every page.
        if shop_context(request).foreign_shop_asked:
            raise Http404
        return super().changelist_view(request, extra_context)  # type: ignore[misc]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return shop_context(request).may_view

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return shop_context(request).may_view

    def _may_write(self, request: HttpRequest) -> bool:
        context = shop_context(request)
        return context.operator or (self.editable_by_owner and context.may_edit)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._may_write(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may_write(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may_write(request)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Dropdowns list only the user's own rows: a forged foreign id becomes a form error.
        context = shop_context(request)
        related = db_field.related_model
        if related is Shop:
            kwargs["queryset"] = context.scope(Shop.objects.all(), shop_field="pk")
        elif _has_shop(related):
            kwargs["queryset"] = context.scope(related._default_manager.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.related_model
        if _has_shop(related):
            kwargs["queryset"] = shop_context(request).scope(related._default_manager.all())
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]


def _has_shop(model: type[Model]) -> bool:
    return any(f.name == "shop" for f in model._meta.get_fields())
