"""The health endpoint: what a load balancer or process manager polls.

Anyone may ask whether ATOM is up; only a caller with ``ATOM_HEALTH_TOKEN`` learns which
dependency failed (an exception's class name tells an attacker what runs behind the site).
"""

import hmac

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

# A broker that does not accept a connection within this many seconds counts as down.
BROKER_TIMEOUT_SECONDS = 2.0


def database_check() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means unhealthy; the class name says which
        return f"error: {exc.__class__.__name__}"
    return "ok"


def broker_check() -> str:
    """Opens (and closes) one connection to the broker, once: no retries, a short timeout."""
    from .celery import app

    try:
        with app.connection_for_write(connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"
    return "ok"


def has_health_token(request: HttpRequest) -> bool:
    """``Authorization: Bearer <ATOM_HEALTH_TOKEN>``, compared in constant time."""
    token: str = settings.ATOM_HEALTH_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def health(request: HttpRequest) -> JsonResponse:
    """200 when the database answers and the broker accepts a connection; 503 otherwise.

    The body is ``{"status": "ok"}`` or ``{"status": "error"}``; with the health token it also
    holds each check's result.
    """
    checks = {"database": database_check(), "broker": broker_check()}
    healthy = all(value == "ok" for value in checks.values())
    body: dict[str, str] = {"status": "ok" if healthy else "error"}
    if has_health_token(request):
        body.update(checks)
    response = JsonResponse(body, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response
