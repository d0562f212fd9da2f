"""Backtests (回测) in the back office: the buttons that start one (the strategy form, saved or
not: "what if I save this"; a new priority order from the list), and the saved reports with
their progress, per-request traces and CSV. The work is ``strategies.backtest.services``'."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from strategies.admin.common import badge, in_zone, operator_filters, rendered
from strategies.admin.tenancy import ShopScopedAdminMixin, parse_id, shop_context
from strategies.backtest import loaders
from strategies.backtest.charts import paired_chart
from strategies.backtest.loaders import snapshot_of, strategy_set
from strategies.backtest.replay import Moment, Period
from strategies.backtest.services import (
    PERIOD_DAYS,
    backtest_cancel,
    backtest_start,
    members_decode,
    set_reordered,
    set_with,
)
from strategies.backtest.trace import trace
from strategies.matching import explanation_message, money
from strategies.models import (
    BacktestChange,
    BacktestChangeKind,
    BacktestKind,
    BacktestRun,
    BacktestStatus,
    Decision,
    RequestStatus,
    Scenario,
    Shop,
    Strategy,
    StrategyStatus,
)

# An unsaved new strategy's id in the replayed set (stored ones are positive).
NEW_STRATEGY_ID = -1
DEFAULT_DAYS = 30
CHANGES_PER_PAGE = 100
STATUS_COLOURS: dict[str, str] = {
    BacktestStatus.QUEUED: "#8a8a8a",
    BacktestStatus.RUNNING: "#1565c0",
    BacktestStatus.DONE: "#2e7d32",
    BacktestStatus.FAILED: "#c62828",
    BacktestStatus.CANCELLED: "#d18b00",
}
FINISHED = {BacktestStatus.DONE, BacktestStatus.FAILED, BacktestStatus.CANCELLED}


def _days(request: HttpRequest) -> int | None:
    value = parse_id(request.POST.get("backtest_days", str(DEFAULT_DAYS)))
    return value if value in PERIOD_DAYS else None


def report_url(run: BacktestRun) -> str:
    return reverse("admin:strategies_backtestrun_change", args=[run.pk])


def period_choices() -> list[tuple[int, str]]:
    return [(d, gettext("Last %(days)d days") % {"days": d}) for d in PERIOD_DAYS]


class StrategyBacktestMixin:
    """The strategy admin's backtest buttons (mixed into ``StrategyAdmin``, which provides
    ``_shop``, ``_scenario``, ``_query`` and ``_url``)."""

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path(
                "add/backtest/",
                view(self.backtest_form_view),
                name="strategies_strategy_backtest_add",
            ),
            path(
                "backtest/order/",
                view(self.backtest_order_view),
                name="strategies_strategy_backtest_order",
            ),
            path(
                "<path:object_id>/backtest/",
                view(self.backtest_form_view),
                name="strategies_strategy_backtest",
            ),
            path(
                "<path:object_id>/performance/",
                view(self.performance_view),
                name="strategies_strategy_performance",
            ),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        admin_self: Any = self
        context = dict(extra_context or {})
        shop, scenario = admin_self._shop(request), admin_self._scenario(request)
        if shop is not None and scenario is not None and shop_context(request).may_edit:
            query = admin_self._query(request, scenario=scenario)
            context["atom_backtest_order_url"] = (
                f"{reverse('admin:strategies_strategy_backtest_order')}?{query}"
            )
        context["atom_backtests_url"] = reverse("admin:strategies_backtestrun_changelist")
        return super().changelist_view(request, context)  # type: ignore[misc]

    # -- the form's button: "what if I save this" ---------------------------------------------

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Strategy | None = None,
    ) -> HttpResponse:
        context.update(self.backtest_panel(request, obj))
        return super().render_change_form(  # type: ignore[misc]
            request, context, add, change, form_url, obj
        )

    def backtest_panel(self, request: HttpRequest, obj: Strategy | None) -> dict[str, Any]:
        """The change form's context for its backtest button and the strategy's reports."""
        admin_self: Any = self
        if obj is not None:
            url = reverse("admin:strategies_strategy_backtest", args=[obj.pk])
        else:
            query = admin_self._query(request, scenario=admin_self._scenario(request))
            url = f"{reverse('admin:strategies_strategy_backtest_add')}?{query}"
        runs = list(BacktestRun.objects.filter(strategy=obj)[:5]) if obj is not None else []
        return {
            "atom_performance_url": (
                reverse("admin:strategies_strategy_performance", args=[obj.pk])
                if obj is not None
                else None
            ),
            "atom_backtest_url": url if shop_context(request).may_edit else None,
            "atom_backtest_periods": period_choices(),
            "atom_backtest_default": DEFAULT_DAYS,
            "atom_backtest_runs": runs,
            "atom_backtest_all_url": (
                f"{reverse('admin:strategies_backtestrun_changelist')}?strategy__id__exact={obj.pk}"
                if obj is not None
                else None
            ),
        }

    def backtest_form_view(self, request: HttpRequest, object_id: str | None = None) -> Any:
        """Validates the posted form exactly as saving would, then backtests the strategy set
        with this strategy as typed (nothing is saved); invalid input shows the form again."""
        admin_self: Any = self
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not admin_self.has_change_permission(request):
            raise PermissionDenied
        obj: Strategy | None = None
        if object_id is not None:
            obj = admin_self.get_object(request, unquote(object_id))
            if obj is None:
                raise Http404
            shop, scenario = obj.shop, obj.scenario
        else:
            if admin_self._foreign_shop_asked(request):
                raise Http404
            shop, scenario = admin_self._shop(request), admin_self._scenario(request)
            if shop is None or scenario is None:
                raise Http404
        with in_zone(shop):
            form_class = admin_self.get_form(request, obj, change=obj is not None)
            form = form_class(request.POST, request.FILES, instance=obj)
            days = _days(request)
            if days is None:
                form.add_error(None, gettext("Choose 7, 30 or 90 days."))
            if form.is_valid() and days is not None:
                candidate = self._candidate(form, shop=shop, scenario=scenario, obj=obj)
                name = candidate.name
                title = (
                    gettext("“%(name)s” as edited (not saved)") % {"name": name}
                    if obj is not None
                    else gettext("New strategy “%(name)s” (not saved)") % {"name": name}
                )
                try:
                    run = backtest_start(
                        shop=shop,
                        members=set_with(strategy_set(shop=shop), candidate),
                        kind=BacktestKind.EDIT if obj is not None else BacktestKind.ADD,
                        title=title,
                        days=days,
                        strategy=obj,
                        scenario=scenario,
                        actor=request.user,
                    )
                except ValidationError as exc:
                    for message in exc.messages:
                        form.add_error(None, message)
                else:
                    return HttpResponseRedirect(report_url(run))
            return rendered(self._form_again(request, form, obj))

    @staticmethod
    def _candidate(form: Any, *, shop: Shop, scenario: str, obj: Strategy | None) -> Any:
        # ``is_valid`` has put the typed values on the form's instance; it is never saved.
        instance: Strategy = form.instance
        if obj is None:
            instance.pk = NEW_STRATEGY_ID
            instance.shop = shop
            instance.scenario = scenario
            last = (
                Strategy.objects.filter(shop=shop, scenario=scenario)
                .order_by("-position")
                .values_list("position", flat=True)
                .first()
            )
            instance.position = (last or 0) + 1
        if "products" in form.cleaned_data:
            instance.atom_products = list(form.cleaned_data["products"])  # type: ignore[attr-defined]
        elif obj is None:
            instance.atom_products = []  # type: ignore[attr-defined]
        return snapshot_of(instance)

    def _form_again(self, request: HttpRequest, form: Any, obj: Strategy | None) -> HttpResponse:
        """The change form with what was typed and why it was not backtested."""
        admin_self: Any = self
        fieldsets = admin_self.get_fieldsets(request, obj)
        admin_form = helpers.AdminForm(
            form,
            list(fieldsets),
            admin_self.get_prepopulated_fields(request, obj),
            admin_self.get_readonly_fields(request, obj),
            model_admin=admin_self,
        )
        title = gettext("Change %s") if obj is not None else gettext("Add %s")
        context = {
            **admin_self.admin_site.each_context(request),
            "title": title % admin_self.opts.verbose_name,
            "subtitle": str(obj) if obj else None,
            "adminform": admin_form,
            "object_id": obj.pk if obj else None,
            "original": obj,
            "is_popup": False,
            "to_field": None,
            "media": admin_self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": admin_self.get_preserved_filters(request),
        }
        if obj is not None:
            form_url = reverse("admin:strategies_strategy_change", args=[obj.pk])
        else:
            query = admin_self._query(request, scenario=admin_self._scenario(request))
            form_url = f"{reverse('admin:strategies_strategy_add')}?{query}"
        return admin_self.render_change_form(
            request, context, add=obj is None, change=obj is not None, obj=obj, form_url=form_url
        )

    # -- the strategy's performance -------------------------------------------------------------

    def performance_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Per day: what the strategy approved, its share of its scenario's requests, why it
        missed the others, when its cap ran out; for a trial, what it would have approved.

        From the shop's latest replay of the strategies as they are (the last 30 days), which
        reproduces the live decisions and adds what the decision log does not keep (every
        miss's reason, a trial's would-approvals per day). POST starts a fresh one.
        """
        admin_self: Any = self
        obj = admin_self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        shop = obj.shop
        if request.method == "POST":
            if not shop_context(request).may_edit:
                raise PermissionDenied
            try:
                started = backtest_start(
                    shop=shop,
                    members=strategy_set(shop=shop),
                    kind=BacktestKind.CURRENT,
                    title=gettext("The strategies as they are"),
                    days=DEFAULT_DAYS,
                    actor=request.user,
                )
            except ValidationError as exc:
                for message in exc.messages:
                    admin_self.message_user(request, message, messages.ERROR)
            else:
                return HttpResponseRedirect(report_url(started))
        run = (
            BacktestRun.objects.filter(
                shop=shop, kind=BacktestKind.CURRENT, status=BacktestStatus.DONE
            )
            .order_by("-created_at", "-id")
            .first()
        )
        found = None
        if run is not None:
            found = next((s for s in run.report.get("strategies", []) if s["id"] == obj.pk), None)
        rows = []
        for day in (found or {}).get("days", []):
            live = day.get("baseline_hits", day["hits"])
            rows.append(
                {
                    **day,
                    "live": live,
                    "share": _share(live["count"], day["scenario_requests"]),
                    "misses_list": sorted(day["misses"].items(), key=lambda kv: -kv[1]),
                }
            )
        with in_zone(shop):
            context = {
                **admin_self.admin_site.each_context(request),
                "title": gettext("Performance of “%(name)s”") % {"name": obj.name},
                "opts": Strategy._meta,
                "original": obj,
                "run": run,
                "strategy": found,
                "rows": rows,
                "trial": obj.status == StrategyStatus.TRIAL,
                "may_refresh": shop_context(request).may_edit,
                "change_url": reverse("admin:strategies_strategy_change", args=[obj.pk]),
                "edited": [e for e in (run.report.get("edited", []) if run else [])],
            }
            return rendered(
                TemplateResponse(request, "admin/strategies/backtest/performance.html", context)
            )

    # -- the list's button: a new priority order ------------------------------------------------

    def backtest_order_view(self, request: HttpRequest) -> HttpResponse:
        """The scenario's strategies with their priorities to try; backtests that order (or
        the set as it is, when the order is unchanged)."""
        admin_self: Any = self
        if not admin_self.has_change_permission(request):
            raise PermissionDenied
        if admin_self._foreign_shop_asked(request):
            raise Http404
        shop, scenario = admin_self._shop(request), admin_self._scenario(request)
        if shop is None or scenario is None:
            raise Http404
        rows = list(
            Strategy.objects.filter(shop=shop, scenario=scenario).order_by("position", "id")
        )
        errors: list[str] = []
        wanted = {s.pk: s.position for s in rows}
        if request.method == "POST":
            for s in rows:
                value = parse_id(request.POST.get(f"position_{s.pk}", "").strip())
                if value is None or value < 1:
                    errors.append(
                        gettext("Give “%(name)s” a priority of 1 or more.") % {"name": s.name}
                    )
                else:
                    wanted[s.pk] = value
            days = _days(request)
            if days is None:
                errors.append(gettext("Choose 7, 30 or 90 days."))
            if not errors and days is not None:
                ordered = sorted(rows, key=lambda s: (wanted[s.pk], s.position, s.pk))
                ordered_ids = [s.pk for s in ordered]
                unchanged = ordered_ids == [s.pk for s in rows]
                try:
                    members = set_reordered(
                        strategy_set(shop=shop), scenario=scenario, ordered_ids=ordered_ids
                    )
                    run = backtest_start(
                        shop=shop,
                        members=members,
                        kind=BacktestKind.CURRENT if unchanged else BacktestKind.REORDER,
                        title=(
                            gettext("The strategies as they are")
                            if unchanged
                            else gettext("New priority order in “%(scenario)s”")
                            % {"scenario": Scenario(scenario).label}
                        ),
                        days=days,
                        scenario=scenario,
                        actor=request.user,
                    )
                except ValidationError as exc:
                    errors.extend(exc.messages)
                else:
                    return HttpResponseRedirect(report_url(run))
        context = {
            **admin_self.admin_site.each_context(request),
            "title": gettext("Backtest a priority order"),
            "opts": Strategy._meta,
            "shop": shop,
            "scenario_label": Scenario(scenario).label,
            "rows": [(s, wanted[s.pk]) for s in rows],
            "errors": errors,
            "periods": period_choices(),
            "chosen_days": _days(request) or DEFAULT_DAYS,
            "changelist_url": (
                f"{reverse('admin:strategies_strategy_changelist')}?"
                f"{admin_self._query(request, scenario=scenario)}"
            ),
        }
        return TemplateResponse(request, "admin/strategies/backtest/order.html", context)


# --------------------------------------------------------------------------------------------
# The reports


def _money(value: str | Decimal) -> Decimal:
    return Decimal(value)


def _reality_label(status: str) -> str:
    return str(RequestStatus(status).label) if status in RequestStatus.values else status


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


class StrategyFilter(admin.SimpleListFilter):
    title = _("strategy")
    parameter_name = "strategy__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = parse_id(self.value() or "")
        if value is None:
            return []
        found = Strategy.objects.filter(pk=value).values_list("pk", "name").first()
        return [(str(found[0]), found[1])] if found else []

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() is None:
            return queryset
        value = parse_id(self.value() or "")
        return queryset.filter(strategy_id=value) if value is not None else queryset.none()


@admin.register(BacktestRun)
class BacktestRunAdmin(ShopScopedAdminMixin, admin.ModelAdmin):
    """The shop's backtests, newest first; each opens its report. Read-only."""

    list_display = (
        "title",
        "kind",
        "period",
        "status_badge",
        "headline",
        "created_by",
        "created_at",
    )
    list_display_links = ("title",)
    list_select_related = ("created_by", "shop")
    list_per_page = 50
    show_full_result_count = False

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return operator_filters(request, ["status", StrategyFilter])

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("period"))
    def period(self, run: BacktestRun) -> str:
        return f"{run.first_day:%Y-%m-%d} ~ {run.last_day:%Y-%m-%d}"

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, run: BacktestRun) -> str:
        return badge(run.get_status_display(), STATUS_COLOURS.get(run.status, "#8a8a8a"))

    @admin.display(description=_("would approve"))
    def headline(self, run: BacktestRun) -> str:
        candidate = (run.report or {}).get("candidate")
        if not candidate:
            return "—"
        return gettext("%(count)s requests, %(amount)s") % candidate

    def _run_or_404(self, request: HttpRequest, object_id: str) -> BacktestRun:
        pk = parse_id(unquote(object_id))
        run = self.get_queryset(request).select_related("shop", "strategy", "created_by")
        found = run.filter(pk=pk).first() if pk is not None else None
        if found is None:
            raise Http404
        return found

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/status/",
                view(self.status_view),
                name="strategies_backtestrun_status",
            ),
            path(
                "<path:object_id>/cancel/",
                view(self.cancel_view),
                name="strategies_backtestrun_cancel",
            ),
            path(
                "<path:object_id>/export.csv",
                view(self.export_view),
                name="strategies_backtestrun_export",
            ),
            path(
                "<path:object_id>/changes/<int:change_id>/",
                view(self.trace_view),
                name="strategies_backtestrun_trace",
            ),
            *super().get_urls(),
        ]

    # -- the report page ------------------------------------------------------------------

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = self._run_or_404(request, object_id)
        shop = run.shop
        report = run.report or {}
        with in_zone(shop):
            context = {
                **self.admin_site.each_context(request),
                "title": gettext("Backtest: %(title)s") % {"title": run.title},
                "opts": self.model._meta,
                "run": run,
                "shop": shop,
                "report": report,
                "finished": run.status in FINISHED,
                "status_url": reverse("admin:strategies_backtestrun_status", args=[run.pk]),
                "cancel_url": reverse("admin:strategies_backtestrun_cancel", args=[run.pk]),
                "export_url": reverse("admin:strategies_backtestrun_export", args=[run.pk]),
                "may_cancel": shop_context(request).may_edit and run.status not in FINISHED,
                "percent": _percent(run),
                **(self._report_context(request, run, report) if report else {}),
            }
            return rendered(
                TemplateResponse(request, "admin/strategies/backtest/report.html", context)
            )

    def _report_context(
        self, request: HttpRequest, run: BacktestRun, report: dict[str, Any]
    ) -> dict[str, Any]:
        days = [dt.date.fromisoformat(d["day"]) for d in report["days"]]
        labels = (gettext("what happened"), gettext("backtest"))
        amount_chart = paired_chart(
            days=days,
            baseline=[_money(d["baseline"]["amount"]) for d in report["days"]],
            candidate=[_money(d["candidate"]["amount"]) for d in report["days"]],
            labels=labels,
        )
        count_chart = paired_chart(
            days=days,
            baseline=[Decimal(d["baseline"]["count"]) for d in report["days"]],
            candidate=[Decimal(d["candidate"]["count"]) for d in report["days"]],
            labels=labels,
        )
        changes = []
        kinds = dict(BacktestChangeKind.choices)
        for kind in BacktestChangeKind.values:  # in this order (jsonb keeps none)
            data = report["changes"][kind]
            changes.append(
                {
                    "kind": kind,
                    "label": kinds.get(kind, kind),
                    "count": data["count"],
                    "amount": data["amount"],
                    "by_reality": [
                        {"label": _reality_label(status), **tally}
                        for status, tally in data["by_reality"].items()
                    ],
                }
            )
        strategies = []
        for s in report["strategies"]:
            strategies.append(
                {
                    **s,
                    "scenario_label": Scenario(s["scenario"]).label
                    if s["scenario"] in Scenario.values
                    else s["scenario"],
                    "status_label": StrategyStatus(s["status"]).label
                    if s["status"] in StrategyStatus.values
                    else s["status"],
                    "share": _share(s["hits"]["count"], s["scenario_requests"]),
                    "shadow_known": not report.get("shadow_scenarios")
                    or s["scenario"] in report["shadow_scenarios"],
                    "cap_days": [d for d in s["days"] if d["cap_out_at"]],
                    "alert_95_days": [d["day"] for d in s["days"] if d["alert_95"]],
                    "alert_100_days": [d["day"] for d in s["days"] if d["alert_100"]],
                }
            )
        rows = BacktestChange.objects.filter(run=run).order_by("decided_at", "id")
        kind_asked = request.GET.get("kind")
        if kind_asked in BacktestChangeKind.values:
            rows = rows.filter(kind=kind_asked)
        page = Paginator(rows, CHANGES_PER_PAGE).get_page(request.GET.get("page"))
        for row in page:
            row.reality_label = _reality_label(row.reality)  # type: ignore[attr-defined]
        base = reverse("admin:strategies_backtestrun_trace", args=[run.pk, 0])[: -len("0/")]
        return {
            "amount_chart": amount_chart,
            "count_chart": count_chart,
            "changes": changes,
            "strategies": strategies,
            "change_page": page,
            "change_kind": kind if kind in BacktestChangeKind.values else "",
            "change_kinds": BacktestChangeKind.choices,
            "trace_base": base,
            "edited": [{**e, "at": parse_datetime(e["at"])} for e in report.get("edited", [])],
            "empty": report.get("requests", 0) == 0,
        }

    # -- status, cancel, CSV, trace ------------------------------------------------------------

    def status_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        run = self._run_or_404(request, object_id)
        return JsonResponse(
            {
                "status": run.status,
                "label": str(run.get_status_display()),
                "processed": run.processed,
                "total": run.total,
                "percent": _percent(run),
                "finished": run.status in FINISHED,
            },
            headers={"Cache-Control": "no-store"},
        )

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = self._run_or_404(request, object_id)
        if not shop_context(request).may_edit:
            raise PermissionDenied
        if backtest_cancel(run=run):
            self.message_user(request, gettext("The backtest is being cancelled."), messages.INFO)
        return HttpResponseRedirect(report_url(run))

    def export_view(self, request: HttpRequest, object_id: str) -> StreamingHttpResponse:
        """The changed requests as CSV (no buyer ids), in the caller's language."""
        run = self._run_or_404(request, object_id)
        zone = run.shop.zone
        language = translation.get_language()
        kinds = {k: str(v) for k, v in BacktestChangeKind.choices}
        scenarios = {k: str(v) for k, v in Scenario.choices}
        statuses = {k: str(v) for k, v in RequestStatus.choices}
        names = {m.snapshot.id: m.snapshot.name for m in members_decode(run.strategies)}
        writer = csv.writer(_Echo())
        header = [
            gettext("Decided at (shop time)"),
            gettext("After-sales id"),
            gettext("Order id"),
            gettext("Amount"),
            gettext("Scenario"),
            gettext("Change"),
            gettext("Strategy that approved it"),
            gettext("Strategy that would approve it"),
            gettext("In reality"),
            gettext("Why (backtest)"),
        ]

        def lines() -> Iterator[str]:
            with translation.override(language):
                yield "\ufeff" + writer.writerow([csv_cell(h) for h in header])
                rows = BacktestChange.objects.filter(run=run).order_by("decided_at", "id")
                for change in rows.iterator(chunk_size=500):
                    why = "; ".join(f"{names.get(sid, sid)}: {code}" for sid, code in change.codes)
                    yield writer.writerow(
                        [
                            csv_cell(v)
                            for v in (
                                timezone.localtime(change.decided_at, zone).isoformat(
                                    timespec="seconds"
                                ),
                                change.aftersale_id,
                                change.order_id,
                                f"{change.amount:.2f}",
                                scenarios.get(change.scenario, change.scenario),
                                kinds.get(change.kind, change.kind),
                                change.baseline_strategy_name,
                                change.candidate_strategy_name,
                                statuses.get(change.reality, change.reality),
                                why,
                            )
                        ]
                    )

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="backtest-{run.pk}.csv"'
        response["Cache-Control"] = "no-store"
        return response

    def trace_view(self, request: HttpRequest, object_id: str, change_id: int) -> HttpResponse:
        """One changed request: every check of every strategy tried, with the values, as the
        backtest replayed it; and what the live decision said."""
        run = self._run_or_404(request, object_id)
        change = BacktestChange.objects.filter(run=run, pk=change_id).first()
        if change is None:
            raise Http404
        shop = run.shop
        stored = loaders.request_stored(shop_id=shop.pk, request_id=change.request_id)
        if stored is None or stored.snapshot is None:
            raise Http404
        moment = Moment(
            now=parse_datetime(change.moment["now"]) or change.decided_at,
            consumed={int(k): Decimal(v) for k, v in change.moment["consumed"].items()},
            buyer_approvals=int(change.moment["buyer_approvals"]),
            order_refunded=Decimal(change.moment["order_refunded"]),
        )
        snapshots = [m.snapshot for m in members_decode(run.strategies)]
        decision = Decision.objects.filter(request_id=change.request_id).first()
        live = [
            {
                "strategy": e.get("strategy", {}).get("name", ""),
                "code": e.get("code", ""),
                "message": explanation_message(e["code"], e["params"])
                if e.get("params") is not None and e.get("code")
                else e.get("message", ""),
            }
            for e in (decision.explanations if decision else [])
        ]
        with in_zone(shop):
            context = {
                **self.admin_site.each_context(request),
                "title": gettext("Trace of %(id)s") % {"id": change.aftersale_id},
                "opts": self.model._meta,
                "run": run,
                "change": change,
                "request_snapshot": stored.snapshot,
                "moment": moment,
                "order_refunded": money(moment.order_refunded),
                "traces": trace(stored.snapshot, snapshots, zone=shop.zone, moment=moment),
                "decision": decision,
                "live": live,
                "report_url": report_url(run),
                "period": Period(run.first_day, run.last_day, shop.zone),
            }
            return rendered(
                TemplateResponse(request, "admin/strategies/backtest/trace.html", context)
            )


def _percent(run: BacktestRun) -> int:
    if run.status == BacktestStatus.DONE:
        return 100
    if not run.total:
        return 0
    return min(100, run.processed * 100 // run.total)


def _share(hits: int, requests: int) -> str:
    if not requests:
        return "—"
    return f"{hits * 100 / requests:.1f}%"
