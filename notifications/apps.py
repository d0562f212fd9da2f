from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.utils.translation import gettext_lazy as _

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def check_channels(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warns when a channel is enabled without what it needs to send anything."""
    messages: list[checks.CheckMessage] = []
    backend = settings.ATOM_SMS_BACKEND
    if backend not in ("console", "http"):
        messages.append(
            checks.Error(
                f"ATOM_SMS_BACKEND is {backend!r}; expected 'console' or 'http'.",
                id="notifications.E001",
            )
        )
    if backend == "http":
        required = ("ATOM_SMS_URL", "ATOM_SMS_TOKEN")
        missing = [name for name in required if not getattr(settings, name)]
        if missing:
            messages.append(
                checks.Warning(
                    f"ATOM_SMS_BACKEND is 'http' but {' and '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} not set: SMS alerts will fail.",
                    hint="Set ATOM_SMS_URL and ATOM_SMS_TOKEN, or ATOM_SMS_BACKEND=console.",
                    id="notifications.W001",
                )
            )
    smtp = settings.ATOM_EMAIL_ENABLED and settings.EMAIL_BACKEND == SMTP_BACKEND
    if smtp and not settings.EMAIL_HOST:
        messages.append(
            checks.Warning(
                "E-mail alerts are enabled with the SMTP backend but EMAIL_HOST is not set.",
                hint="Set EMAIL_HOST (and EMAIL_PORT, credentials) or ATOM_EMAIL_ENABLED=false.",
                id="notifications.W002",
            )
        )
    return messages


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        checks.register(check_channels)
