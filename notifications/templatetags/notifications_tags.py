"""The unread badge of the admin inbox: one query per page, whatever the user."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Exists, OuterRef

from notifications.models import Notice, NoticeRead
from strategies.admin.tenancy import is_operator

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notices_count(context: dict[str, Any]) -> int:
    """Notices this user has not read (read state is per user)."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    read = NoticeRead.objects.filter(notice=OuterRef("pk"), user_id=user.pk)
    unread = Notice.objects.filter(~Exists(read))
    if not is_operator(user):
        # Joined through the membership: one query, no separate membership lookup.
        unread = unread.filter(shop__memberships__user_id=user.pk)
    return unread.count()
