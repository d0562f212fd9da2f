"""The strategy monitor (策略监控) in the admin: the decision log, read-only and shop-scoped, built
for tens of millions of rows (RELIABILITY.md "Big tables"), and the entry to the consumption
dashboard.

Big-table rules: no full COUNT(*) (``show_full_result_count = False`` and a capped-count
paginator), no facets, no date drill-down, ordering ``(-decided_at, -id)`` that matches the
shop-scoped indexes, exact-match search on the indexed id columns, every filter on an indexed
column, related rows fetched in the same query.

Only the declared filters and the search narrow the log (RELIABILITY.md 33): any other query
parameter, a lookup such as ``aftersale_id__regex`` or one into the JSON explanations included,
is an invalid filter, shown as a message before any query on the log runs, never a scan. The
CSV export goes through the same changelist and answers 400 with the same message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.filters import ChoicesFieldListFilter
from django.contrib.admin.options import IncorrectLookupParameters, ShowFacets
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ERROR_FLAG, ORDER_VAR, ChangeList
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from strategies.admin.common import money_column
from strategies.admin.tenancy import (
    SHOP_PARAM,
    OperatorShopFilter,
    ReadOnlyAdminMixin,
    ShopScopedAdminMixin,
    parse_id,
    shop_context,
)
from strategies.models import Outcome, Shop, Strategy, TrialHit

from .models import ConsumptionOverview, DecisionLogEntry
from .paginators import CappedCountPaginator
from .selectors import decisions_in_local_days, default_zone, explanation_row

OUTCOME_COLOURS: dict[str, str] = {
    Outcome.APPROVED.value: "#2e7d32",
    Outcome.MANUAL_REVIEW.value: "#ef6c00",
}


def shop_local(value: dt.datetime | None, shop: Shop) -> str:
    if value is None:
        return "-"
    return date_format(timezone.localtime(value, shop.zone), "Y-m-d H:i:s")


class StrategyFilter(admin.SimpleListFilter):
    """Only the caller's shop's strategies (an operator sees every shop's, prefixed)."""

    title = _("strategy")
    parameter_name = "strategy"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        context = shop_context(request)
        # Archived strategies still name their decisions: they stay in the filter.
        strategies = context.scope(Strategy.all_objects.all())
        if context.operator:
            if context.shop is None:
                return []  # every shop's strategies would be an endless list: pick a shop first
            strategies = strategies.filter(shop=context.shop)
            rows = strategies.order_by("shop__code", "scenario", "position", "id").values_list(
                "id", "name", "shop__code"
            )
            return [(str(pk), f"{code} · {name}") for pk, name, code in rows]
        rows = strategies.order_by("scenario", "position", "id").values_list("id", "name")
        return [(str(pk), name) for pk, name in rows]

    def has_output(self) -> bool:
        # A value that is set always filters, even when the caller's shop has no strategy to
        # offer: Django drops a filter without output, and its parameter with it.
        return super().has_output() or self.value() is not None

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        strategy_id = parse_id(value)
        if strategy_id is None:
            raise InvalidFilter(invalid_choice_message(self.title, value))
        # The list is already scoped to the caller's shop: another shop's id matches nothing.
        # A trial strategy decides nothing: its requests are the ones it would have approved
        # (its trial results), marked as such in the list.
        would_hit = TrialHit.objects.filter(strategy_id=strategy_id)
        return queryset.filter(
            Q(strategy_id=strategy_id) | Q(pk__in=would_hit.values("decision_id"))
        ).annotate(
            atom_would_hit=Exists(would_hit.filter(decision_id=OuterRef("pk"))),
            atom_trial_name=Subquery(
                Strategy.all_objects.filter(pk=strategy_id).values("name")[:1]
            ),
        )


class DecidedDateRangeFilter(admin.ListFilter):
    """Decided from / until, as two date inputs, in shop-local days (both ends included)."""

    title = _("decision date (shop-local)")
    template = "admin/monitoring/date_range_filter.html"
    parameter_from = "decided_from"
    parameter_until = "decided_until"

    def __init__(self, request: HttpRequest, params: dict, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        for name in (self.parameter_from, self.parameter_until):
            if name in params:
                value = params.pop(name)
                self.used_parameters[name] = value[-1] if isinstance(value, list) else value

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return [self.parameter_from, self.parameter_until]

    def _date(self, name: str) -> dt.date | None:
        raw = str(self.used_parameters.get(name) or "").strip()
        if not raw:
            return None
        try:
            return dt.date.fromisoformat(raw)
        except ValueError as exc:
            raise InvalidFilter(invalid_date_message(raw)) from exc

    def _zone(self, request: HttpRequest) -> dt.tzinfo:
        # A member's own shop, or the operator's chosen one; the server's zone across shops.
        shop = shop_context(request).shop
        return shop.zone if shop else default_zone()

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        first, last = self._date(self.parameter_from), self._date(self.parameter_until)
        if first is None and last is None:
            return queryset
        if first is not None and last is not None and first > last:
            raise InvalidFilter(
                gettext(
                    "Invalid filter: the period starts on %(first)s, after it ends on %(last)s. "
                    "Swap the two days."
                )
                % {"first": first.isoformat(), "last": last.isoformat()}
            )
        try:
            return decisions_in_local_days(
                queryset, zone=self._zone(request), first=first, last=last
            )
        except ValueError as exc:  # a day out of range: an invalid filter
            days = (
                self.used_parameters.get(n) for n in (self.parameter_from, self.parameter_until)
            )
            raise InvalidFilter(
                invalid_date_message(" ~ ".join(str(d) for d in days if d))
            ) from exc

    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        ours = (self.parameter_from, self.parameter_until)
        keep = [
            (key, value)
            for key, values in changelist.params.items()
            if key not in ours
            for value in (values if isinstance(values, list) else [values])
        ]
        yield from [
            {
                "from": self.used_parameters.get(self.parameter_from, ""),
                "until": self.used_parameters.get(self.parameter_until, ""),
                "parameter_from": self.parameter_from,
                "parameter_until": self.parameter_until,
                "hidden": keep,
                "clear_url": changelist.get_query_string(remove=list(ours)),
            }
        ]


class InvalidFilter(IncorrectLookupParameters):
    """A query the decision log refuses; ``message`` says why, in the interface language."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def invalid_date_message(value: str) -> str:
    return gettext(
        "Invalid filter: “%(value)s” is not a day the decision log can show (YYYY-MM-DD)."
    ) % {"value": value}


def unknown_filters_message(names: list[str]) -> str:
    return ngettext(
        "Invalid filter: %(names)s is not a filter of the decision log. Use the filters on "
        "the right or the search box.",
        "Invalid filters: %(names)s are not filters of the decision log. Use the filters on "
        "the right or the search box.",
        len(names),
    ) % {"names": ", ".join(f"“{name}”" for name in names)}


def invalid_choice_message(title: Any, value: str) -> str:
    return gettext(
        "Invalid filter: “%(value)s” is not a choice of the filter “%(title)s”: pick one in the "
        "list on the right."
    ) % {"value": value, "title": title}


def invalid_filter_message(exc: IncorrectLookupParameters) -> str:
    if isinstance(exc, InvalidFilter):
        return exc.message
    return gettext("Invalid filter or page: the decision log cannot be shown with it.")


class DeclaredFiltersChangeList(ChangeList):
    """The decision log narrowed by its declared filters and search only.

    Each list filter takes its own parameters; whatever is left (Django would apply it as a
    lookup: ``aftersale_id__regex``, ``explanations__0__code``...) is refused, as is an
    ordering (nothing is sortable: ``o`` would sort millions of rows).
    """

    def get_filters(self, request: HttpRequest) -> Any:
        if ORDER_VAR in self.params:
            raise InvalidFilter(unknown_filters_message([ORDER_VAR]))
        try:
            specs, has_filters, remaining, duplicates, active = super().get_filters(request)
        except DisallowedModelAdminLookup as exc:  # a lookup across a relation
            refused = [
                key
                for key, values in self.get_filters_params().items()
                if not all(self.model_admin.lookup_allowed(key, v, request) for v in values)
            ]
            raise InvalidFilter(unknown_filters_message(refused)) from exc
        if remaining:
            raise InvalidFilter(unknown_filters_message(sorted(remaining)))
        for spec in specs:
            # A value outside a field's choices would silently show nothing: say so.
            if isinstance(spec, ChoicesFieldListFilter) and spec.lookup_val:
                allowed = {str(value) for value, _label in spec.field.flatchoices}
                for value in spec.lookup_val:
                    if value not in allowed:
                        raise InvalidFilter(invalid_choice_message(spec.title, value))
        return specs, has_filters, remaining, duplicates, active


class ExportChangeList(DeclaredFiltersChangeList):
    """The changelist's filtered, searched, ordered queryset without loading a page of it."""

    def get_results(self, request: HttpRequest) -> None:
        self.result_count = 0
        self.full_result_count = None
        self.result_list = []
        self.can_show_all = False
        self.multi_page = False
        self.paginator = None


@admin.register(DecisionLogEntry)
class DecisionLogAdmin(ReadOnlyAdminMixin, ShopScopedAdminMixin, admin.ModelAdmin):
    """Read-only for everyone, operators included: the decision service writes the log."""

    # What was decided first (outcome, strategy, amount): a narrow window still shows it.
    list_display = (
        "decided_local",
        "outcome_badge",
        "strategy_shown",
        "display_amount",
        "aftersale_id",
        "order_id",
        "reason",
        "scenario",
        "request_status",
    )
    list_display_links = ("decided_local", "aftersale_id")
    list_filter = ("scenario", "reason", "outcome", StrategyFilter, DecidedDateRangeFilter)
    search_fields = ("aftersale_id", "order_id")
    search_help_text = _("Exact after-sales id or order id.")
    list_select_related = ("shop", "request")
    ordering = ("-decided_at", "-id")
    sortable_by = ()
    show_full_result_count = False
    show_facets = ShowFacets.NEVER
    date_hierarchy = None
    paginator = CappedCountPaginator
    list_per_page = 50
    list_max_show_all = 200
    actions = None
    change_list_template = "admin/monitoring/decisionlogentry/change_list.html"
    display_amount = money_column("amount", _("amount"))
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "shop",
                    "aftersale_id",
                    "order_id",
                    "request_status",
                    "reason",
                    "outcome_badge",
                    "scenario",
                    "strategy_name",
                    "action",
                    "display_amount",
                    "decided_local",
                )
            },
        ),
        (_("Why"), {"fields": ("explanations_table",)}),
        (
            _("Execution"),
            {"fields": ("executed_local", "failed_local", "failure_reason")},
        ),
    )
    readonly_fields = (
        "display_amount",
        "request_status",
        "outcome_badge",
        "decided_local",
        "explanations_table",
        "executed_local",
        "failed_local",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The raw payload of the request is never shown here: do not drag it along.
        return (
            super()
            .get_queryset(request)
            .select_related("shop", "request")
            .defer("request__payload")
        )

    def get_list_filter(self, request: HttpRequest) -> tuple:
        # Always declared: the shop filter offers choices to operators only, and for staff it
        # takes ``?shop=<own id>`` (another shop's id is a 404, ShopScopedAdminMixin).
        return (OperatorShopFilter, *self.list_filter)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        # Exact matches on the (shop, aftersale_id) and (shop, order_id) indexes; never icontains
        # over millions of rows.
        term = search_term.strip()
        if not term:
            return queryset, False
        if shop_context(request).operator and not request.GET.get(SHOP_PARAM):
            # The indexes lead with the shop: naming every shop lets PostgreSQL probe each
            # shop's index range instead of scanning the whole table.
            queryset = queryset.filter(shop_id__in=list(Shop.objects.values_list("id", flat=True)))
        return queryset.filter(Q(aftersale_id=term) | Q(order_id=term)), False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        if getattr(request, "_monitoring_export", False):
            return ExportChangeList
        return DeclaredFiltersChangeList

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        try:
            return super().get_changelist_instance(request)
        except IncorrectLookupParameters as exc:
            # The list page redirects to ``?e=1``: say why there (the export answers 400).
            if not getattr(request, "_monitoring_export", False):
                self.message_user(request, invalid_filter_message(exc), messages.ERROR)
            raise

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        consumption = reverse("monitoring:consumption")
        query = shop_context(request).shop_query()
        context = {
            "atom_consumption_url": f"{consumption}?{urlencode(query)}" if query else consumption,
            **(extra_context or {}),
        }
        response = super().changelist_view(request, context)
        if getattr(response, "template_name", None) == "admin/invalid_setup.html":
            # An invalid filter typed next to ``e=1``: Django would call it a "database
            # error"; the plain list says what was wrong (the message is already queued).
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return response

    def export_queryset(self, request: HttpRequest) -> QuerySet:
        """The queryset the changelist would show for this request (filters, search, order)."""
        request._monitoring_export = True  # type: ignore[attr-defined]
        changelist = self.get_changelist_instance(request)
        return changelist.queryset

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        # Another shop's decision is "not found", exactly like one that does not exist.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404
        return super().history_view(request, object_id, extra_context)

    @admin.display(description=_("decided at (shop time)"), ordering="decided_at")
    def decided_local(self, obj: DecisionLogEntry) -> str:
        return shop_local(obj.decided_at, obj.shop)

    @admin.display(description=_("executed at (shop time)"))
    def executed_local(self, obj: DecisionLogEntry) -> str:
        return shop_local(obj.executed_at, obj.shop)

    @admin.display(description=_("failed at (shop time)"))
    def failed_local(self, obj: DecisionLogEntry) -> str:
        return shop_local(obj.failed_at, obj.shop)

    @admin.display(description=_("outcome"), ordering="outcome")
    def outcome_badge(self, obj: DecisionLogEntry) -> str:
        return format_html(
            '<span class="atom-badge" style="background:{};color:#fff;padding:1px 6px;'
            'border-radius:8px;white-space:nowrap">{}</span>',
            OUTCOME_COLOURS.get(obj.outcome, "#607d8b"),
            obj.get_outcome_display(),
        )

    @admin.display(description=_("strategy name"))
    def strategy_shown(self, obj: DecisionLogEntry) -> str:
        # Found by the strategy filter as a trial result: say so, next to what was decided.
        if getattr(obj, "atom_would_hit", False):
            return format_html(
                '{}<br><span class="atom-badge atom-would-hit" style="background:{};color:#fff;'
                'padding:1px 6px;border-radius:8px;white-space:nowrap">{}</span>',
                obj.strategy_name,
                "#d18b00",
                gettext("trial: %(name)s would approve")
                % {"name": getattr(obj, "atom_trial_name", "")},
            )
        return obj.strategy_name or "-"

    @admin.display(description=_("request status"))
    def request_status(self, obj: DecisionLogEntry) -> str:
        return obj.request.get_status_display()

    @admin.display(description=_("explanations"))
    def explanations_table(self, obj: DecisionLogEntry) -> str:
        rows = [explanation_row(entry) for entry in obj.explanations or []]
        if not rows:
            return str(_("No strategy was passed over before this decision."))
        head = format_html(
            "<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>",
            _("scenario"),
            _("strategy"),
            _("code"),
            _("message"),
        )
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>", rows
        )
        return format_html(
            '<table class="atom-explanations">{}<tbody>{}</tbody></table>', head, body
        )


@admin.register(ConsumptionOverview)
class ConsumptionOverviewAdmin(ReadOnlyAdminMixin, ShopScopedAdminMixin, admin.ModelAdmin):
    """The admin index/sidebar entry of the consumption dashboard: it opens the dashboard."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        url = reverse("monitoring:consumption")
        if request.GET.get(SHOP_PARAM):  # the dashboard judges the id (?shop=<id>)
            url += "?" + urlencode({SHOP_PARAM: request.GET[SHOP_PARAM]})
        return HttpResponseRedirect(url)
