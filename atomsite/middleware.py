"""Middleware of the site.

``HealthCheckMiddleware`` answers /healthz before host validation and the HTTPS redirect.

Load balancers and process managers probe with their own Host header (an internal IP) over
plain HTTP: neither may turn the probe into a 400 or a 301. Nothing but the two checks' status
is revealed, so answering any host is harmless.
"""

from collections.abc import Callable
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from .views import health

HEALTH_PATH = "/healthz"


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return health(request)
        return self.get_response(request)


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, quiet when ``collectstatic`` has not run: the finders serve the files then."""

    def add_files(self, root: str, prefix: str | None = None) -> None:
        if Path(root).is_dir():
            super().add_files(root, prefix=prefix)
