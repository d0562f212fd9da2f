"""Proxy models that give the monitoring pages their place in the admin.

No tables of their own: the decision log is ``strategies.Decision`` (search fields denormalized
and indexed per shop) and consumption is ``strategies.DailyLedger``.
"""

from django.utils.translation import gettext_lazy as _

from strategies.models import AfterSaleRequest, DailyLedger, Decision


class DecisionLogEntry(Decision):
    """The decision log as the strategy monitor (策略监控) shows it: read-only."""

    class Meta:
        proxy = True
        verbose_name = _("decision log entry")
        verbose_name_plural = _("decision log")


class ConsumptionOverview(DailyLedger):
    """The consumption dashboard (资金消耗): its admin entry opens the dashboard page."""

    class Meta:
        proxy = True
        verbose_name = _("consumption")
        verbose_name_plural = _("consumption")


class ReviewQueueEntry(AfterSaleRequest):
    """The review queue (人工审核): requests waiting for a person (monitoring/queue.py)."""

    class Meta:
        proxy = True
        verbose_name = _("request to review")
        verbose_name_plural = _("manual review")
