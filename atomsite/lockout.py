"""The admin login's lockout (django-axes): whose address a try counts against, and the page a
locked-out login gets.

The platform API never reaches these: it authenticates by shop signature, not by Django's
``authenticate``, which is the only thing axes watches.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str | None:
    """The address a login try counts against: the proxy's header when one is configured.

    Only a header the proxy overwrites may be trusted (deploy/nginx.conf sets X-Real-IP), never
    a list a client can prepend to such as X-Forwarded-For; without a proxy, the socket's peer.
    """
    header = settings.ATOM_CLIENT_IP_HEADER
    address = request.META.get(header, "").strip() if header else ""
    return address or request.META.get("REMOTE_ADDR")


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any = None
) -> HttpResponse:
    """429 with the admin's look: the lock, how long it lasts, and who can lift it."""
    from django.contrib import admin

    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {
        **admin.site.each_context(request),
        "title": "",
        "minutes": minutes,
    }
    # Rendered now: axes swaps it in after the view, where no one renders a TemplateResponse.
    return render(request, "admin/locked_out.html", context, status=HTTPStatus.TOO_MANY_REQUESTS)
