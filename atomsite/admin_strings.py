"""Strings of Django's own admin templates that its zh_Hans catalogue leaves in English (the app
list's screen-reader headers "Model name", "Add link"..., the login's "Forgotten your login
credentials?"). Listed here only so that makemessages keeps their translations in
locale/zh_Hans/LC_MESSAGES/django.po, which is searched before Django's (LOCALE_PATHS)."""

from django.utils.translation import gettext_noop

DJANGO_ADMIN_STRINGS = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop("Error:"),
    gettext_noop("Forgotten your login credentials?"),
    gettext_noop("In case you’ve forgotten, you are:"),  # noqa: RUF001
    # Django's msgids, typographic apostrophes included:
    gettext_noop("After you’ve created a user, you’ll be able to edit more user options."),  # noqa: RUF001
)
