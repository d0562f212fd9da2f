"""RELIABILITY.md scenario 23: the decision log with many rows keeps a bounded query count,
never runs an unbounded COUNT(*), and every query it sends walks an index."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from monitoring.paginators import COUNT_CAP
from strategies.models import Decision
from tests.factories import make_strategy
from tests.monitoring.rows import analyze, insert_decisions

LIST = reverse("admin:monitoring_decisionlogentry_changelist")
TABLE = Decision._meta.db_table
MAX_QUERIES = 12


@pytest.fixture
def strategies(shop):
    return [
        make_strategy(shop=shop, name="Refunds", scenario="post_shipment_refund"),
        make_strategy(shop=shop, name="Early", scenario="pre_shipment_refund"),
    ]


def decision_queries(client, params: dict) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(LIST, params)
        assert response.status_code == 200
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries if TABLE in q["sql"]]


CASES = [
    {},
    {"q": "OD-x"},
    {"scenario__exact": "post_shipment_refund"},
    {"reason__exact": "quality_issue", "outcome__exact": "approved"},
    {"decided_from": "2026-01-01", "decided_until": "2026-12-31"},
]


@pytest.mark.parametrize("params", CASES)
def test_the_query_count_does_not_grow_with_rows(
    staff_client, shop, strategies, params, django_assert_max_num_queries
):
    insert_decisions(shop=shop, strategies=strategies, rows=10)
    small, _ = decision_queries(staff_client, params)
    insert_decisions(shop=shop, strategies=strategies, rows=190, start=11)
    with django_assert_max_num_queries(MAX_QUERIES):
        staff_client.get(LIST, params)
    large, _ = decision_queries(staff_client, params)
    assert small == large <= MAX_QUERIES


def test_the_list_of_200_rows_pins_its_queries(staff_client, shop, strategies):
    insert_decisions(shop=shop, strategies=strategies, rows=200)
    count, sqls = decision_queries(staff_client, {})
    # session, user, membership, strategy filter, the admin sidebar's permissions (2), the
    # inbox badge, the requests-awaiting-confirmation notice (a partial index), and on the log
    # itself exactly two: the capped count and one page (shop and request joined in). Nothing
    # per row.
    assert count <= 10
    assert len(sqls) == 2


def test_no_unbounded_count_ever_runs(staff_client, shop, strategies):
    insert_decisions(shop=shop, strategies=strategies, rows=COUNT_CAP + 50)
    for params in CASES:
        _count, sqls = decision_queries(staff_client, params)
        counts = [sql for sql in sqls if "COUNT(" in sql.upper()]
        assert len(counts) == 1, counts
        assert re.search(rf"LIMIT {COUNT_CAP + 1}\b", counts[0]), counts[0]
    response = staff_client.get(LIST, HTTP_ACCEPT_LANGUAGE="en")
    assert response.context["cl"].paginator.capped
    assert re.search(r"More than 1.?000 entries", response.content.decode())


def test_every_query_of_the_list_walks_an_index(staff_client, shop, other_shop, strategies):
    others = [make_strategy(shop=other_shop, name="Theirs")]
    insert_decisions(shop=shop, strategies=strategies, rows=15_000)
    insert_decisions(shop=other_shop, strategies=others, rows=5_000)
    analyze()
    plans = {}
    for label, params in {
        "unfiltered": {},
        "order id search": {"q": f"OD{shop.pk}-1234"},
        "after-sales id search": {"q": f"AS{shop.pk}-77"},
        "reason": {"reason__exact": "quality_issue"},
        "strategy": {"strategy": strategies[0].pk},
    }.items():
        _count, sqls = decision_queries(staff_client, params)
        assert sqls, label
        for sql in sqls:
            with connection.cursor() as cur:
                cur.execute("EXPLAIN " + sql)
                plan = "\n".join(row[0] for row in cur.fetchall())
            plans[label] = plan
            assert f"Seq Scan on {TABLE}" not in plan, f"{label}:\n{sql}\n{plan}"
            assert "Index" in plan, f"{label}:\n{plan}"
    assert "decision_shop_order" in plans["order id search"]

    # An operator searching across every shop still probes the shop-leading indexes.
    operator = get_user_model().objects.create_superuser(username="op", password="x")
    staff_client.force_login(operator)
    for term in (f"OD{other_shop.pk}-4321", f"AS{shop.pk}-77"):
        _count, sqls = decision_queries(staff_client, {"q": term})
        for sql in sqls:
            with connection.cursor() as cur:
                cur.execute("EXPLAIN " + sql)
                plan = "\n".join(row[0] for row in cur.fetchall())
            assert f"Seq Scan on {TABLE}" not in plan, f"{term}:\n{sql}\n{plan}"
    response = staff_client.get(LIST, {"q": f"OD{other_shop.pk}-4321"})
    assert [d.aftersale_id for d in response.context["cl"].result_list] == [
        f"AS{other_shop.pk}-4321"
    ]
