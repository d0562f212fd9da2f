"""Strategies per scenario: the tabbed list with drag-to-reorder, status actions and today's
consumption, the form, the small-amount template and the export. Writes go through
``strategies.services``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from adminsortable2.admin import SortableAdminMixin
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.forms import ModelForm
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from strategies.admin.backtest import StrategyBacktestMixin
from strategies.admin.common import (
    STATUS_COLOURS,
    badge,
    in_zone,
    operator_filters,
    rendered,
)
from strategies.admin.forms import (
    CONFIRM_FIELD,
    ImportForm,
    StrategyForm,
    TemplateForm,
    strategy_fieldsets,
    strategy_risk_warnings,
)
from strategies.admin.history import (
    StrategyHistoryAdmin,
    flat_fields,
    showing_a_version,
    version_fieldsets,
)
from strategies.admin.picker import scenario_choices
from strategies.admin.tenancy import (
    parse_id,
    shop_context,
)
from strategies.formatting import local_datetime, money
from strategies.models import (
    SCENARIO_ORDER,
    Scenario,
    Shop,
    Strategy,
    StrategyStatus,
)
from strategies.selectors import (
    TrialFigure,
    strategy_consumption_today,
    strategy_latest_backtests,
    strategy_product_counts,
    trial_figures,
)
from strategies.services.strategies import (
    CHANGE_REASON_MAX_LENGTH,
    EDITABLE_FIELDS,
    strategies_move,
    strategies_reorder,
    strategy_create,
    strategy_create_from_template,
    strategy_delete,
    strategy_set_status,
    strategy_update,
)
from strategies.services.strategy_files import (
    strategies_export,
    strategies_import,
    strategies_import_summary,
    strategies_read_file,
)
from strategies.services.summary import (
    backtest_headline,
    cap_used_up_warning,
    scenario_order_text,
    scenario_precedence,
    strategy_summary,
)


def trial_period_label(days: int) -> str:
    if days == 1:
        return gettext("today")
    return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}


def trial_figures_html(figures: list[TrialFigure]) -> str:
    """A trial strategy's "would approve N / amount" today and over 7 and 30 days."""
    lines = format_html_join(
        "",
        "<li>{}: {}</li>",
        (
            (
                trial_period_label(f.days),
                ngettext(
                    "would approve %(n)d request / %(amount)s",
                    "would approve %(n)d requests / %(amount)s",
                    f.count,
                )
                % {"n": f.count, "amount": money(f.amount)},
            )
            for f in figures
        ),
    )
    return format_html('<ul class="atom-trial-figures">{}</ul>', lines)


class _StrategyAdminBase(StrategyHistoryAdmin):
    # django-admin-sortable2 extends this template (it reads it through ``super()``).
    change_list_template = "admin/strategies/strategy/strategy_change_list.html"


@admin.register(Strategy)
class StrategyAdmin(SortableAdminMixin, StrategyBacktestMixin, _StrategyAdminBase):
    editable_by_owner = True
    form = StrategyForm
    action_form = helpers.ActionForm
    list_display = (
        "priority",
        "name",
        "what_it_does",
        "status_badge",
        "caps",
        "consumption",
        "validity",
    )
    list_display_links = ("name",)
    list_select_related = ("shop",)
    list_per_page = 50
    show_full_result_count = False
    filter_horizontal = ("products",)
    actions = ("make_active", "make_trial", "make_inactive")
    history_list_display = ("history_status", "priority")
    object_history_list_template = "admin/strategies/strategy/object_history_list.html"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # django-admin-sortable2 heads its drag-handle column with the position's name
        # ("priority"), which the number column already shows: call the handle what it does.
        self._reorder_.__func__.short_description = _("drag")  # type: ignore[attr-defined]

    # -- the shop and scenario a page is about -------------------------------------------------

    @staticmethod
    def _scenario(request: HttpRequest) -> str | None:
        value = request.GET.get("scenario")
        return value if value in Scenario.values else None

    @staticmethod
    def _shop(request: HttpRequest) -> Shop | None:
        """The merchant's own shop; for an operator, the shop chosen with ``?shop=<id>``."""
        return shop_context(request).shop

    @staticmethod
    def _foreign_shop_asked(request: HttpRequest) -> bool:
        """A merchant naming a shop that is not theirs in ``?shop=``: treated as not found."""
        return shop_context(request).foreign_shop_asked

    def _query(self, request: HttpRequest, **params: Any) -> str:
        shop = self._shop(request)
        if shop_context(request).operator and shop is not None:
            params.setdefault("shop", shop.pk)
        return urlencode({k: v for k, v in params.items() if v is not None})

    def _url(self, name: str, *args: Any) -> str:
        return reverse(f"admin:strategies_strategy_{name}", args=args)

    def _shop_of(self, request: HttpRequest, object_id: str | None) -> Shop | None:
        """The shop a form page is about: the strategy's (live or deleted), else the list's."""
        if object_id is None:
            return self._shop(request)
        pk = parse_id(unquote(object_id))
        if pk is None:
            return None
        live = self.get_queryset(request).filter(pk=pk).values("shop_id")
        shop = Shop.objects.filter(pk__in=live).first()
        if shop is None:
            # A deleted strategy: its shop as its history (scoped to the user) records it.
            past = self._history_rows(request).filter(id=pk).values("shop_id")
            shop = Shop.objects.filter(pk__in=past).first()
        return shop

    # -- list ----------------------------------------------------------------------------------

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(super().get_list_display(request))
        if not shop_context(request).may_edit:
            # A viewer gets no drag handles: dragging would offer what the endpoint refuses.
            columns = [c for c in columns if c != "_reorder_"]
        if shop_context(request).operator:
            columns.append("shop")
        return columns

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return operator_filters(request, [])

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # The scenario tabs, an id and (operators) the shop filter; nothing else is guessed.
        if lookup == "shop":  # OperatorShopFilter's; a member's foreign shop is a 404 first
            return request is not None and shop_context(request).may_view
        return lookup in {"scenario", "id", "id__exact", "id__in", "pk"}

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Skip django-admin-sortable2's "move to page" actions: they reorder the whole table
        # without any shop scope (and count every row to offer them).
        actions = super(SortableAdminMixin, self).get_actions(request)
        if not shop_context(request).may_edit:
            return {}
        return actions

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        cl = super().get_changelist_instance(request)
        # Drag only where the rows shown are exactly one shop's scenario, and for editors.
        if (
            self._scenario(request) is None
            or self._shop(request) is None
            or not self.has_change_permission(request)
            or request.GET.get("q")
            or any(k.startswith("id") or k == "pk" for k in request.GET)
        ):
            self.enable_sorting = False
        consumption = strategy_consumption_today(strategies=cl.result_list)
        products = strategy_product_counts(strategy_ids=[s.pk for s in cl.result_list])
        trials = trial_figures(strategies=cl.result_list)
        for strategy in cl.result_list:
            strategy.atom_consumption = consumption.get(strategy.pk)  # type: ignore[attr-defined]
            strategy.atom_product_count = products.get(strategy.pk, 0)  # type: ignore[attr-defined]
            strategy.atom_trial = trials.get(strategy.pk)  # type: ignore[attr-defined]
        return cl

    def get_update_url(self, request: HttpRequest) -> str:
        query = self._query(request, scenario=self._scenario(request))
        return f"{self._url('sortable_update')}?{query}"

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if self._foreign_shop_asked(request):
            raise Http404
        rows = self.get_queryset(request)
        shop = self._shop(request)
        if shop_context(request).operator and shop is not None:
            rows = rows.filter(shop=shop)
        scenario = self._scenario(request)
        if scenario is None and request.method == "GET":
            present = set(rows.values_list("scenario", flat=True).distinct())
            first = next((s for s in SCENARIO_ORDER if s in present), SCENARIO_ORDER[0])
            params = request.GET.copy()
            params["scenario"] = first
            return HttpResponseRedirect(f"{request.path}?{params.urlencode()}")
        self._check_id_filter(request, rows)
        counts = dict(
            rows.order_by()
            .values_list("scenario")
            .annotate(n=Count("id"))
            .values_list("scenario", "n")
        )
        tabs = []
        for code in SCENARIO_ORDER:
            params = request.GET.copy()
            params["scenario"] = code
            for key in ("p", "o", "e"):
                params.pop(key, None)
            tabs.append(
                {
                    "code": code,
                    "label": Scenario(code).label,
                    "count": counts.get(code, 0),
                    "url": f"?{params.urlencode()}",
                    "active": code == scenario,
                }
            )
        may_edit = self.has_add_permission(request)
        context = {
            "title": gettext("Automatic refund strategies"),
            "atom_tabs": tabs,
            "atom_scenario_label": Scenario(scenario).label if scenario else "",
            "atom_add_url": (
                f"{self._url('add')}?{self._query(request, scenario=scenario)}"
                if may_edit and shop is not None
                else None
            ),
            "atom_template_url": (
                f"{self._url('template')}?{self._query(request)}"
                if may_edit and shop is not None
                else None
            ),
            "atom_export_url": (
                f"{self._url('export')}?{self._query(request)}" if shop is not None else None
            ),
            "atom_pick_shop": shop_context(request).operator and shop is None,
            "atom_scenario_order": scenario_order_text(),
            "atom_precedence": scenario_precedence(scenario) if scenario else [],
            "atom_import_url": (
                f"{self._url('import')}?{self._query(request)}"
                if may_edit and shop is not None
                else None
            ),
            "atom_can_reorder": may_edit and shop is not None,
        }
        context.update(extra_context or {})
        return super().changelist_view(request, context)

    def _check_id_filter(self, request: HttpRequest, rows: QuerySet) -> None:
        """A list filtered by ids of another shop is a 404, as the change page would be."""
        wanted: list[str] = []
        for key in ("id", "id__exact", "pk"):
            wanted += request.GET.getlist(key)
        for value in request.GET.getlist("id__in"):
            wanted += value.split(",")
        if not wanted:
            return
        parsed = {parse_id(v.strip()) for v in wanted}
        if None in parsed:
            raise Http404
        ids = {i for i in parsed if i is not None}
        if rows.filter(pk__in=ids).count() != len(ids):
            raise Http404

    @admin.display(description=_("priority"), ordering="position")
    def priority(self, obj: Strategy) -> int:
        return obj.position

    @admin.display(description=_("what it does"))
    def what_it_does(self, obj: Strategy) -> str:
        count = getattr(obj, "atom_product_count", None)
        return format_html(
            '<span class="atom-summary">{}</span>',
            strategy_summary(strategy=obj, product_count=count),
        )

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Strategy) -> str:
        return badge(obj.get_status_display(), STATUS_COLOURS.get(obj.status, "#8a8a8a"))

    @admin.display(description=_("caps"))
    def caps(self, obj: Strategy) -> str:
        return format_html(
            "{}: {}<br>{}: {}",
            gettext("daily"),
            money(obj.daily_cap),
            gettext("per request"),
            money(obj.per_request_cap),
        )

    @admin.display(description=_("today's consumption"))
    def consumption(self, obj: Strategy) -> str:
        trial = getattr(obj, "atom_trial", None)
        if trial is not None:
            return trial_figures_html(trial)
        used = getattr(obj, "atom_consumption", None)
        if used is None:
            return "—"
        colour = "#c62828" if used.is_warning else "#2e7d32"
        width = used.shown_percent
        return format_html(
            '<div class="atom-consumption{}" title="{} / {}">'
            '<div style="background:#eee;width:120px;height:8px;border-radius:4px">'
            '<div style="background:{};width:{}%;height:8px;border-radius:4px"></div></div>'
            '<span style="color:{}">{}%</span></div>',
            " atom-warning" if used.is_warning else "",
            money(used.consumed),
            money(used.daily_cap),
            colour,
            width,
            colour,
            used.shown_percent,
        )

    @admin.display(description=_("validity"))
    def validity(self, obj: Strategy) -> str:
        if obj.valid_from is None and obj.valid_until is None:
            return gettext("always")
        zone = obj.shop.zone
        return f"{local_datetime(obj.valid_from, zone)} ~ {local_datetime(obj.valid_until, zone)}"

    # -- status actions ------------------------------------------------------------------------

    def _set_status(
        self, request: HttpRequest, queryset: QuerySet, status: str, change_reason: str = ""
    ) -> None:
        changed = strategy_set_status(
            strategies=queryset, status=status, actor=request.user, change_reason=change_reason
        )
        self.message_user(
            request,
            ngettext(
                "%(n)d strategy set to “%(status)s”.",
                "%(n)d strategies set to “%(status)s”.",
                changed,
            )
            % {"n": changed, "status": StrategyStatus(status).label},
            messages.SUCCESS,
        )

    @admin.action(description=_("Activate the selected strategies"), permissions=["change"])
    def make_active(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Asks first: the page says what each strategy will do (and its latest backtest);
        only its "activate" button switches them on."""
        if request.POST.get(CONFIRM_FIELD) == "yes":
            reason = request.POST.get("change_reason", "")
            self._set_status(request, queryset, StrategyStatus.ACTIVE, change_reason=reason)
            return None
        strategies = list(
            queryset.select_related("shop")
            .exclude(status=StrategyStatus.ACTIVE)
            .annotate(atom_product_count=Count("products"))
        )
        if not strategies:
            self.message_user(
                request, gettext("The selected strategies are already active."), messages.INFO
            )
            return None
        backtests = strategy_latest_backtests(strategy_ids=[s.pk for s in strategies])
        rows = [self._confirmation_row(s, backtests.get(s.pk)) for s in strategies]
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Activate these strategies?"),
            "opts": self.model._meta,
            "atom_rows": rows,
            "atom_selected": [s.pk for s in queryset],
            "atom_action": "make_active",
            "atom_confirm_field": CONFIRM_FIELD,
            "atom_back_url": request.get_full_path(),
            "atom_reason_max": CHANGE_REASON_MAX_LENGTH,
        }
        return TemplateResponse(request, "admin/strategies/strategy/confirm_activate.html", context)

    def _confirmation_row(self, strategy: Strategy, run: Any) -> dict[str, Any]:
        return {
            "strategy": strategy,
            "scenario": Scenario(strategy.scenario).label,
            "summary": strategy_summary(
                strategy=strategy, product_count=getattr(strategy, "atom_product_count", None)
            ),
            "precedence": scenario_precedence(strategy.scenario),
            "backtest": (
                {
                    "url": reverse("admin:strategies_backtestrun_change", args=[run.pk]),
                    "headline": backtest_headline(run=run, strategy_id=strategy.pk),
                }
                if run is not None
                else None
            ),
            "change_url": self._url("change", strategy.pk),
        }

    @admin.action(
        description=_("Switch the selected strategies to trial run"), permissions=["change"]
    )
    def make_trial(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, StrategyStatus.TRIAL)

    @admin.action(description=_("Deactivate the selected strategies"), permissions=["change"])
    def make_inactive(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, StrategyStatus.INACTIVE)

    # -- the form ------------------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Strategy | None = None) -> list[Any]:
        scenario = obj.scenario if obj else (self._scenario(request) or SCENARIO_ORDER[0])
        fieldsets = strategy_fieldsets(scenario)
        if obj is not None:
            # ``version``: hidden, the version this form was opened at (a stale save is refused).
            title, options = fieldsets[0]
            editing = ("version",) if self.has_change_permission(request, obj) else ()
            fields = ("scenario", "template", *options["fields"], *editing)
            fieldsets[0] = (title, {"fields": fields})
        may_write = (
            self.has_change_permission(request, obj)
            if obj is not None
            else self.has_add_permission(request)
        )
        if may_write:
            fieldsets.append((gettext("Reason for this change"), {"fields": ("change_reason",)}))
        if showing_a_version(request):
            return version_fieldsets(fieldsets)
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Strategy | None = None) -> Any:
        if showing_a_version(request):
            # A past version is shown, never edited: every field read-only, nothing to submit.
            return flat_fields(self.get_fieldsets(request, obj))
        return ("scenario", "template") if obj is not None else ()

    def get_form(
        self, request: HttpRequest, obj: Strategy | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(
            form.__name__,
            (form,),
            {
                "atom_shop": obj.shop if obj else self._shop(request),
                "atom_scenario": obj.scenario if obj else self._scenario(request) or "",
                "atom_adding": obj is None,
                "atom_refusal": getattr(request, "_atom_refusal", None),
                # A backtest of the form saves nothing: nothing to confirm.
                "atom_ask_confirmation": "_backtest" not in request.POST,
            },
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if self._foreign_shop_asked(request):
            raise Http404
        if self._scenario(request) is None or self._shop(request) is None:
            if self._shop(request) is None:
                self.message_user(request, gettext("Pick a shop first."), messages.WARNING)
                return HttpResponseRedirect(self._url("changelist"))
            return self.scenario_picker_view(request)
        return super().add_view(request, form_url, extra_context)

    def scenario_picker_view(self, request: HttpRequest) -> HttpResponse:
        """Adding starts here (the sidebar's and the index's "Add"): the scenario first, each
        said in one sentence; its link opens the form of that scenario."""
        shop = self._shop(request)
        counts = dict(
            Strategy.objects.filter(shop=shop)
            .order_by()
            .values_list("scenario")
            .annotate(n=Count("id"))
            .values_list("scenario", "n")
        )
        query = {"shop": str(shop.pk)} if shop_context(request).operator and shop else {}
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Add a strategy: choose its scenario"),
            "opts": self.model._meta,
            "choices": scenario_choices(add_url=self._url("add"), query=query, counts=counts),
            "current": request.GET.get("current", ""),
            "changelist_url": f"{self._url('changelist')}?{self._query(request)}",
        }
        return TemplateResponse(request, "admin/strategies/strategy/scenario_picker.html", context)

    def _scenario_tab_url(self, request: HttpRequest, obj: Strategy) -> str:
        return f"{self._url('changelist')}?{self._query(request, scenario=obj.scenario)}"

    def response_post_save_add(self, request: HttpRequest, obj: Strategy) -> HttpResponse:
        # Back to the tab of the scenario the strategy was added to, not the first one.
        return HttpResponseRedirect(self._scenario_tab_url(request, obj))

    def response_post_save_change(self, request: HttpRequest, obj: Strategy) -> HttpResponse:
        return HttpResponseRedirect(self._scenario_tab_url(request, obj))

    def response_add(
        self, request: HttpRequest, obj: Strategy, post_url_continue: str | None = None
    ) -> HttpResponse:
        response = super().response_add(request, obj, post_url_continue)
        if "_addanother" in request.POST:
            # "Save and add another": another one in the same scenario.
            return HttpResponseRedirect(
                f"{self._url('add')}?{self._query(request, scenario=obj.scenario)}"
            )
        return response

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Validity times are typed and shown in the shop's time, as the help texts say.
        with in_zone(self._shop_of(request, object_id)):
            try:
                response = super().changeform_view(request, object_id, form_url, extra_context)
            except ValidationError as exc:
                # The service refused what the form let through (e.g. another member added the
                # 10th strategy a moment ago): nothing was stored. Show the form again, with
                # what the merchant typed and the reason (``StrategyForm.atom_refusal``).
                request._atom_refusal = exc  # type: ignore[attr-defined]
                response = super().changeform_view(request, object_id, form_url, extra_context)
            return rendered(response)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Strategy | None = None,
    ) -> HttpResponse:
        scenario = obj.scenario if obj else self._scenario(request) or SCENARIO_ORDER[0]
        per_request_cap = obj.per_request_cap if obj else None
        form = context.get("adminform")
        if form is not None and form.form.is_bound and "per_request_cap" in form.form.fields:
            per_request_cap = form.form.data.get("per_request_cap") or None
        context["atom_warnings"] = [
            *strategy_risk_warnings(scenario=scenario, per_request_cap=per_request_cap),
            *scenario_precedence(scenario),
        ]
        if obj is not None:
            used = strategy_consumption_today(strategies=[obj])[obj.pk].consumed
            if used and used >= obj.daily_cap:
                context["atom_warnings"].append(cap_used_up_warning(used=used, cap=obj.daily_cap))
            context["atom_summary"] = strategy_summary(strategy=obj)
        if form is not None and form.form.atom_risks:
            context["atom_confirmation"] = self._form_confirmation(form.form, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _form_confirmation(self, form: Any, obj: Strategy | None) -> dict[str, Any]:
        values = {k: v for k, v in form.cleaned_data.items() if k in EDITABLE_FIELDS}
        if "products" in form.cleaned_data:
            values["products"] = form.cleaned_data["products"]
        run = strategy_latest_backtests(strategy_ids=[obj.pk]).get(obj.pk) if obj else None
        return {
            "summary": strategy_summary(strategy=form.instance, values=values),
            "risks": form.atom_risks,
            "field": CONFIRM_FIELD,
            "backtest": (
                {
                    "url": reverse("admin:strategies_backtestrun_change", args=[run.pk]),
                    "headline": backtest_headline(run=run, strategy_id=obj.pk if obj else None),
                }
                if run is not None
                else None
            ),
        }

    def _form_fields(self, form: ModelForm) -> dict[str, Any]:
        fields = {k: v for k, v in form.cleaned_data.items() if k in EDITABLE_FIELDS}
        if "products" in form.cleaned_data:
            fields["products"] = list(form.cleaned_data["products"])
        return fields

    def save_model(
        self, request: HttpRequest, obj: Strategy, form: ModelForm, change: bool
    ) -> None:
        fields = self._form_fields(form)
        reason = form.cleaned_data.get("change_reason") or ""
        if change:
            strategy_update(
                strategy=obj,
                actor=request.user,
                expected_version=form.cleaned_data.get("version"),
                change_reason=reason,
                **fields,
            )
        else:
            shop = self._shop(request)
            scenario = self._scenario(request)
            if shop is None or scenario is None:
                raise PermissionDenied
            created = strategy_create(
                shop=shop, scenario=scenario, actor=request.user, change_reason=reason, **fields
            )
            # The admin goes on with the instance it built: make it the stored row.
            obj.pk = created.pk
            obj.shop = created.shop
            obj.scenario = created.scenario
            obj.position = created.position
            obj._state.adding = False
            obj._state.db = created._state.db
        if obj.per_request_cap is None:
            self.message_user(
                request,
                gettext(
                    "No per-request cap is set: a single request may take up to the whole "
                    "daily cap."
                ),
                messages.WARNING,
            )

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        # Products were set by the service; there are no inlines.
        return None

    # -- deleting (a strategy that decided anything is archived) -----------------------------

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, ...]:
        """What the confirmation page lists: the strategies only. Their decisions, ledgers,
        alerts and history are never deleted (the strategy is archived instead), so deleting
        needs no right over them and nothing "protected" stands in the way."""
        shown = [
            gettext(
                "Strategy: %(name)s (archived if it has decided requests: its decisions, "
                "consumption, alerts and history are kept)"
            )
            % {"name": s.name}
            for s in objs
        ]
        return shown, {str(Strategy._meta.verbose_name_plural): len(shown)}, set(), []

    def delete_model(self, request: HttpRequest, obj: Strategy) -> None:
        if strategy_delete(strategy=obj, actor=request.user):
            request._atom_archived = [obj.name]  # type: ignore[attr-defined]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        archived = [
            strategy.name
            for strategy in queryset.select_related("shop")
            if strategy_delete(strategy=strategy, actor=request.user)
        ]
        if archived:
            self.message_user(request, self._archived_message(archived), messages.INFO)

    @staticmethod
    def _archived_message(names: list[str]) -> str:
        return ngettext(
            "“%(names)s” had decided requests, so it was archived: it no longer appears or "
            "decides, and its decisions and history are kept.",
            "%(names)s had decided requests, so they were archived: they no longer appear or "
            "decide, and their decisions and history are kept.",
            len(names),
        ) % {"names": ", ".join(names)}

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> HttpResponse:
        archived = getattr(request, "_atom_archived", None)
        if not archived:
            return super().response_delete(request, obj_display, obj_id)
        self.message_user(request, self._archived_message(archived), messages.SUCCESS)
        return HttpResponseRedirect(self._url("changelist"))

    # -- custom views --------------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path("template/", view(self.template_view), name="strategies_strategy_template"),
            path("export/", view(self.export_view), name="strategies_strategy_export"),
            path("import/", view(self.import_view), name="strategies_strategy_import"),
            path(
                "<path:object_id>/pause/",
                view(self.pause_view),
                name="strategies_strategy_pause",
            ),
            *super().get_urls(),
        ]

    def update_order(self, request: HttpRequest) -> HttpResponse:
        """The drag-and-drop endpoint, restricted to the caller's shop and one scenario.

        django-admin-sortable2 posts ``{"updatedItems": [[id, position], ...]}`` for the rows a
        drag moved; ``{"orderedIds": [...]}`` (the whole scenario, first to last) is accepted too.
        Any id outside the shop and scenario: 403, nothing changes. Positions end 1..n.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            return HttpResponseForbidden(gettext("You may not reorder strategies."))
        if self._foreign_shop_asked(request):
            return HttpResponseForbidden(gettext("Not your shop."))
        scenario = self._scenario(request)
        shop = self._shop(request)
        if scenario is None or shop is None:
            return HttpResponseBadRequest(gettext("Reorder one shop's scenario at a time."))
        try:
            body = json.loads(request.body)
        except (ValueError, RecursionError):
            # Not JSON, or nested too deeply for the parser: an answer, never a traceback.
            return HttpResponseBadRequest(gettext("The reorder request is not readable JSON."))
        try:
            if "orderedIds" in body:
                result = strategies_reorder(
                    shop=shop, scenario=scenario, ordered_ids=body["orderedIds"], actor=request.user
                )
            else:
                moves = {pk: position for pk, position in body["updatedItems"]}
                result = strategies_move(
                    shop=shop, scenario=scenario, moves=moves, actor=request.user
                )
        except PermissionDenied as exc:
            return HttpResponseForbidden(str(exc))
        except ValidationError as exc:
            return HttpResponseBadRequest("; ".join(exc.messages))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            return HttpResponseBadRequest(gettext("Invalid reorder request."))
        return JsonResponse({"positions": {str(s.pk): s.position for s in result}})

    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Pauses one strategy (sets it inactive) after a confirmation page: the cap alerts'
        "pause this strategy". Audited like every status change (its history row, by whom, with
        the reason given). ``next``: where to go back (the notice), this site only."""
        pk = parse_id(unquote(object_id))
        strategy = (
            self.get_queryset(request).select_related("shop").filter(pk=pk).first()
            if pk is not None
            else None
        )
        if strategy is None:
            raise Http404
        if not self.has_change_permission(request, strategy):
            raise PermissionDenied
        back = request.POST.get("next") or request.GET.get("next") or ""
        if not url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            back = ""
        back = (
            back or f"{self._url('changelist')}?{self._query(request, scenario=strategy.scenario)}"
        )
        paused = strategy.status == StrategyStatus.INACTIVE
        if request.method == "POST" and request.POST.get(CONFIRM_FIELD) == "yes" and not paused:
            reason = request.POST.get("change_reason", "").strip() or gettext(
                "Paused from the daily-cap alert"
            )
            strategy_set_status(
                strategies=[strategy],
                status=StrategyStatus.INACTIVE,
                actor=request.user,
                change_reason=reason,
            )
            self.message_user(
                request,
                gettext(
                    "“%(name)s” is paused (inactive): it approves nothing until it is switched on "
                    "again; the requests it would have taken go to the next strategy or to a "
                    "person."
                )
                % {"name": strategy.name},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Pause “%(name)s”?") % {"name": strategy.name},
            "opts": self.model._meta,
            "atom_row": self._confirmation_row(strategy, None),
            "atom_paused": paused,
            "atom_next": back,
            "atom_confirm_field": CONFIRM_FIELD,
            "atom_reason_max": CHANGE_REASON_MAX_LENGTH,
            "atom_default_reason": gettext("Paused from the daily-cap alert"),
            "atom_back_url": back,
        }
        return TemplateResponse(request, "admin/strategies/strategy/confirm_pause.html", context)

    def template_view(self, request: HttpRequest) -> HttpResponse:
        """Creates the small-amount strategy (小额自动仅退款) and opens it."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        shop = self._shop(request)
        if shop is None or self._foreign_shop_asked(request):
            raise Http404
        form = TemplateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                strategy = strategy_create_from_template(
                    shop=shop,
                    per_request_cap=form.cleaned_data["per_request_cap"],
                    actor=request.user,
                )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error(None, message)
            else:
                self.message_user(
                    request,
                    gettext(
                        "The small-amount strategy was created inactive: check and activate it."
                    ),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._url("change", strategy.pk))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Create the small-amount automatic refund strategy"),
            "opts": self.model._meta,
            "form": form,
            "shop": shop,
            "changelist_url": f"{self._url('changelist')}?{self._query(request)}",
        }
        return TemplateResponse(request, "admin/strategies/strategy/template_form.html", context)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Adds the strategies of a strategy file (API.md) to the shop, all or none. They
        arrive inactive; an operator restoring a backup may keep the file's statuses."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        shop = self._shop(request)
        if shop is None or self._foreign_shop_asked(request):
            raise Http404
        operator = shop_context(request).operator
        form = ImportForm(request.POST or None, request.FILES or None, operator=operator)
        if request.method == "POST" and form.is_valid():
            keep = operator and form.cleaned_data.get("keep_status", False)
            try:
                entries = strategies_read_file(form.cleaned_data["file"].read())
                created = strategies_import(
                    shop=shop, entries=entries, actor=request.user, keep_status=keep
                )
            except ValidationError as exc:
                for messages_ in exc.message_dict.values():
                    for message in messages_:
                        form.add_error(None, message)
            else:
                self.message_user(
                    request,
                    strategies_import_summary(count=len(created), shop=shop, kept_status=keep),
                    messages.WARNING if keep else messages.SUCCESS,
                )
                return HttpResponseRedirect(f"{self._url('changelist')}?{self._query(request)}")
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Import strategies from a file"),
            "opts": self.model._meta,
            "form": form,
            "shop": shop,
            "changelist_url": f"{self._url('changelist')}?{self._query(request)}",
        }
        return TemplateResponse(request, "admin/strategies/strategy/import_form.html", context)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The shop's strategies as a strategy file (API.md), for review or another shop."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        shop = self._shop(request)
        if shop is None or self._foreign_shop_asked(request):
            raise Http404
        body = json.dumps(strategies_export(shop=shop), ensure_ascii=False, indent=2)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="strategies-{shop.code}.json"'
        return response
