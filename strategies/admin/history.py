"""A strategy's change history (django-simple-history), scoped to the user's shop and shown in
the merchant's words; past versions are shown, never restored by hand."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import display_for_field, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
)
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
        return display_for_field(value, field, "—")


class StrategyHistoryAdmin(ShopScopedAdminMixin, SimpleHistoryAdmin):
    """History views of ``StrategyAdmin``: scoped, in the shop's zone, read-only."""

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
        with in_zone(self._shop_of(request, object_id)):
            return rendered(
                super().history_form_view(request, object_id, version_id, extra_context)
            )

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True
