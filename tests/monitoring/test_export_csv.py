"""The CSV export: streamed, UTF-8 with a BOM for Excel, the changelist's filters kept."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from tests.factories import make_log_decision, make_strategy

EXPORT = reverse("monitoring:decisions_export")


@pytest.fixture
def rows(shop):
    strategy = make_strategy(shop=shop, name="小额退款", scenario="post_shipment_refund")
    at = dt.datetime(2026, 3, 10, 15, 59, 59, tzinfo=dt.UTC)
    make_log_decision(
        shop=shop,
        strategy=strategy,
        aftersale_id="AS-1",
        reason="quality_issue",
        amount="12.50",
        decided_at=at,
        explanations=[
            {
                "scenario": "post_shipment_no_return",
                "strategy": {"id": 1, "name": "Tiny"},
                "code": "over_per_request_cap",
                "message": "Too much.",
            }
        ],
    )
    make_log_decision(
        shop=shop,
        outcome="manual_review",
        aftersale_id="AS-2",
        reason="other",
        decided_at=at - dt.timedelta(hours=1),
    )
    return strategy


def read(response) -> tuple[bytes, list[list[str]]]:
    raw = b"".join(response.streaming_content)
    return raw, list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_it_streams_a_utf8_csv_with_a_bom_and_every_column(client, viewer, rows):
    client.force_login(viewer)
    with translation.override("en"):
        response = client.get(EXPORT, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    raw, table = read(response)
    assert raw.startswith(b"\xef\xbb\xbf")
    assert table[0] == [
        "Decided at (shop time)",
        "Shop",
        "After-sales id",
        "Order id",
        "Reason",
        "Scenario",
        "Outcome",
        "Strategy",
        "Amount",
        "Request status",
        "Explanations",
    ]
    first, second = table[1], table[2]
    assert first[0] == "2026-03-10T23:59:59+08:00"
    assert first[1:3] == ["shop-a", "AS-1"]
    assert first[4:10] == [
        "Quality issue",
        "After shipment: automatic refund only",
        "Approved",
        "小额退款",
        "12.50",
        "Executed",
    ]
    assert first[10] == "Tiny [over_per_request_cap] Too much."
    assert second[2] == "AS-2" and second[6] == "Manual review" and second[7] == ""
    assert len(table) == 3


def test_it_exports_only_what_the_current_filters_show(client, viewer, rows):
    client.force_login(viewer)
    _raw, table = read(client.get(EXPORT, {"outcome__exact": "manual_review"}))
    assert [r[2] for r in table[1:]] == ["AS-2"]
    _raw, table = read(client.get(EXPORT, {"q": "AS-1", "strategy": rows.pk}))
    assert [r[2] for r in table[1:]] == ["AS-1"]
    _raw, table = read(client.get(EXPORT, {"decided_from": "2026-03-11"}))
    assert table[1:] == []


def test_the_changelist_export_button_keeps_the_filters(client, viewer, rows):
    client.force_login(viewer)
    response = client.get(
        reverse("admin:monitoring_decisionlogentry_changelist"),
        {"reason__exact": "other", "q": "AS-2"},
    )
    html = response.content.decode()
    assert f'href="{EXPORT}?reason__exact=other&amp;q=AS-2"' in html


def test_an_invalid_filter_is_a_bad_request(client, viewer, rows):
    client.force_login(viewer)
    assert client.get(EXPORT, {"decided_until": "31/12/2026"}).status_code == 400


def test_headers_follow_the_callers_language(client, viewer, rows):
    client.force_login(viewer)
    with translation.override("zh-hans"):
        response = client.get(EXPORT, HTTP_ACCEPT_LANGUAGE="zh-hans")
    raw, table = read(response)
    assert raw.startswith(b"\xef\xbb\xbf")
    assert len(table[0]) == 11


@pytest.mark.django_db(transaction=True)
def test_the_export_streams_from_a_cursor_that_is_not_materialized(client, shop):
    # In autocommit a server-side cursor is declared WITH HOLD, which makes PostgreSQL compute
    # the whole result (millions of rows) before the first line: the export must avoid it.
    # Asked of PostgreSQL itself (pg_cursors) while the export is between two chunks, so it
    # holds whether parameters are bound on the client or on the server.
    from django.db import connection

    from monitoring.views import EXPORT_LINES_PER_CHUNK
    from tests.factories import make_membership
    from tests.monitoring.rows import insert_decisions

    user = make_membership(shop=shop, username="exporter", role="viewer").user
    lines = EXPORT_LINES_PER_CHUNK + 5
    insert_decisions(shop=shop, strategies=[make_strategy(shop=shop)], rows=lines)
    client.force_login(user)
    chunks = iter(client.get(EXPORT).streaming_content)
    header, first = next(chunks), next(chunks)  # suspended inside the rows, cursor open
    with connection.cursor() as cursor:
        cursor.execute("SELECT is_holdable FROM pg_cursors")
        cursors = [row[0] for row in cursor.fetchall()]
    rest = b"".join(chunks)
    assert cursors == [False], "the export reads through one server-side cursor, not WITH HOLD"
    table = list(csv.reader(io.StringIO((header + first + rest).decode("utf-8-sig"))))
    assert len(table) == 1 + lines


EXPLAINED = {
    "scenario": "post_shipment_refund",
    "strategy": {"id": 1, "name": "Small"},
    "code": "over_per_request_cap",
    "message": "Amount 25.00 is over the per-request cap 20.00",  # stored in English
    "params": {"amount": "25.00", "cap": "20.00"},
}


def test_explanations_are_rendered_in_the_callers_language_like_the_detail(client, viewer, shop):
    from monitoring.selectors import explanation_row

    make_log_decision(shop=shop, outcome="manual_review", explanations=[EXPLAINED])
    client.force_login(viewer)
    client.cookies["django_language"] = "zh-hans"
    response = client.get(EXPORT)
    # The server consumes the stream later, whatever language is active by then.
    with translation.override("en"):
        _raw, table = read(response)
    with translation.override("zh-hans"):
        chinese = explanation_row(EXPLAINED)[3]
        header = gettext("Explanations")
    assert chinese != EXPLAINED["message"]
    assert table[0][10] == header
    assert table[1][10] == f"Small [over_per_request_cap] {chinese}"


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_quoted(client, viewer, shop, prefix):
    strategy = make_strategy(shop=shop, name=f'{prefix}HYPERLINK("http://x.example")')
    make_log_decision(shop=shop, strategy=strategy, aftersale_id=f"{prefix}1+1")
    client.force_login(viewer)

    _raw, table = read(client.get(EXPORT))

    row = table[1]
    assert row[2] == f"'{prefix}1+1"
    assert row[7] == f'\'{prefix}HYPERLINK("http://x.example")'
    assert row[8] == "9.90"


def test_ordinary_cells_are_left_as_they_are():
    from monitoring.views import csv_cell

    assert [csv_cell(v) for v in ("AS-1", "12.50", "小额退款", "", "a=b")] == [
        "AS-1",
        "12.50",
        "小额退款",
        "",
        "a=b",
    ]
