"""Celery tasks are interfaces: they take ids, call one service and own the retry policy.

The decision service sends ``notifications.check_ledger_alerts`` by name (``send_task``) after a
reservation crosses 95% or 100%; the beat sweep heals any message lost on the way.
"""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="notifications.check_ledger_alerts")
def check_ledger_alerts(ledger_id: int) -> int:
    return len(services.alerts_check_ledger(ledger_id=ledger_id))


@shared_task(name="notifications.send_delivery")
def send_delivery(delivery_id: int) -> str:
    result = services.delivery_send(delivery_id=delivery_id)
    if result.retry_in is not None:
        # Back-off is capped (ATOM_NOTIFY_RETRY_MAX_SECONDS) far below the visibility timeout;
        # if this message is lost, the sweep re-enqueues the delivery once it is due.
        send_delivery.apply_async(args=[delivery_id], countdown=result.retry_in)
    return result.status


@shared_task(name="notifications.sweep_alerts")
def sweep_alerts() -> dict[str, int]:
    return services.alerts_sweep()


@shared_task(name="notifications.purge_old_attempts")
def purge_old_attempts() -> int:
    return services.delivery_attempts_purge()


@shared_task(name="notifications.review_digest")
def review_digest() -> int:
    return services.review_digest_send()


@shared_task(name="notifications.raise_channel_alert")
def raise_channel_alert(channel_id: int, kind: int) -> bool:
    return services.channel_alert_raise(channel_id=channel_id, kind=kind) is not None
