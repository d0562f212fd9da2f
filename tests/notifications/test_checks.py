"""System checks warn when a channel is enabled without what it needs."""

from notifications.apps import check_channels, check_channels_deployed

SMTP = "django.core.mail.backends.smtp.EmailBackend"


def _ids() -> list[str]:
    return [message.id for message in check_channels()]


def test_it_is_quiet_with_the_demo_defaults(settings):
    settings.ATOM_SMS_BACKEND = "console"
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert _ids() == []


def test_it_warns_about_an_http_sms_provider_without_url_or_token(settings):
    settings.ATOM_SMS_BACKEND = "http"
    settings.ATOM_SMS_URL = ""
    settings.ATOM_SMS_TOKEN = ""
    (warning,) = check_channels()
    assert warning.id == "notifications.W001"
    assert "ATOM_SMS_URL and ATOM_SMS_TOKEN" in warning.msg

    settings.ATOM_SMS_URL = "https://sms.example/send"
    (warning,) = check_channels()
    assert "ATOM_SMS_TOKEN is not set" in warning.msg

    settings.ATOM_SMS_TOKEN = "secret"
    assert _ids() == []


def test_it_rejects_an_unknown_sms_backend(settings):
    settings.ATOM_SMS_BACKEND = "carrier-pigeon"
    assert _ids() == ["notifications.E001"]


def test_it_warns_about_smtp_without_a_host_only_when_email_is_enabled(settings):
    settings.ATOM_SMS_BACKEND = "console"
    settings.EMAIL_BACKEND = SMTP
    settings.EMAIL_HOST = ""
    settings.ATOM_EMAIL_ENABLED = True
    assert _ids() == ["notifications.W002"]

    settings.ATOM_EMAIL_ENABLED = False
    assert _ids() == []

    settings.ATOM_EMAIL_ENABLED = True
    settings.EMAIL_HOST = "smtp.example"
    assert _ids() == []


def test_the_check_is_registered_with_django(settings):
    from django.core import checks

    settings.ATOM_SMS_BACKEND = "http"
    settings.ATOM_SMS_URL = ""
    ids = [message.id for message in checks.run_checks()]
    assert "notifications.W001" in ids


def test_a_deployment_is_warned_when_alerts_would_only_reach_a_log(settings):
    settings.ATOM_SMS_BACKEND = "console"
    settings.ATOM_EMAIL_ENABLED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert [m.id for m in check_channels_deployed()] == [
        "notifications.W003",
        "notifications.W004",
    ]
    settings.ATOM_SMS_BACKEND = "http"
    settings.EMAIL_BACKEND = SMTP
    assert check_channels_deployed() == []
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    settings.ATOM_EMAIL_ENABLED = False  # e-mail switched off on purpose: nothing to warn
    assert check_channels_deployed() == []
