"""Channels: one small class each. ``notify()`` returns, or raises ``TransportError`` saying
whether trying again could help (``permanent=False``) or not (``permanent=True``)."""

from __future__ import annotations

import logging
import smtplib

import requests
from django.conf import settings
from django.core.mail import EmailMessage

logger = logging.getLogger(__name__)


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class Transport:
    def notify(self, *, recipient: str, subject: str, body: str, idempotency_key: str) -> None:
        raise NotImplementedError


class ConsoleSms(Transport):
    """The demo default: the SMS goes to the log."""

    def notify(self, *, recipient: str, subject: str, body: str, idempotency_key: str) -> None:
        logger.info("SMS to %s [%s]: %s", recipient, idempotency_key, body)


class HttpSms(Transport):
    """A JSON POST to the provider (docs/notifications.md has the contract).

    2xx: sent. 5xx, 429, a timeout or a refused connection: temporary. Any other 4xx: permanent.
    """

    def notify(self, *, recipient: str, subject: str, body: str, idempotency_key: str) -> None:
        if not settings.ATOM_SMS_URL:
            raise TransportError("ATOM_SMS_URL is not set", permanent=True)
        try:
            response = requests.post(
                settings.ATOM_SMS_URL,
                json={"phone": recipient, "message": body, "idempotency_key": idempotency_key},
                headers={"Authorization": f"Bearer {settings.ATOM_SMS_TOKEN}"},
                timeout=settings.ATOM_SMS_TIMEOUT,
            )
        except requests.Timeout:
            raise TransportError("SMS provider timed out") from None
        except requests.RequestException as exc:
            raise TransportError(f"SMS provider unreachable: {exc}") from None
        if 200 <= response.status_code < 300:
            return
        message = f"SMS provider answered HTTP {response.status_code}: {response.text[:200]}"
        temporary = response.status_code >= 500 or response.status_code == 429
        raise TransportError(message, permanent=not temporary)


class Email(Transport):
    """Through Django's e-mail backend (console in the demo, SMTP in production)."""

    def notify(self, *, recipient: str, subject: str, body: str, idempotency_key: str) -> None:
        message = EmailMessage(
            subject=subject,
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[recipient],
            headers={"X-Atom-Delivery": idempotency_key},
        )
        try:
            message.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _msg in exc.recipients.values()]
            permanent = bool(codes) and all(500 <= code < 600 for code in codes)
            raise TransportError(
                f"SMTP refused the recipient: {exc.recipients}", permanent=permanent
            ) from None
        except smtplib.SMTPResponseException as exc:
            detail = exc.smtp_error
            if isinstance(detail, bytes):
                detail = detail.decode(errors="replace")
            raise TransportError(
                f"SMTP {exc.smtp_code}: {detail}", permanent=500 <= exc.smtp_code < 600
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"SMTP unavailable: {exc}") from None
        # One readable line per e-mail (the console backend prints the MIME-encoded message).
        logger.info("E-mail to %s [%s]: %s", recipient, idempotency_key, subject)


def transport_for(channel: str) -> Transport:
    if channel == "email":
        return Email()
    if channel == "sms":
        return HttpSms() if settings.ATOM_SMS_BACKEND == "http" else ConsoleSms()
    raise ValueError(f"unknown channel {channel!r}")
