"""The demo's Kuaishou player: a fake Kuaishou, a shop connected to it, encrypted pushes stored
by the live push endpoint."""

import io

import pytest
from django.core.management import call_command
from django.utils import translation

from strategies.models import Channel, PushMessage
from strategies.pipeline.publish import PUSH_TASK

pytestmark = pytest.mark.django_db(transaction=True)


@translation.override("en")  # the progress lines are read below
def test_it_connects_a_kuaishou_shop_and_its_pushes_are_stored(live_server, sent):
    out = io.StringIO()
    call_command(
        "simulate_kuaishou", "--url", live_server.url, "--count", "2", "--rate", "20", stdout=out
    )
    channel = Channel.objects.get(shop__code="demo-ks")
    assert channel.platform == "kuaishou" and channel.last_push_at is not None
    assert PushMessage.objects.filter(channel=channel).count() == 2
    assert [name for name, _ in sent] == [PUSH_TASK, PUSH_TASK]
    assert out.getvalue().count(": 200;") == 2
