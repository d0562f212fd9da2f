"""Monitoring pages outside the generic admin: the CSV export of the decision log and the
consumption dashboard (资金消耗). Both are wrapped by ``admin.site.admin_view`` (urls.py), and
both resolve the shop through ``strategies.admin.tenancy``.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from strategies.admin.tenancy import SHOP_PARAM, shop_context
from strategies.models import Outcome, Reason, RequestStatus, Scenario, Shop, StrategyStatus
from strategies.selectors import shop_today

from .charts import bar_chart
from .models import DecisionLogEntry
from .selectors import (
    consumption_series,
    consumption_today,
    explanation_row,
    local_noon,
    refunded_today,
)

EXPORT_CHUNK = 1000  # rows per fetch from the server-side cursor
EXPORT_LINES_PER_CHUNK = 100  # CSV lines per chunk sent to the client
BOM = "\ufeff"


class _Echo:
    """A file-like object whose ``write`` returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def export_header() -> list[str]:
    return [
        gettext("Decided at (shop time)"),
        gettext("Shop"),
        gettext("After-sales id"),
        gettext("Order id"),
        gettext("Reason"),
        gettext("Scenario"),
        gettext("Outcome"),
        gettext("Strategy"),
        gettext("Amount"),
        gettext("Request status"),
        gettext("Explanations"),
    ]


def export_lines(queryset: QuerySet) -> Iterator[str]:
    """The CSV text, one line at a time: a BOM and the header, then rows in chunks.

    Labels are resolved now, in the caller's language; the rows (explanations re-rendered from
    their params, like the detail view) are written in that same language, captured here,
    whatever language is active when the server consumes the generator.
    """
    language = translation.get_language()
    labels = {
        "reason": {k: str(v) for k, v in Reason.choices},
        "scenario": {k: str(v) for k, v in Scenario.choices},
        "outcome": {k: str(v) for k, v in Outcome.choices},
        "status": {k: str(v) for k, v in RequestStatus.choices},
    }
    header = export_header()
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        # The language is active only while a chunk is produced, never while suspended.
        chunks = _lines()
        while True:
            with translation.override(language):
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk

    def _lines() -> Iterator[str]:
        yield BOM + writer.writerow([csv_cell(value) for value in header])
        rows = queryset.values_list(
            "decided_at",
            "shop__code",
            "shop__timezone",
            "aftersale_id",
            "order_id",
            "reason",
            "scenario",
            "outcome",
            "strategy_name",
            "amount",
            "request__status",
            "explanations",
        )
        zones: dict[str, Any] = {}
        # Inside a transaction the server-side cursor streams; in autocommit Django declares it
        # WITH HOLD, and PostgreSQL would compute the whole result before the first row.
        with transaction.atomic():
            batch: list[str] = []
            for line in _rows(rows, zones):
                batch.append(line)
                if len(batch) >= EXPORT_LINES_PER_CHUNK:
                    yield "".join(batch)
                    batch = []
            if batch:
                yield "".join(batch)

    def _rows(rows: QuerySet, zones: dict[str, Any]) -> Iterator[str]:
        for (
            decided_at,
            shop_code,
            zone_name,
            aftersale_id,
            order_id,
            reason,
            scenario,
            outcome,
            strategy_name,
            amount,
            status,
            explanations,
        ) in rows.iterator(chunk_size=EXPORT_CHUNK):
            if zone_name not in zones:
                zones[zone_name] = ZoneInfo(zone_name)
            zone = zones[zone_name]
            cells = [
                timezone.localtime(decided_at, zone).isoformat(timespec="seconds"),
                shop_code,
                aftersale_id,
                order_id,
                labels["reason"].get(reason, reason),
                labels["scenario"].get(scenario, scenario),
                labels["outcome"].get(outcome, outcome),
                strategy_name,
                f"{amount:.2f}",
                labels["status"].get(status, status),
                explanations_text(explanations),
            ]
            yield writer.writerow([csv_cell(value) for value in cells])

    return lines()


def explanations_text(explanations: Any) -> str:
    """Every explanation as "strategy [code] message", the message in the active language."""
    if not explanations:
        return ""
    parts = []
    for entry in explanations:
        _scenario, name, code, message = explanation_row(entry)
        parts.append(f"{name} [{code}] {message}".strip())
    return "; ".join(parts)


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """The cell as text, with a leading apostrophe when a spreadsheet would read a formula."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def decisions_export(request: HttpRequest) -> HttpResponseBase:
    """The decision log as CSV, with exactly the changelist's shop scope, filters and search."""
    from .admin import DecisionLogAdmin, invalid_filter_message

    model_admin = admin.site._registry[DecisionLogEntry]
    assert isinstance(model_admin, DecisionLogAdmin)
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if shop_context(request).foreign_shop_asked:
        raise Http404
    try:
        queryset = model_admin.export_queryset(request)
    except IncorrectLookupParameters as exc:
        return HttpResponseBadRequest(
            invalid_filter_message(exc), content_type="text/plain; charset=utf-8"
        )
    lines = export_lines(queryset.order_by("-decided_at", "-id"))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    # Named in the shop's time, as the rows inside are (the server's zone for all shops).
    shop = shop_context(request).shop
    zone = shop.zone if shop is not None else timezone.get_default_timezone()
    stamp = timezone.now().astimezone(zone).strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="decisions-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


def dashboard_day(raw: str | None, *, today: dt.date) -> tuple[dt.date, str]:
    """The day the dashboard shows (``?day=YYYY-MM-DD``, today by default) and, for a day it
    cannot show, the message saying so (then today is shown)."""
    if not raw:
        return today, ""
    try:
        day = dt.date.fromisoformat(raw.strip())
    except ValueError:
        return today, gettext("“%(value)s” is not a day (YYYY-MM-DD): today is shown.") % {
            "value": raw
        }
    if day > today:
        return today, gettext("%(day)s is in the future: today is shown.") % {"day": day}
    if day.year < 2000:
        return today, gettext("%(day)s is before 2000: today is shown.") % {"day": day}
    return day, ""


def dashboard_shop(request: HttpRequest) -> Shop:
    context = shop_context(request)
    if not context.may_view or context.foreign_shop_asked or context.unknown_shop_asked:
        raise Http404
    shop = context.shop or Shop.objects.order_by("code").first()
    if shop is None:  # an operator of a platform with no shop yet
        raise Http404
    return shop


def consumption_dashboard(request: HttpRequest) -> HttpResponse:
    """Today's consumption per strategy and the last 30 shop-local days, for one shop.

    Staff see their own shop (another ``?shop=`` is a 404); operators choose with ``?shop=<id>``
    (the first shop by code until they do; an id of no shop is a 404).
    """
    shop = dashboard_shop(request)
    operator = shop_context(request).operator
    now = timezone.now()
    today = shop_today(shop=shop, now=now)
    day, day_error = dashboard_day(request.GET.get("day"), today=today)
    if day_error:
        messages.error(request, day_error)
    # A past day is measured from a moment inside it (its ledgers, its last 30 days).
    moment = now if day == today else local_noon(shop=shop, day=day)
    rows = consumption_today(shop=shop, now=moment)
    refunded = refunded_today(shop=shop, rows=rows, now=moment)
    series = consumption_series(shop=shop, now=moment)
    names = series.names

    def charted(values_by_strategy: dict[int, list]) -> list[tuple[str, list]]:
        # Inactive strategies only where they count: a day they approved something.
        return [
            (names[sid], values)
            for sid, values in values_by_strategy.items()
            if series.statuses.get(sid) != StrategyStatus.INACTIVE or any(values)
        ]

    hits_chart = bar_chart(days=series.days, series=charted(series.hits))
    amount_chart = bar_chart(days=series.days, series=charted(series.amounts))
    review_chart = bar_chart(
        days=series.days, series=[(gettext("Manual review"), series.manual_reviews)]
    )
    context = {
        **admin.site.each_context(request),
        "title": _("Consumption"),
        "shop": shop,
        "shops": list(Shop.objects.order_by("code")) if operator else [],
        # The log of the same shop: an operator's choice travels as ?shop=<id>.
        "decision_log_url": reverse("admin:monitoring_decisionlogentry_changelist")
        + (f"?{urlencode({SHOP_PARAM: shop.pk})}" if operator else ""),
        "rows": [row for row in rows if not row.folded],
        "folded_rows": [row for row in rows if row.folded],
        "refunded": refunded,
        "review_queue_url": reverse("admin:monitoring_reviewqueueentry_changelist")
        + (f"?{urlencode({SHOP_PARAM: shop.pk})}" if operator else ""),
        "today": series.days[-1],
        "is_today": day == today,
        "real_today": today,
        "first_day": series.days[0],
        "now_local": timezone.localtime(now, shop.zone),
        "hits_chart": hits_chart,
        "amount_chart": amount_chart,
        "review_chart": review_chart,
        "total_hits": sum(sum(v) for v in series.hits.values()),
        "total_reviews": sum(series.manual_reviews),
    }
    return TemplateResponse(request, "admin/monitoring/consumption.html", context)
