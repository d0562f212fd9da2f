"""The review queue (人工审核): what no strategy took, and executions that ended ``failed`` or
``unknown``, for a person to finish (docs/review.md).

Thin: the list, its tabs and filters here; every action goes through
``strategies.pipeline.review`` (approve, refuse, handled elsewhere: claimed once, carried out by
a Celery task) or the shared "paid" / "not paid" confirmations
(``strategies/admin/confirmations.py``). Owners act, viewers see (a POST is a 403), operators
act once they have chosen the shop.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters, ShowFacets
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import F, Prefetch, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from strategies.admin.common import REQUEST_STATUS_COLOURS, badge, money_column
from strategies.admin.confirmations import PaymentConfirmationAdmin
from strategies.admin.tenancy import (
    OperatorShopFilter,
    ReadOnlyAdminMixin,
    ShopScopedAdminMixin,
    shop_context,
)
from strategies.models import (
    AfterSaleRequest,
    Order,
    Reason,
    RequestStatus,
    Review,
    ReviewAction,
    ReviewResult,
    Scenario,
    Shop,
)
from strategies.pipeline.review import QUEUE_STATUSES, Submitted, review_submit

from .admin import DeclaredFiltersChangeList, invalid_filter_message
from .models import ReviewQueueEntry
from .paginators import CappedCountPaginator
from .selectors import explanation_row

NO_SCENARIO = "none"


class QueueTabFilter(admin.SimpleListFilter):
    """One tab per scenario, "no scenario", "failed" and "unknown"."""

    title = _("queue")
    parameter_name = "tab"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            *Scenario.choices,
            (NO_SCENARIO, _("No scenario")),
            (RequestStatus.FAILED.value, RequestStatus.FAILED.label),
            (RequestStatus.UNKNOWN.value, RequestStatus.UNKNOWN.label),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == RequestStatus.UNKNOWN:
            # Automatic executions left unknown, and people's reviews left unknown (their
            # request still waits, held by the review): both await "paid" / "not paid".
            # The reviews left unknown are few (ambiguous attempts the platform could not
            # settle): their requests are read first, by id, so the tab stays an index read
            # (status, or primary key) and never walks the queue testing each row's reviews.
            # (Index review_unknown; ``queryset`` is already scoped to the shop.)
            held = list(
                Review.objects.filter(result=ReviewResult.UNKNOWN).values_list(
                    "request_id", flat=True
                )[:1000]
            )
            return queryset.filter(Q(status=value) | Q(pk__in=held))
        if value == RequestStatus.FAILED:
            return queryset.filter(status=value)
        if value == NO_SCENARIO:
            return queryset.filter(status=RequestStatus.MANUAL_REVIEW).filter(
                Q(decision__scenario="") | Q(decision__isnull=True)
            )
        if value in Scenario.values:
            return queryset.filter(status=RequestStatus.MANUAL_REVIEW, decision__scenario=value)
        return queryset


@admin.register(ReviewQueueEntry)
class ReviewQueueAdmin(ReadOnlyAdminMixin, ShopScopedAdminMixin, PaymentConfirmationAdmin):
    list_display = (
        "aftersale_link",
        "display_amount",
        "buyer_reason",
        "order_state",
        "age",
        "deadline",
        "strategy_reasons",
        "status_badge",
        "review_state",
        "links",
    )
    list_display_links = None
    display_amount = money_column("amount", _("amount"))
    list_filter = (QueueTabFilter, "type", "reason")
    search_fields = ("=aftersale_id", "=order__order_id")
    search_help_text = _("Exact after-sales id or order id.")
    sortable_by = ()
    show_full_result_count = False
    show_facets = ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 50
    list_max_show_all = 200
    actions = (
        "review_approve",
        "review_refuse",
        "review_done_elsewhere",
        "confirm_paid",
        "confirm_not_paid",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Oldest platform deadline first, then the oldest request (index aftersale_review_queue).
        return (
            super()
            .get_queryset(request)
            .filter(status__in=QUEUE_STATUSES)
            .select_related("order", "decision", "shop")
            .only(
                "id",
                "shop",
                "aftersale_id",
                "order",
                "amount",
                "reason",
                "type",
                "status",
                "applied_at",
                "updated_at",
                "platform_deadline",
                "payload",
                "order__order_id",
                "order__status",
                "shop__timezone",
                "shop__name",
                "decision__id",
                "decision__scenario",
                "decision__strategy_id",
                "decision__explanations",
                "decision__failure_reason",
            )
            .prefetch_related(
                Prefetch("reviews", queryset=Review.objects.order_by("-created_at", "-id"))
            )
            .order_by(F("platform_deadline").asc(nulls_last=True), "applied_at", "id")
        )

    def get_list_filter(self, request: HttpRequest) -> tuple:
        return (OperatorShopFilter, *self.list_filter)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        # Exact, case-sensitive matches on the (shop, aftersale_id) index and the request's
        # order key (the order found by its (shop, order_id) index): the admin's "=field" is
        # UPPER() = UPPER(), which no index serves and which scanned the whole queue (a million
        # rows: bench/monitor).
        term = search_term.strip()
        if not term:
            return queryset, False
        context = shop_context(request)
        if context.shop is not None:
            # One shop: its order of that id is at most one row, found once (an InitPlan), so
            # both sides of the OR are index conditions (a BitmapOr), never a walk of the queue
            # in deadline order filtering every row.
            order = Order.objects.filter(shop_id=context.shop.pk, order_id=term).values("pk")[:1]
            return queryset.filter(
                Q(shop_id=context.shop.pk), Q(aftersale_id=term) | Q(order_id=Subquery(order))
            ), False
        shops = list(Shop.objects.values_list("id", flat=True))
        orders = Order.objects.filter(shop_id__in=shops, order_id=term).values("pk")
        return queryset.filter(
            Q(shop_id__in=shops), Q(aftersale_id=term) | Q(order_id__in=orders)
        ), False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return DeclaredFiltersChangeList

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        try:
            return super().get_changelist_instance(request)
        except IncorrectLookupParameters as exc:
            # Said, never silently ignored (the list redirects to ``?e=1``).
            self.message_user(request, invalid_filter_message(exc), messages.ERROR)
            raise

    # -- rights ---------------------------------------------------------------------------

    def _may_act(self, request: HttpRequest) -> bool:
        context = shop_context(request)
        # An operator acts in a shop only after choosing it (?shop=<id>).
        return context.may_edit and context.shop is not None

    def has_review_permission(self, request: HttpRequest) -> bool:
        return self._may_act(request)

    # "Paid" / "not paid" (strategies/admin/confirmations.py), with the same rights as the rest.
    confirm_back_query = "tab=unknown"

    def has_confirm_permission(self, request: HttpRequest) -> bool:
        return self._may_act(request)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if request.method == "POST" and not self._may_act(request):
            raise PermissionDenied  # viewers see; nothing they post changes anything
        return super().changelist_view(request, extra_context)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # -- columns --------------------------------------------------------------------------

    @admin.display(description=_("after-sales id"))
    def aftersale_link(self, obj: AfterSaleRequest) -> str:
        url = reverse("admin:strategies_aftersalerequest_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.aftersale_id)

    @admin.display(description=_("buyer's reason"))
    def buyer_reason(self, obj: AfterSaleRequest) -> str:
        text = _platform_reason_text(obj.payload)
        if text and text != obj.get_reason_display():
            return format_html("{}<br><small>{}</small>", obj.get_reason_display(), text)
        return obj.get_reason_display()

    @admin.display(description=_("order status"))
    def order_state(self, obj: AfterSaleRequest) -> str:
        return obj.order.get_status_display()

    @admin.display(description=_("age"))
    def age(self, obj: AfterSaleRequest) -> str:
        return _duration(timezone.now() - obj.applied_at)

    @admin.display(description=_("platform deadline"))
    def deadline(self, obj: AfterSaleRequest) -> str:
        if obj.platform_deadline is None:
            return "—"
        left = obj.platform_deadline - timezone.now()
        local = obj.platform_deadline.astimezone(obj.shop.zone).strftime("%Y-%m-%d %H:%M")
        if left.total_seconds() <= 0:
            return format_html(
                '{}<br><strong class="atom-overdue">{}</strong>', local, gettext("overdue")
            )
        return format_html(
            '{}<br><span class="atom-countdown" data-deadline="{}">{}</span>',
            local,
            obj.platform_deadline.isoformat(),
            gettext("%(left)s left") % {"left": _duration(left)},
        )

    @admin.display(description=_("why each strategy passed"))
    def strategy_reasons(self, obj: AfterSaleRequest) -> str:
        decision = getattr(obj, "decision", None)
        if decision is None:
            return ""
        if obj.status != RequestStatus.MANUAL_REVIEW:
            return decision.failure_reason  # what the platform last said
        rows = [explanation_row(e) for e in decision.explanations or []]
        if not rows:
            return gettext("No strategy covers this request.")
        return format_html_join(
            "",
            "<div><b>{}</b> {}</div>",
            ((name or scenario, msg) for scenario, name, _c, msg in rows[:6]),
        )

    @admin.display(description=_("status"))
    def status_badge(self, obj: AfterSaleRequest) -> str:
        return badge(obj.get_status_display(), REQUEST_STATUS_COLOURS.get(obj.status, "#8a8a8a"))

    @admin.display(description=_("review"))
    def review_state(self, obj: AfterSaleRequest) -> str:
        reviews = list(obj.reviews.all())
        if not reviews:
            return ""
        last = reviews[0]
        return format_html(
            "{} · {} · {}<br><small>{}</small>",
            last.get_action_display(),
            last.username,
            last.get_result_display(),
            last.detail or last.reason,
        )

    @admin.display(description=_("links"))
    def links(self, obj: AfterSaleRequest) -> str:
        parts = [
            (reverse("admin:strategies_order_change", args=[obj.order_id]), gettext("order")),
        ]
        decision = getattr(obj, "decision", None)
        if decision is not None:
            parts.append(
                (
                    reverse("admin:monitoring_decisionlogentry_change", args=[decision.pk]),
                    gettext("decision"),
                )
            )
            if decision.strategy_id:
                parts.append(
                    (
                        reverse("admin:strategies_strategy_change", args=[decision.strategy_id]),
                        gettext("strategy"),
                    )
                )
        return format_html_join(" · ", '<a href="{}">{}</a>', parts)

    # -- actions --------------------------------------------------------------------------

    @admin.action(description=_("Approve the selected requests"), permissions=["review"])
    def review_approve(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._review(request, queryset, ReviewAction.APPROVE)

    @admin.action(
        description=_("Refuse the selected requests (with a reason)"), permissions=["review"]
    )
    def review_refuse(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._review(request, queryset, ReviewAction.REFUSE)

    @admin.action(
        description=_("Mark the selected requests as handled elsewhere"), permissions=["review"]
    )
    def review_done_elsewhere(
        self, request: HttpRequest, queryset: QuerySet
    ) -> HttpResponse | None:
        return self._review(request, queryset, ReviewAction.DONE_ELSEWHERE)

    def _user(self, request: HttpRequest) -> AbstractBaseUser:
        user = request.user
        if not isinstance(user, AbstractBaseUser):
            raise PermissionDenied
        return user

    def _review(
        self, request: HttpRequest, queryset: QuerySet, action: ReviewAction
    ) -> HttpResponse | None:
        waiting = list(
            queryset.filter(status__in=[RequestStatus.MANUAL_REVIEW, RequestStatus.FAILED])
            .select_related(None)
            .prefetch_related(None)
            .only("id", "aftersale_id", "amount", "updated_at", "status")
            .order_by("id")
        )
        if not waiting:
            self.message_user(
                request,
                gettext("None of the selected requests can be acted on: nothing done."),
                messages.WARNING,
            )
            return None
        reason = request.POST.get("review_reason", "").strip()
        needs_reason = action != ReviewAction.APPROVE
        if request.POST.get("post") != "yes" or (needs_reason and not reason):
            total = sum((r.amount for r in waiting), Decimal("0.00"))
            return TemplateResponse(
                request,
                "admin/monitoring/reviewqueueentry/confirm_review.html",
                {
                    **self.admin_site.each_context(request),
                    "title": ReviewAction(action).label,
                    "opts": self.model._meta,
                    "requests": waiting,
                    "count": len(waiting),
                    "total": total,
                    "review_action": action.value,
                    "action": f"review_{action.value}",
                    "needs_reason": needs_reason,
                    "reason_missing": request.POST.get("post") == "yes" and not reason,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "skipped": queryset.count() - len(waiting),
                    "shop_query": urlencode(shop_context(request).shop_query()),
                },
            )
        user = self._user(request)
        counts: dict[Submitted, int] = {}
        for r in waiting:
            # The version the person saw on the confirmation page; a request changed since is
            # re-read (shown again), never acted on blind.
            seen = parse_datetime(request.POST.get(f"version_{r.pk}", "")) or r.updated_at
            outcome, _review = review_submit(
                request_id=r.pk, action=action, user=user, seen_version=seen, reason=reason
            )
            counts[outcome] = counts.get(outcome, 0) + 1
        self._report(request, counts)
        return None

    def _report(self, request: HttpRequest, counts: dict[Submitted, int]) -> None:
        queued = counts.get(Submitted.QUEUED, 0) + counts.get(Submitted.DONE, 0)
        if queued:
            self.message_user(
                request,
                ngettext(
                    "%(n)d request taken: the platform is being told (see the review column).",
                    "%(n)d requests taken: the platform is being told (see the review column).",
                    queued,
                )
                % {"n": queued},
                messages.SUCCESS,
            )
        notes = {
            Submitted.TAKEN: gettext("%(n)d were already taken by someone else: nothing sent."),
            Submitted.STALE: gettext(
                "%(n)d changed since you saw them: nothing sent, check them again."
            ),
            Submitted.OVER_TOTAL: gettext(
                "%(n)d would take their order past its total: nothing sent."
            ),
        }
        for outcome, text in notes.items():
            if counts.get(outcome):
                self.message_user(request, text % {"n": counts[outcome]}, messages.WARNING)


def _platform_reason_text(payload: Any) -> str:
    """The platform's own words for the buyer's reason, when its payload has them."""
    if not isinstance(payload, dict):
        return ""
    for source in (payload, payload.get("refund") or {}, payload.get("info") or {}):
        if isinstance(source, dict):
            for key in ("refundReasonDesc", "reason_text", "reason"):
                value = source.get(key)
                # A code of ours (the generic API's) is not the platform's own text.
                if isinstance(value, str) and value and value not in Reason.values:
                    return value[:200]
    return ""


def _duration(delta: Any) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return gettext("%(d)dd %(h)dh") % {"d": days, "h": hours}
    if hours:
        return gettext("%(h)dh %(m)dm") % {"h": hours, "m": mins}
    return gettext("%(m)dm") % {"m": mins}
