from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StrategiesConfig(AppConfig):
    name = "strategies"
    verbose_name = _("Automatic refund strategies")

    def declare_schedules(self) -> dict[str, str]:
        from strategies.schedules import schedules_declare

        return schedules_declare()
