"""RELIABILITY.md scenario 33: the decision log and its CSV export accept only the declared
filters and the search. Any other parameter (``__regex``, a lookup into the JSON explanations or
the request's payload, an ordering) is an invalid filter with a readable message, for viewers
and operators alike, and the log's table is not read at all: never a scan."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from strategies.models import Decision
from tests.factories import make_log_decision, make_strategy

LIST = reverse("admin:monitoring_decisionlogentry_changelist")
EXPORT = reverse("monitoring:decisions_export")
TABLE = Decision._meta.db_table

UNDECLARED = [
    {"aftersale_id__regex": ".*"},
    {"order_id__icontains": "OD"},
    {"explanations__0__code": "cap_reached"},
    {"explanations__contains": '[{"code": "cap_reached"}]'},
    {"request__payload__order__order_id": "OD-1"},
    {"request__payload__has_key": "order"},
    {"amount__gt": "0"},
    {"shop__api_secret__startswith": "a"},
    {"o": "3"},
    {"scenario__exact": "post_shipment_refund", "reason__regex": "."},
]
IDS = [
    "regex",
    "icontains",
    "json-index",
    "json-contains",
    "payload",
    "payload-has-key",
    "amount",
    "secret",
    "ordering",
    "declared-and-not",
]


@pytest.fixture(params=["viewer", "operator"])
def anyone(request, client, shop, viewer):
    strategy = make_strategy(shop=shop, name="Refunds")
    make_log_decision(
        shop=shop,
        strategy=strategy,
        aftersale_id="AS-1",
        explanations=[{"code": "cap_reached", "message": "m", "strategy": {"name": "Refunds"}}],
    )
    user = (
        viewer
        if request.param == "viewer"
        else get_user_model().objects.create_superuser(username="op", password="x")
    )
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.raise_request_exception = False
    client.force_login(user)
    return client


def log_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if TABLE in q["sql"]]


@pytest.mark.parametrize("params", UNDECLARED, ids=IDS)
def test_an_undeclared_filter_on_the_list_is_refused_with_a_message(anyone, params):
    with CaptureQueriesContext(connection) as queries:
        response = anyone.get(LIST, params)
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}?e=1"
    assert log_queries(queries) == []  # refused before the log is read
    page = anyone.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    names = [key for key in params if key != "scenario__exact"]
    assert "is not a filter of the decision log" in html
    assert all(f"“{name}”" in html for name in names)
    assert "scenario__exact" not in html.split('class="messagelist"')[1].split("</ul>")[0]
    # The message is shown once, then gone.
    assert "is not a filter of the decision log" not in anyone.get(LIST).content.decode()


@pytest.mark.parametrize("params", UNDECLARED, ids=IDS)
def test_an_undeclared_filter_on_the_export_is_a_400_with_the_message(anyone, params):
    with CaptureQueriesContext(connection) as queries:
        response = anyone.get(EXPORT, params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert "is not a filter of the decision log" in response.content.decode()
    assert log_queries(queries) == []
    # The export queues no message for the next page.
    assert "is not a filter" not in anyone.get(LIST).content.decode()


def test_an_undeclared_filter_next_to_the_error_flag_is_no_database_error(anyone):
    response = anyone.get(LIST, {"e": "1", "aftersale_id__regex": ".*"})
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}?e=1"
    html = anyone.get(response["Location"]).content.decode()
    assert "Database error" not in html
    assert "“aftersale_id__regex” is not a filter" in html


def test_a_bad_date_says_which_value_is_wrong(anyone):
    response = anyone.get(LIST, {"decided_from": "yesterday"}, follow=True)
    assert "“yesterday” is not a day the decision log can show" in response.content.decode()
    response = anyone.get(EXPORT, {"decided_until": "9999-12-31"})
    assert response.status_code == 400
    assert "“9999-12-31” is not a day" in response.content.decode()


def test_the_declared_filters_and_the_search_still_narrow_the_log(anyone, shop):
    strategy = Decision.objects.get(aftersale_id="AS-1").strategy
    declared = {
        "q": "AS-1",
        "scenario__exact": "post_shipment_refund",
        "reason__exact": Decision.objects.get(aftersale_id="AS-1").reason,
        "outcome__exact": "approved",
        "strategy": strategy.pk,
        "decided_from": "2000-01-01",
        "decided_until": "2099-12-31",
        "shop": shop.pk,
        "p": "1",
        "all": "",
    }
    response = anyone.get(LIST, declared)
    assert response.status_code == 200
    assert [d.aftersale_id for d in response.context["cl"].result_list] == ["AS-1"]
    export = anyone.get(EXPORT, declared)
    assert export.status_code == 200
    rows = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()[1:]
    assert len(rows) == 1 and "AS-1" in rows[0]


def test_the_message_is_in_the_interface_language(anyone):
    anyone.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    html = anyone.get(LIST, {"aftersale_id__regex": ".*"}, follow=True).content.decode()
    assert "“aftersale_id__regex”" in html
    assert "is not a filter" not in html
    assert "不是决策日志的筛选项" in html
