"""The unread badge of the admin inbox: one query per page, whatever the user."""

from __future__ import annotations

from typing import Any

from django import template

from notifications.models import Notice
from strategies.admin.tenancy import is_operator

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notices_count(context: dict[str, Any]) -> int:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    unread = Notice.objects.filter(read_at__isnull=True)
    if not is_operator(user):
        # Joined through the membership: one query, no separate membership lookup.
        unread = unread.filter(shop__memberships__user_id=user.pk)
    return unread.count()
