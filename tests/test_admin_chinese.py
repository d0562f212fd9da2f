"""The merchant back office speaks Chinese by default (LANGUAGE_CODE zh-hans) in the seeds' words,
and English to whoever asks for it (language cookie or Accept-Language).

Needs the compiled catalogue (`make messages`; `make test` does it first)."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import translation

from strategies.matching import OVER_PER_REQUEST_CAP, explanation_message
from strategies.models import OrderStatus, RequestStatus, Scenario, StrategyStatus
from tests.factories import make_strategy

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/strategies/strategy/?scenario=post_shipment_refund"
ADD_NO_RETURN = "/admin/strategies/strategy/add/?scenario=post_shipment_no_return"

# The seeds' own terms (../shared/seeds/000_*.txt, 003_*.txt and PRODUCT.md). Pairs, not a dict:
# OrderStatus.RECEIVED and RequestStatus.RECEIVED are both "received" and would collide.
SEED_TERMS = [
    (Scenario.PRE_SHIPMENT_REFUND, "发货前-自动仅退款"),
    (Scenario.POST_SHIPMENT_REFUND, "发货后-自动仅退款"),
    (Scenario.POST_SHIPMENT_RETURN_REFUND, "发货后-自动退货退款"),
    (Scenario.POST_SHIPMENT_NO_RETURN, "发货后-不退货仅退款"),
    (Scenario.TAGGED_REFUND_NO_RETURN, "发货后-自动退款不退货"),
    (StrategyStatus.INACTIVE, "未生效"),
    (StrategyStatus.TRIAL, "试运行"),
    (StrategyStatus.ACTIVE, "生效中"),
    (OrderStatus.PENDING_SHIPMENT, "待发货"),
    (OrderStatus.SHIPPED, "已发货未签收"),
    (OrderStatus.RECEIVED, "已签收"),
    (RequestStatus.RECEIVED, "已接收"),
    (RequestStatus.MANUAL_REVIEW, "人工审核"),
]


@pytest.fixture
def strategy(shop):
    return make_strategy(
        shop=shop,
        name="Small parcels",
        daily_cap=Decimal("500.00"),
        per_request_cap=Decimal("20.00"),
    )


def page(client, url: str, **headers: str) -> str:
    response = client.get(url, **headers)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_it_defaults_to_chinese_without_any_preference(owner_client, strategy):
    assert settings.LANGUAGE_CODE == "zh-hans"

    html = page(owner_client, CHANGELIST)

    assert '<html lang="zh-hans"' in html
    assert "售后自动退款策略" in html  # the app
    assert "策略名称" in html  # a column
    assert "发货后-自动仅退款" in html  # the scenario tab
    assert "当日退款总额上限" in html and "单笔金额上限" in html  # the caps column
    assert "未生效" in html  # the strategy's status
    assert "After shipment: automatic refund only" not in html
    assert "strategy name" not in html.lower()


def test_the_strategy_form_and_its_risk_warnings_are_in_chinese(owner_client, shop):
    html = page(owner_client, ADD_NO_RETURN)

    for label in ("策略名称", "策略有效期", "指定执行时间", "商品限定条件", "适用订单状态"):
        assert label in html, label
    for label in ("当日退款总额上限", "单笔金额上限", "申请退款时间限制", "售后申请原因"):
        assert label in html, label
    assert "风控条件" in html and "买家限制" in html
    assert "风险提示" in html
    assert "订单状态以平台后台的订单状态为准" in html  # the platform-status warning
    assert "发货后不退货仅退款会造成货款两失" in html  # this scenario's warning
    assert "未设置单笔金额上限" in html  # no per-request cap yet
    assert "loses both the money and the goods" not in html


def test_a_language_cookie_of_en_shows_english(owner_client, strategy):
    owner_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    listing = page(owner_client, CHANGELIST)
    form = page(owner_client, ADD_NO_RETURN)

    assert '<html lang="en"' in listing
    assert "After shipment: automatic refund only" in listing
    assert "Inactive" in listing
    assert "发货后-自动仅退款" not in listing
    assert "Per-request cap" in form
    assert "Refunding after shipment without a return loses both the money and the goods" in form
    assert "单笔金额上限" not in form and "风险提示" not in form


def test_accept_language_picks_english_or_chinese(owner_client, strategy):
    english = page(owner_client, CHANGELIST, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    chinese = page(owner_client, CHANGELIST, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5")

    assert "After shipment: automatic refund only" in english
    assert "发货后-自动仅退款" not in english
    assert '<html lang="zh-hans"' in chinese
    assert "发货后-自动仅退款" in chinese


def test_the_cookie_wins_over_accept_language(owner_client, strategy):
    owner_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"

    html = page(owner_client, CHANGELIST, HTTP_ACCEPT_LANGUAGE="en")

    assert "发货后-自动仅退款" in html


@pytest.mark.parametrize(
    ("choice", "term"), SEED_TERMS, ids=[f"{type(c).__name__}.{c.name}" for c, _ in SEED_TERMS]
)
def test_choices_use_the_seeds_terms(choice, term):
    with translation.override("zh-hans"):
        assert str(choice.label) == term
    with translation.override("en"):
        assert str(choice.label) != term


def test_a_matcher_explanation_renders_in_chinese_and_in_english():
    params = {"amount": "25.00", "cap": "20.00"}

    with translation.override("zh-hans"):
        chinese = explanation_message(OVER_PER_REQUEST_CAP, params)
    with translation.override("en"):
        english = explanation_message(OVER_PER_REQUEST_CAP, params)

    assert chinese == "金额 25.00 超过单笔金额上限 20.00"
    assert english == "Amount 25.00 is over the per-request cap 20.00"


def test_a_strategys_history_speaks_chinese(owner_client, owner, strategy):
    from strategies.services.strategies import strategy_set_status, strategy_update

    strategy_set_status(strategies=[strategy], status=StrategyStatus.ACTIVE, actor=owner)
    strategy.refresh_from_db()
    strategy_update(strategy=strategy, actor=owner, risk_control=False, max_hours_since_payment=48)

    html = page(owner_client, f"/admin/strategies/strategy/{strategy.pk}/history/")

    table = html[html.index('id="change-history"') :]
    header = table[: table.index("</thead>")]
    assert "状态" in header and "优先级" in header and "变更内容" in header
    assert "position" not in header
    rows = table[table.index("<tbody>") : table.index("</tbody>")]
    assert "<td>生效中</td>" in rows and "<td>未生效</td>" in rows  # the status column
    assert "未生效&nbsp;&rarr;&nbsp;&nbsp;生效中" in rows  # the status change, in labels
    assert "<strong>风控条件:</strong>" in rows  # the risk control change, by its Chinese name
    assert "是&nbsp;&rarr;&nbsp;&nbsp;否" in rows
    assert "—&nbsp;&rarr;&nbsp;&nbsp;48" in rows  # empty is a dash, not "None"
    assert "条记录" in table
    for english in (">active<", "inactive", "None", "True", "False", "entries"):
        assert english not in html, english
