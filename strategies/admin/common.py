"""What every admin page of the back office shares: badges, the shop's zone, operator filters."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.contrib import admin
from django.http import (
    HttpRequest,
    HttpResponse,
)
from django.template.response import SimpleTemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from strategies.admin.tenancy import OperatorShopFilter
from strategies.formatting import money
from strategies.models import (
    RequestStatus,
    Shop,
    StrategyStatus,
)

admin.site.site_header = _("ATOM · automatic after-sales refunds")
admin.site.site_title = _("ATOM back office")
admin.site.index_title = _("Back office")

STATUS_COLOURS: dict[str, str] = {
    StrategyStatus.INACTIVE: "#8a8a8a",
    StrategyStatus.TRIAL: "#d18b00",
    StrategyStatus.ACTIVE: "#2e7d32",
}
REQUEST_STATUS_COLOURS: dict[str, str] = {
    RequestStatus.RECEIVED: "#8a8a8a",
    RequestStatus.MANUAL_REVIEW: "#d18b00",
    RequestStatus.APPROVED: "#1565c0",
    RequestStatus.EXECUTED: "#2e7d32",
    RequestStatus.FAILED: "#c62828",
    RequestStatus.UNKNOWN: "#6a1b9a",
    RequestStatus.DONE_ELSEWHERE: "#00838f",
    RequestStatus.SUPERSEDED: "#5d4037",
}


def badge(label: Any, colour: str) -> str:
    return format_html(
        '<span class="atom-badge" style="background:{};color:#fff;padding:2px 8px;'
        'border-radius:10px;white-space:nowrap">{}</span>',
        colour,
        label,
    )


def money_column(field: str, description: Any) -> Callable[[Any, Any], str]:
    """A list column or read-only field showing a money field as ``100,000.00`` (the admin's
    own rendering of a DecimalField has no thousands separator)."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: Any, obj: Any) -> str:
        return money(getattr(obj, field))

    return column


def in_zone(shop: Shop | None) -> AbstractContextManager[Any]:
    """The shop's time zone for a view's input and output (the server's when no shop)."""
    return timezone.override(shop.zone) if shop is not None else nullcontext()


def rendered(response: HttpResponse) -> HttpResponse:
    # A TemplateResponse renders after the view returns, outside any ``timezone.override``.
    if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
        response.render()
    return response


def operator_filters(request: HttpRequest, filters: Any) -> list[Any]:
    """The shop filter first: it offers shops to operators only; for staff it takes the
    ``?shop=<own id>`` every page accepts (another shop's id is a 404 before any filter)."""
    return [OperatorShopFilter, *filters]
