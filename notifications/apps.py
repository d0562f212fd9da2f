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


CONSOLE_EMAIL_BACKENDS = (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
)


def check_channels_deployed(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``check --deploy``: an alert that only reaches a log reaches no merchant."""
    messages: list[checks.CheckMessage] = []
    if settings.ATOM_SMS_BACKEND == "console":
        messages.append(
            checks.Warning(
                "ATOM_SMS_BACKEND is 'console': the 95%/100% SMS alerts are only written to the "
                "log.",
                hint="Set ATOM_SMS_BACKEND=http with ATOM_SMS_URL and ATOM_SMS_TOKEN.",
                id="notifications.W003",
            )
        )
    if settings.ATOM_EMAIL_ENABLED and settings.EMAIL_BACKEND in CONSOLE_EMAIL_BACKENDS:
        messages.append(
            checks.Warning(
                f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: alert e-mails reach no mailbox.",
                hint=f"Set EMAIL_BACKEND={SMTP_BACKEND} and EMAIL_HOST, or "
                "ATOM_EMAIL_ENABLED=false.",
                id="notifications.W004",
            )
        )
    return messages


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        checks.register(check_channels)
        checks.register(check_channels_deployed, deploy=True)

    def declare_schedules(self) -> dict[str, str]:
        from notifications.schedules import schedules_declare

        return schedules_declare()
