"""The platform-facing API (API.md): thin views over the intake service and the API selectors.

Every response is JSON, errors included. Each call goes: method (405), body size (413),
signature over the raw bytes, or a GET's path as sent (401), then JSON and fields (400), then
the service.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt

from strategies.models import RequestStatus, Shop
from strategies.pipeline.intake import PayloadConflict
from strategies.platforms.generic.auth import (
    SignatureRejected,
    request_path_as_sent,
    request_status_for_api,
    shop_for_signed_request,
)
from strategies.platforms.generic.intake import aftersale_receive
from strategies.platforms.generic.schema import PayloadInvalid, payload_parse
from strategies.platforms.generic.signing import SHOP_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

logger = logging.getLogger(__name__)

View = Callable[..., JsonResponse]


class _BodyTooLarge(Exception):
    pass


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def api_view(*methods: str) -> Callable[[View], View]:
    """CSRF-exempt, one set of methods (405 otherwise), JSON even for an unexpected error."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            if request.method not in methods:
                response = _error(gettext("Method not allowed."), 405)
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except Exception:
                logger.exception("API error on %s %s", request.method, request.path)
                return _error(gettext("Internal error."), 500)

        return wrapper

    return decorate


def _read_body(request: HttpRequest) -> bytes:
    """The raw body, never reading more than ``ATOM_MAX_BODY_BYTES`` + 1 bytes."""
    limit = settings.ATOM_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise _BodyTooLarge
    body = request.read(limit + 1)
    if len(body) > limit:
        raise _BodyTooLarge
    return body


def _authenticate(request: HttpRequest) -> tuple[Shop, bytes]:
    body = _read_body(request)
    shop = shop_for_signed_request(
        shop_code=request.headers.get(SHOP_HEADER),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signature=request.headers.get(SIGNATURE_HEADER),
        method=request.method or "",
        path=request_path_as_sent(request),
        body=body,
    )
    return shop, body


def _signed(view: Callable[..., JsonResponse]) -> View:
    """Authenticates before the view runs; the view gets the shop and the raw body."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        try:
            shop, body = _authenticate(request)
        except _BodyTooLarge:
            return _error(
                gettext("The body is larger than %(limit)d bytes.")
                % {"limit": settings.ATOM_MAX_BODY_BYTES},
                413,
            )
        except SignatureRejected as exc:
            return _error(str(exc), 401)
        return view(request, shop, body, *args, **kwargs)

    return wrapper


@api_view("POST")
@_signed
def aftersale_create(request: HttpRequest, shop: Shop, body: bytes) -> JsonResponse:
    try:
        receipt = aftersale_receive(shop=shop, payload=payload_parse(body))
    except PayloadInvalid as exc:
        return JsonResponse({"errors": exc.errors}, status=400)
    except PayloadConflict:
        return _error(
            gettext("This aftersale_id was already received with a different payload."), 409
        )
    if receipt.created:
        return JsonResponse(
            {"aftersale_id": receipt.request.aftersale_id, "status": RequestStatus.RECEIVED},
            status=202,
        )
    view = request_status_for_api(shop=shop, aftersale_id=receipt.request.aftersale_id)
    return JsonResponse(view, status=200)


@api_view("GET")
@_signed
def aftersale_detail(
    request: HttpRequest, shop: Shop, body: bytes, aftersale_id: str
) -> JsonResponse:
    view = request_status_for_api(shop=shop, aftersale_id=aftersale_id)
    if view is None:
        return _error(gettext("Not found."), 404)
    return JsonResponse(view, status=200)


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other path under the API: a JSON 404, not Django's HTML page."""
    return _error(gettext("Not found."), 404)
