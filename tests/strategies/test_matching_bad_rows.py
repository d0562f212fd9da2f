"""A scenario's loader never fails because of one bad row (RELIABILITY.md 28): that strategy is
skipped and explained (``strategy_unreadable``), the operator alerted by an ERROR log, and the
other strategies still decide."""

import logging

import pytest
from django.db import connection
from django.utils import translation

from strategies.models import Strategy
from strategies.pipeline.decide import request_decide
from tests.factories import make_request, make_strategy

pytestmark = pytest.mark.django_db


def _break(strategy: Strategy, sql_set: str, drop: str | None = None) -> None:
    """Stores what no form, import or service may store any more, as an old row or a hand-made
    SQL fix could have left it (``drop``: the constraint that now forbids it)."""
    table = Strategy._meta.db_table
    with connection.cursor() as cursor:
        # The rows this test made are checked now, so the table may be altered.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if drop:
            cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{drop}"')
        cursor.execute(f'UPDATE "{table}" SET {sql_set} WHERE id = %s', [strategy.pk])


@pytest.mark.parametrize(
    ("sql_set", "drop"),
    [
        # year 9999-12-31 23:59:59 in Los Angeles: year 10000 for PostgreSQL, which psycopg
        # cannot read (the original report)
        ("valid_until = '10000-01-01 07:59:59+00'", "strategy_valid_until_within_bounds"),
        # year 1 in Shanghai: year 0 (1 BC) in UTC
        ("valid_from = '0001-01-01 00:00:00+08'", "strategy_valid_from_within_bounds"),
        # a time of day PostgreSQL stores and Python has no value for
        ("window_start = '22:00', window_end = '24:00:00'", None),
        # a value the matcher cannot use
        ("reasons = '5'::jsonb", None),
    ],
)
def test_one_unreadable_strategy_is_skipped_and_the_next_decides(shop, sent, caplog, sql_set, drop):
    broken = make_strategy(shop=shop, name="Broken", status="active")
    make_strategy(shop=shop, name="Fine", status="active")
    _break(broken, sql_set, drop)
    request = make_request(shop=shop, amount="9.90")

    with caplog.at_level(logging.ERROR), translation.override("en"):
        decision = request_decide(request_id=request.pk)

    assert decision.outcome == "approved" and decision.strategy_name == "Fine"
    assert [(e["strategy"]["name"], e["code"]) for e in decision.explanations] == [
        ("Broken", "strategy_unreadable")
    ]
    assert "could not be read" in decision.explanations[0]["message"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and f"strategy {broken.pk} (Broken)" in errors[0].getMessage()


def test_a_scenario_whose_only_strategy_is_unreadable_goes_to_manual_review(shop, sent):
    broken = make_strategy(shop=shop, name="Only", status="active")
    _break(broken, "valid_until = '10000-01-01 07:59:59+00'", "strategy_valid_until_within_bounds")
    decision = request_decide(request_id=make_request(shop=shop).pk)
    assert decision.outcome == "manual_review"
    assert [e["code"] for e in decision.explanations] == ["strategy_unreadable"]
