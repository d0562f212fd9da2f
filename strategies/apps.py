from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class StrategiesConfig(AppConfig):
    name = "strategies"
    verbose_name = _("Automatic refund strategies")

    def ready(self) -> None:
        from celery.signals import worker_init

        from strategies import checks as strategy_checks

        checks.register(strategy_checks.check_gateway)
        checks.register(strategy_checks.check_execution_timing)
        checks.register(strategy_checks.check_gateway_deployed, deploy=True)
        worker_init.connect(strategy_checks.worker_refuses_overlapping_timing, weak=False)

    def declare_schedules(self) -> dict[str, str]:
        from strategies.schedules import schedules_declare

        return schedules_declare()
