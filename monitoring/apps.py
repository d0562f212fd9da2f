from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = _("Strategy monitoring")

    def ready(self) -> None:
        # The review queue's admin builds on the decision log's (monitoring.admin): registered
        # here, after admin autodiscovery, so neither module imports the other in a cycle.
        from monitoring import queue  # noqa: F401
