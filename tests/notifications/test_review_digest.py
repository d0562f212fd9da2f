"""The review queue's daily digest: requests close to their platform deadline are e-mailed to
the shop once each (issue 14.6)."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from notifications.schedules import schedules_declare
from notifications.services import review_digest_send
from strategies.models import AfterSaleRequest
from tests.factories import make_decision, make_request, make_shop

pytestmark = pytest.mark.django_db


def waiting(shop, aftersale_id: str, deadline_in: dt.timedelta | None) -> AfterSaleRequest:
    request = make_request(shop=shop, aftersale_id=aftersale_id)
    make_decision(request=request, outcome="manual_review")
    if deadline_in is not None:
        AfterSaleRequest.objects.filter(pk=request.pk).update(
            platform_deadline=timezone.now() + deadline_in
        )
    return request


def test_requests_close_to_their_deadline_are_e_mailed_once_each(settings):
    settings.ATOM_REVIEW_DIGEST_HOURS = 12
    shop = make_shop(alert_email="ops@example.com")
    waiting(shop, "AS-SOON", dt.timedelta(hours=3))
    waiting(shop, "AS-LATER", dt.timedelta(hours=30))
    waiting(shop, "AS-NO-DEADLINE", None)
    assert review_digest_send() == 1
    [message] = mail.outbox
    assert message.to == ["ops@example.com"]
    assert "AS-SOON" in message.body
    assert "AS-LATER" not in message.body and "AS-NO-DEADLINE" not in message.body
    # Run again the same day: nothing new to say, nothing sent.
    assert review_digest_send() == 0
    assert len(mail.outbox) == 1
    # A new request comes close: only it is named.
    waiting(shop, "AS-NEW", dt.timedelta(hours=1))
    assert review_digest_send() == 1
    assert "AS-NEW" in mail.outbox[1].body and "AS-SOON" not in mail.outbox[1].body


def test_a_shop_without_an_address_gets_nothing_and_a_finished_request_is_not_named():
    quiet = make_shop()
    waiting(quiet, "AS-QUIET", dt.timedelta(hours=1))
    loud = make_shop(alert_email="ops@example.com")
    done = waiting(loud, "AS-DONE", dt.timedelta(hours=1))
    AfterSaleRequest.objects.filter(pk=done.pk).update(status="refused")
    assert review_digest_send() == 0 and mail.outbox == []


def test_the_digest_is_on_the_beat_schedule():
    from django_celery_beat.models import PeriodicTask

    schedules_declare()
    task = PeriodicTask.objects.get(name="review deadline digest")
    assert task.task == "notifications.review_digest" and task.crontab.hour == "9"
