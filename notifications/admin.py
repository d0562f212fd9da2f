"""The shop's inbox of notices and a read-only view of outgoing deliveries.

Both are scoped to the user's shop by ``ShopScopedAdminMixin``; an object of another shop is a
404 on every URL (change, delete, history), never a redirect that confirms it exists.

Read state is each user's own (``NoticeRead``): opening a notice marks it read for whoever
opened it, viewers included, since that changes nothing for anyone else. Everything else
(the "mark as read" action, deleting) is for owners and operators; a viewer's POST of an
action is a 403 and changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from strategies.admin.common import operator_filters
from strategies.admin.tenancy import ReadOnlyAdminMixin, ShopScopedAdminMixin, shop_context

from . import services
from .models import Delivery, DeliveryAttempt, DeliveryStatus, Notice, NoticeRead

NOTICE_FIELDS = (
    "shop",
    "title",
    "body",
    "alert",
    "display_links",
    "created_at",
    "display_read_at",
)
ATTEMPT_FIELDS = ("at", "display_ok", "permanent", "error")
DELIVERY_FIELDS = (
    "shop",
    "alert",
    "notice",
    "channel",
    "recipient",
    "subject",
    "body",
    "status",
    "attempts",
    "last_error",
    "next_attempt_at",
    "sent_at",
    "idempotency_key",
)


def _reader(request: HttpRequest) -> int:
    """The user whose read state a page shows and changes (an admin page always has one)."""
    user_id = shop_context(request).user_id
    if user_id is None:
        raise PermissionDenied
    return user_id


class _ReadStatus(admin.SimpleListFilter):
    """Read or unread by the user looking at the list."""

    title = _("read")
    parameter_name = "unread"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("Unread")), ("0", _("Read"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "1":
            return queryset.filter(atom_read_at__isnull=True)
        if self.value() == "0":
            return queryset.filter(atom_read_at__isnull=False)
        return queryset


@admin.register(Notice)
class NoticeAdmin(ShopScopedAdminMixin, admin.ModelAdmin):
    list_display = ["display_title", "display_links", "shop", "created_at", "display_read_at"]
    list_display_links = ["display_title"]
    list_filter = [_ReadStatus]
    list_select_related = ["shop", "alert__strategy"]
    ordering = ["-created_at", "-id"]
    fields = NOTICE_FIELDS
    readonly_fields = NOTICE_FIELDS
    actions = ["mark_read"]
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_mark_read_permission(self, request: HttpRequest) -> bool:
        return shop_context(request).may_edit

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # When this user read each notice (None: unread), one indexed subquery per row shown.
        mine = NoticeRead.objects.filter(notice=OuterRef("pk"), user_id=_reader(request))
        context = shop_context(request)
        return (
            super()
            .get_queryset(request)
            .annotate(
                atom_read_at=Subquery(mine.values("read_at")[:1]),
                atom_may_edit=Value(context.may_edit),
                atom_operator=Value(context.operator),
            )
        )

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return operator_filters(request, self.list_filter)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # An action is a write: refused outright to viewers, not quietly turned into
        # "no action selected" (the checkboxes are not offered to them either).
        acting = "action" in request.POST or helpers.ACTION_CHECKBOX_NAME in request.POST
        if request.method == "POST" and acting and not shop_context(request).may_edit:
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("title"), ordering="created_at")
    def display_title(self, obj: Notice) -> str:
        if getattr(obj, "atom_read_at", None) is None:
            return format_html("<strong>{}</strong>", obj.title)
        return obj.title

    @admin.display(description=_("what you can do"))
    def display_links(self, obj: Notice) -> str:
        """A cap alert's ways on: its strategy, the consumption dashboard on the alert's day,
        and, for those who may edit, "pause this strategy" (a confirmation page, then a POST)
        and "raise the cap" (the strategy form at its daily cap)."""
        alert = obj.alert
        if alert is None:
            return "—"
        # The user's rights come annotated on the row (get_queryset): a display has no request.
        links = services.alert_links(alert=alert, notice=obj, operator=obj.atom_operator)  # type: ignore[attr-defined]
        shown: list[tuple[str | None, Any, str]] = [
            (links.strategy, _("Open the strategy"), "atom-notice-strategy"),
            (links.dashboard, _("Consumption dashboard"), "atom-notice-dashboard"),
        ]
        if obj.atom_may_edit:  # type: ignore[attr-defined]
            shown += [
                (links.pause, _("Pause this strategy"), "atom-notice-pause"),
                (links.raise_cap, _("Raise the cap"), "atom-notice-raise"),
            ]
        # An archived strategy has no page, no pause and no cap to raise: its links are None.
        return format_html_join(
            " · ", '<a href="{}" class="{}">{}</a>', ((u, c, t) for u, t, c in shown if u)
        )

    @admin.display(description=_("read by you at"))
    def display_read_at(self, obj: Notice) -> Any:
        read_at = getattr(obj, "atom_read_at", None)
        # Formatted here: a read-only field shows a method's datetime as its repr otherwise.
        return date_format(timezone.localtime(read_at), "DATETIME_FORMAT") if read_at else "-"

    @admin.action(description=_("Mark as read"), permissions=["mark_read"])
    def mark_read(self, request: HttpRequest, queryset: QuerySet) -> None:
        # The queryset comes from get_queryset: already scoped to the user's shop.
        changed = services.notices_mark_read(
            notice_ids=list(queryset.values_list("pk", flat=True)), user_id=_reader(request)
        )
        self.message_user(
            request,
            ngettext("%(n)d notice marked as read.", "%(n)d notices marked as read.", changed)
            % {"n": changed},
            messages.SUCCESS,
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        if request.method == "GET":
            # Reading marks it read for this user only.
            services.notices_mark_read(notice_ids=[obj.pk], user_id=_reader(request))
        return super().change_view(request, object_id, form_url, extra_context)


class DeliveryAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = DeliveryAttempt
    fields = ATTEMPT_FIELDS
    readonly_fields = ATTEMPT_FIELDS
    extra = 0
    can_delete = False
    ordering = ["-at", "-id"]

    @admin.display(description=_("result"))
    def display_ok(self, obj: DeliveryAttempt) -> str:
        if obj.ok is None:
            return str(_("no answer (interrupted)"))
        return str(_("sent")) if obj.ok else str(_("failed"))


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, ShopScopedAdminMixin, admin.ModelAdmin):
    shop_field = "shop"
    list_display = [
        "created_at",
        "display_strategy",
        "channel",
        "recipient",
        "display_status",
        "attempts",
        "last_error",
        "sent_at",
    ]
    list_filter = ["status", "channel"]
    list_select_related = ["alert__strategy", "notice", "shop"]
    ordering = ["-created_at", "-id"]
    fields = DELIVERY_FIELDS
    readonly_fields = DELIVERY_FIELDS
    inlines = [DeliveryAttemptInline]
    show_full_result_count = False
    list_per_page = 50

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return operator_filters(request, self.list_filter)

    @admin.display(description=_("strategy"), ordering="alert__strategy__name")
    def display_strategy(self, obj: Delivery) -> str:
        # A channel alert's delivery has no strategy: its notice's title says what it is about.
        if obj.alert is None:
            return obj.notice.title if obj.notice is not None else ""
        return obj.alert.strategy.name

    @admin.display(description=_("status"), ordering="status")
    def display_status(self, obj: Delivery) -> str:
        label = obj.get_status_display()
        if obj.status == DeliveryStatus.FAILED:
            return format_html('<strong style="color:#ba2121">{}</strong>', label)
        if obj.status == DeliveryStatus.PENDING and obj.attempts:
            return format_html("{} ({})", label, _("retrying"))
        return label
