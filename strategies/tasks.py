"""Celery tasks are interfaces: they take ids, call one service and own the retry policy."""

from celery import shared_task


@shared_task(name="strategies.decide_request")
def decide_request(request_id: int) -> None:
    from .services.decisions import request_decide

    request_decide(request_id=request_id)
