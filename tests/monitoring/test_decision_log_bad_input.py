"""Whatever the query string says, the decision log and its export answer with the list, the
admin's invalid-filter page (``?e=1``) or a 400: never a 500. And a strategy filter that is set
always filters, even when the caller's shop has no strategy to offer."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.factories import make_log_decision, make_strategy

LIST = reverse("admin:monitoring_decisionlogentry_changelist")
EXPORT = reverse("monitoring:decisions_export")


@pytest.fixture
def staff(client, viewer, shop):
    make_log_decision(shop=shop, outcome="manual_review", aftersale_id="AS-1")
    client.raise_request_exception = False
    client.force_login(viewer)
    return client


@pytest.fixture
def operator(client, shop):
    make_log_decision(shop=shop, outcome="manual_review", aftersale_id="AS-1")
    client.raise_request_exception = False
    client.force_login(get_user_model().objects.create_superuser(username="op", password="x"))
    return client


def export_rows(response) -> list[str]:
    return b"".join(response.streaming_content).decode("utf-8-sig").splitlines()[1:]


@pytest.mark.parametrize(
    "params",
    [
        {"decided_until": "9999-12-31"},
        {"decided_from": "0001-01-01"},
        {"decided_from": "0001-01-01", "decided_until": "9999-12-31"},
    ],
)
def test_a_date_out_of_range_is_an_invalid_filter(staff, params):
    response = staff.get(LIST, params)
    assert response.status_code == 302
    assert "e=1" in response["Location"]
    assert staff.get(EXPORT, params).status_code == 400


@pytest.mark.parametrize(
    "value",
    ["\u00b2", "\u0663", "\uff11", "99999999999999999999", "9" * 5000, "-1"],
    ids=["superscript", "arabic-indic", "fullwidth", "beyond-bigint", "5000-digits", "negative"],
)
def test_a_strategy_that_is_not_an_ascii_id_is_an_invalid_filter(staff, shop, value):
    make_strategy(shop=shop, name="S")

    response = staff.get(LIST, {"strategy": value})

    # Said, never silently an empty (or a full) list (issue 12, 15).
    assert response.status_code == 302
    assert "e=1" in response["Location"]
    assert staff.get(EXPORT, {"strategy": value}).status_code == 400


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "99999999999999999999"])
def test_an_operators_shop_that_is_not_an_ascii_id_is_never_a_500(operator, value):
    for params in ({"shop": value}, {"shop": value, "decided_from": "2026-01-01"}):
        assert operator.get(LIST, params).status_code in (200, 302)
        assert operator.get(EXPORT, params).status_code in (200, 400)


def test_the_strategy_filter_filters_when_the_shop_has_no_strategies(
    client, viewer, shop, other_shop
):
    theirs = make_strategy(shop=other_shop, name="Theirs")
    make_log_decision(shop=shop, outcome="manual_review", aftersale_id="AS-1")
    client.force_login(viewer)

    response = client.get(LIST, {"strategy": theirs.pk})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert export_rows(client.get(EXPORT, {"strategy": theirs.pk})) == []
    # Without the parameter the shop's log is listed as usual.
    assert [d.aftersale_id for d in client.get(LIST).context["cl"].result_list] == ["AS-1"]


def test_an_operator_chooses_a_shop_before_the_strategy_filter_lists_anything(
    operator, shop, other_shop
):
    make_strategy(shop=shop, name="Strategy of A")
    make_strategy(shop=other_shop, name="Strategy of B")
    html = operator.get(LIST).content.decode()
    assert "Strategy of A" not in html and "Strategy of B" not in html
    html = operator.get(LIST, {"shop": shop.pk}).content.decode()
    assert "Strategy of A" in html
    assert "Strategy of B" not in html


@pytest.mark.parametrize(
    "params",
    [{"outcome__exact": "bogus"}, {"scenario__exact": "nope"}, {"reason__exact": "x"}],
)
def test_a_value_outside_a_filters_choices_says_so(staff, params):
    response = staff.get(LIST, params, follow=True, headers={"accept-language": "en"})
    messages = [str(m) for m in response.context["messages"]]
    assert any("is not a choice of the filter" in m for m in messages), messages
    assert staff.get(EXPORT, params).status_code == 400


def test_a_reversed_date_range_says_so(staff):
    params = {"decided_from": "2026-11-20", "decided_until": "2026-11-10"}
    response = staff.get(LIST, params, follow=True, headers={"accept-language": "en"})
    messages = [str(m) for m in response.context["messages"]]
    assert any("starts on 2026-11-20, after it ends on 2026-11-10" in m for m in messages)
    assert staff.get(EXPORT, params).status_code == 400


def test_the_search_bar_count_agrees_with_the_footer_past_the_cap(staff, shop):
    from monitoring.paginators import COUNT_CAP
    from tests.monitoring.rows import insert_decisions

    insert_decisions(shop=shop, strategies=[make_strategy(shop=shop)], rows=COUNT_CAP + 5)
    html = staff.get(LIST, {"reason__exact": "other"}, headers={"accept-language": "en"})
    assert html.status_code == 200
    # Under the cap with a filter: the exact count, and a link that says what it does.
    text = html.content.decode()
    assert "clear the search and filters" in text
    full = staff.get(LIST, {"q": ""}, headers={"accept-language": "en"}).content.decode()
    assert f"{COUNT_CAP + 1} results" not in full
    response = staff.get(LIST, {"decided_from": "2000-01-01"}, headers={"accept-language": "en"})
    text = response.content.decode()
    assert "More than 1,000 results" in text
    assert f"{COUNT_CAP + 1} results" not in text
