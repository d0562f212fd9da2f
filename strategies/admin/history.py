"""A strategy's change history (django-simple-history), scoped to the user's shop and shown in
the merchant's words; past versions are shown, never restored by hand."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import display_for_field, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, DecimalField, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
)
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from strategies.admin.common import (
    in_zone,
    rendered,
)
from strategies.admin.tenancy import (
    ShopScopedAdminMixin,
    parse_id,
    shop_context,
)
from strategies.formatting import money
from strategies.models import (
    Reason,
    Shop,
    Strategy,
)


class _StrategyHistoryHelper(HistoricalRecordContextHelper):
    """A history row's changes in the merchant's words: choice labels ("生效中", not "active"),
    yes/no, "—" for empty, reasons by name, times in the active (the shop's) zone."""

    def prepare_delta_change_value(self, change: Any, value: Any) -> Any:
        field = self.model._meta.get_field(change.field)
        if field.many_to_many:
            return super().prepare_delta_change_value(change, value)
        if change.field == "reasons":
            labels = dict(Reason.choices)
            return ", ".join(str(labels.get(r, r)) for r in value or []) or "—"
        if isinstance(field, BooleanField):
            return gettext("yes") if value else gettext("no")
        if isinstance(field, DecimalField):
            return money(value) if value is not None else "—"
        return display_for_field(value, field, "—")


# A past version's page shows these through the admin's methods, not as raw values: money as
# 100,000.00, the reasons by name (the read-only rendering of a JSON list is its code list).
VERSION_DISPLAYS = {
    "daily_cap": "version_daily_cap",
    "per_request_cap": "version_per_request_cap",
    "reasons": "version_reasons",
}


def showing_a_version(request: HttpRequest) -> bool:
    """Whether this request renders a past version (every field read-only, nothing to save)."""
    return bool(getattr(request, "_atom_history_version", False))


def version_fieldsets(fieldsets: list[Any]) -> list[Any]:
    """The form's groups as a past version shows them: the model's settings only (no hidden
    version, no reason for a change), money and reasons through ``VERSION_DISPLAYS``."""

    def shown(names: Any) -> Any:
        if isinstance(names, (list, tuple)):
            kept = [shown(n) for n in names if n not in ("version", "change_reason")]
            return tuple(k for k in kept if k)
        return VERSION_DISPLAYS.get(names, names)

    result = []
    for title, options in fieldsets:
        fields = shown(options["fields"])
        if fields:
            result.append((title, {**options, "fields": fields}))
    return result


def flat_fields(fieldsets: list[Any]) -> list[str]:
    names: list[str] = []
    for _title, options in fieldsets:
        for name in options["fields"]:
            names.extend(name if isinstance(name, (list, tuple)) else [name])
    return names


class StrategyHistoryAdmin(ShopScopedAdminMixin, SimpleHistoryAdmin):
    """History views of ``StrategyAdmin``: scoped, in the shop's zone, read-only."""

    object_history_form_template = "admin/strategies/strategy/object_history_form.html"

    @admin.display(description=_("daily total cap"))
    def version_daily_cap(self, obj: Strategy) -> str:
        return money(obj.daily_cap)

    @admin.display(description=_("per-request cap"))
    def version_per_request_cap(self, obj: Strategy) -> str:
        return money(obj.per_request_cap)

    @admin.display(description=_("accepted reasons"))
    def version_reasons(self, obj: Strategy) -> str:
        labels = dict(Reason.choices)
        return ", ".join(str(labels.get(r, r)) for r in obj.reasons or []) or "—"

    def _shop_of(self, request: HttpRequest, object_id: str | None) -> Shop | None:
        raise NotImplementedError  # the strategy admin knows which shop a page is about

    # -- history (django-simple-history), scoped -----------------------------------------------

    def _history_visible_or_404(self, request: HttpRequest, object_id: str) -> int:
        pk = parse_id(unquote(object_id))
        if pk is None:
            raise Http404
        live = self.get_queryset(request).filter(pk=pk).exists()
        # A deleted strategy's history stays visible to its own shop only.
        if not live and not self._history_rows(request).filter(id=pk).exists():
            raise Http404
        return pk

    def _history_rows(self, request: HttpRequest) -> QuerySet:
        return shop_context(request).scope(Strategy.history.all())

    @admin.display(description=_("status"))
    def history_status(self, record: Any) -> str:
        return str(record.get_status_display())

    def get_historical_record_context_helper(
        self, request: HttpRequest, historical_record: Any
    ) -> HistoricalRecordContextHelper:
        return _StrategyHistoryHelper(self.model, historical_record)

    def get_history_queryset(
        self, request: HttpRequest, history_manager: Any, pk_name: str, object_id: Any
    ) -> QuerySet:
        qs = super().get_history_queryset(request, history_manager, pk_name, object_id)
        return shop_context(request).scope(qs)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._history_visible_or_404(request, object_id)
        columns = [
            {"name": name, "label": getattr(getattr(self, name), "short_description", name)}
            for name in self.get_history_list_display(request)
        ]
        context = {"atom_history_columns": columns, **(extra_context or {})}
        with in_zone(self._shop_of(request, object_id)):
            return rendered(super().history_view(request, object_id, context))

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Past versions are shown, never restored by hand: a change goes through the form.
        if request.method != "GET":
            raise PermissionDenied
        pk = self._history_visible_or_404(request, object_id)
        history_id = parse_id(version_id)
        if history_id is None or not (
            self._history_rows(request).filter(id=pk, history_id=history_id).exists()
        ):
            raise Http404
        request._atom_history_version = True  # type: ignore[attr-defined]
        context = {
            "atom_current_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=(pk,)
            )
            if self.get_queryset(request).filter(pk=pk).exists()
            else None,
            **(extra_context or {}),
        }
        with in_zone(self._shop_of(request, object_id)):
            return rendered(super().history_form_view(request, object_id, version_id, context))

    def history_form_view_title(self, request: HttpRequest, obj: Any) -> str:
        return gettext("Version of “%(name)s” (read-only)") % {"name": obj}

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True
