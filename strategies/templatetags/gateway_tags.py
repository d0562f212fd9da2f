"""The admin's banners about money whose fate is not settled (templates/admin/base_site.html):
the simulated gateway (no platform call at all) and requests awaiting a person's confirmation."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from strategies.admin.tenancy import is_operator
from strategies.models import AfterSaleRequest, RequestStatus

register = template.Library()


@register.simple_tag
def simulated_gateway() -> bool:
    return settings.ATOM_GATEWAY == "simulated"


@register.simple_tag(takes_context=True)
def requests_awaiting_confirmation(context: dict[str, Any]) -> int:
    """How many of the user's shop's requests are ``unknown`` (all shops for an operator): one
    count on a partial index per page."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    unknown = AfterSaleRequest.objects.filter(status=RequestStatus.UNKNOWN)
    if not is_operator(user):
        unknown = unknown.filter(shop__memberships__user_id=user.pk)
    return unknown.count()
