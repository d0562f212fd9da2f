"""The back office's 403 page: in the interface language, inside the admin's frame, with a way
back (the admin index, or the login for someone not signed in as staff) and, for an operator,
the shops to choose from (an operator's page about one shop is refused until one is chosen)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext
from django.views import defaults

from strategies.admin.tenancy import SHOP_PARAM, is_operator
from strategies.models import Shop

# An operator is offered this many shops at most (by code); more are reached from the lists.
SHOPS_OFFERED = 50


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not request.path.startswith(reverse("admin:index")):
        # The API and the platforms' push endpoints answer for themselves; anything else gets
        # Django's plain page (templates/403.html is the back office's, in the admin's frame).
        return HttpResponseForbidden(
            defaults.ERROR_PAGE_TEMPLATE % {"title": "403 Forbidden", "details": ""}
        )
    user = request.user
    staff = bool(user.is_active and user.is_staff)
    shops = []
    if is_operator(user):
        params = request.GET.copy()
        params.pop(SHOP_PARAM, None)
        for shop in Shop.objects.order_by("code")[:SHOPS_OFFERED]:
            query = urlencode([*params.items(), (SHOP_PARAM, shop.pk)])
            shops.append({"name": str(shop), "url": f"{request.path}?{query}"})
    context = {
        **admin.site.each_context(request),
        "title": gettext("You may not open this page"),
        "atom_staff": staff,
        "atom_login_url": reverse("admin:login")
        + "?"
        + urlencode({"next": request.get_full_path()}),
        "atom_shops": shops,
    }
    return render(request, "403.html", context, status=403)
