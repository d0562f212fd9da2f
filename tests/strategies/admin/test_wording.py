"""Issue 12, point 13: the back office says everything in the interface language, in the
merchant's words, with one money and one date format."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import django
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone, translation

from notifications.models import Alert
from strategies.matching import DAILY_CAP_REACHED, explanation_message
from strategies.models import AfterSaleRequest, Strategy
from tests.factories import make_decision, make_ledger, make_request, make_strategy

pytestmark = pytest.mark.django_db

ADMIN_JS = Path(django.__file__).parent / "contrib" / "admin" / "static" / "admin" / "js"


def _catalog(response) -> dict:
    """The ``newcatalog`` object of a JavaScriptCatalog response."""
    text = response.content.decode()
    body = text[text.index("const newcatalog = ") + len("const newcatalog = ") :]
    return json.loads(body[: body.index("};") + 1])


def test_every_string_of_the_product_chooser_is_chinese(owner_client):
    # The strategy form's product chooser is the admin's SelectFilter2.js (filter_horizontal):
    # each of its gettext() strings must be in the catalogue admin:jsi18n serves in Chinese.
    source = (ADMIN_JS / "SelectFilter2.js").read_text()
    wanted = {
        m.group(2).replace('\\"', '"')
        for m in re.finditer(r"\bgettext\(\s*(['\"])((?:\\.|(?!\1).)*)\1", source)
    }
    assert "Choose all %s" in wanted  # the regex reads the script
    catalog = _catalog(owner_client.get(reverse("admin:jsi18n")))
    missing = sorted(w for w in wanted if not catalog.get(w))
    assert missing == []
    assert catalog["Choose all %s"] == "全选%s"


def test_the_chooser_stays_english_in_english(owner_client):
    owner_client.cookies["django_language"] = "en"
    assert "全选" not in owner_client.get(reverse("admin:jsi18n")).content.decode()


# -- one money format (100,000.00) and one date format (2026-11-22 10:15) --------------------


@pytest.fixture
def big_request(shop):
    strategy = make_strategy(shop=shop, name="Big", status="active", daily_cap=Decimal("250000.00"))
    request = make_request(shop=shop, aftersale_id="AS-BIG", amount="12345.60")
    decision = make_decision(request=request, strategy=strategy)
    AfterSaleRequest.objects.filter(pk=request.pk).update(
        received_at=dt.datetime(2026, 11, 22, 2, 15, tzinfo=dt.UTC)
    )
    return decision


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize(
    "page",
    [
        lambda d: reverse("admin:monitoring_decisionlogentry_changelist"),
        lambda d: reverse("admin:monitoring_decisionlogentry_change", args=[d.pk]),
        lambda d: reverse("admin:strategies_aftersalerequest_changelist"),
        lambda d: reverse("admin:strategies_aftersalerequest_change", args=[d.request_id]),
        lambda d: reverse("monitoring:consumption"),
    ],
    ids=["decision log", "decision", "requests", "request", "dashboard"],
)
def test_money_has_a_thousands_separator_on_every_page(owner_client, big_request, page, language):
    owner_client.cookies["django_language"] = language
    text = owner_client.get(page(big_request)).content.decode()
    assert "12,345.60" in text
    assert "12345.60" not in text


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_dates_read_the_same_in_both_languages(owner_client, big_request, language):
    owner_client.cookies["django_language"] = language
    text = owner_client.get(reverse("admin:strategies_aftersalerequest_changelist")).content
    # 02:15 UTC is 10:15 in the shop's zone (Asia/Shanghai), shown as 2026-11-22 10:15.
    assert "2026-11-22 10:15" in text.decode()
    assert "2026年11月22日" not in text.decode() and "Nov. 22, 2026" not in text.decode()


def test_a_history_row_shows_a_changed_cap_as_money(owner_client, shop):
    strategy = make_strategy(shop=shop, name="Capped", daily_cap=Decimal("50000.00"))
    strategy.daily_cap = Decimal("100000.00")
    strategy.save()
    url = reverse("admin:strategies_strategy_history", args=[strategy.pk])
    text = owner_client.get(url).content.decode()
    assert "50,000.00" in text and "100,000.00" in text
    assert "50000.00" not in text


def test_an_explanation_shows_money_params_grouped():
    params = {"amount": "1200.00", "consumed": "49000.00", "cap": "50000.00"}
    with translation.override("en"):
        message = explanation_message(DAILY_CAP_REACHED, params)
    assert "1,200.00" in message and "49,000.00" in message and "50,000.00" in message


def test_the_csv_file_is_named_in_the_shops_time(owner_client, shop):
    shop.timezone = "Asia/Shanghai"
    shop.save()
    before = timezone.now().astimezone(shop.zone)
    response = owner_client.get(reverse("monitoring:decisions_export"))
    name = re.search(r'filename="decisions-(\d{8}-\d{6})\.csv"', response["Content-Disposition"])
    stamp = dt.datetime.strptime(name.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=shop.zone)
    assert abs((stamp - before).total_seconds()) < 60


# -- a past version of a strategy: named as such, read-only, with a way back -----------------


def test_a_past_version_is_read_only_and_says_so(owner_client, shop):
    strategy = make_strategy(shop=shop, name="旧名称", daily_cap=Decimal("50000.00"))
    strategy.name = "新名称"
    strategy.save()
    old = strategy.history.order_by("history_id").first()
    url = reverse("admin:strategies_strategy_simple_history", args=[strategy.pk, old.history_id])
    response = owner_client.get(url)
    text = response.content.decode()
    assert response.status_code == 200
    assert "这是历史版本（只读）" in text
    shown = re.sub(r"<[^>]+>", " ", text)
    assert "Historical" not in shown and "historical" not in shown
    assert "50,000.00" in text and "旧名称" in text
    form = text[re.search(r'id="\w+_form"', text).start() :]
    assert not re.search(r'<(input|select|textarea)(?![^>]*type="hidden")', form), "editable"
    assert 'type="submit"' not in form
    change = reverse("admin:strategies_strategy_change", args=[strategy.pk])
    assert f'href="{change}"' in text  # back to the strategy as it is now
    assert reverse("admin:strategies_strategy_history", args=[strategy.pk]) in text
    assert owner_client.post(url, {"name": "x"}).status_code == 403


def test_the_version_model_is_named_in_both_languages():
    history = Strategy.history.model._meta
    with translation.override("zh-hans"):
        assert str(history.verbose_name) == "策略版本"
    with translation.override("en"):
        assert str(history.verbose_name) == "strategy version"


# -- the 403 page ----------------------------------------------------------------------------


def test_the_403_page_is_translated_and_offers_a_way_back(client, viewer):
    client.force_login(viewer)
    response = client.get(reverse("admin:strategies_strategy_add"))
    text = response.content.decode()
    assert response.status_code == 403
    assert "你的账号无权打开此页面或执行此操作" in text
    assert f'href="{reverse("admin:index")}"' in text
    assert 'id="atom-language"' in text  # the admin's frame, language menu included


def test_the_403_page_offers_an_operator_the_shops(client, shop, other_shop):
    operator = get_user_model().objects.create_superuser("root", password="pw-for-tests-1")
    client.force_login(operator)
    url = reverse("admin:strategies_popularstrategy_changelist")
    response = client.get(url)
    assert response.status_code == 403
    shops = response.content.decode().split('id="atom-denied-shops"')[1].split("</ul>")[0]
    assert f'href="{url}?shop={shop.pk}"' in shops
    assert f'href="{url}?shop={other_shop.pk}"' in shops
    chosen = client.get(f"{url}?shop={shop.pk}")
    assert chosen.status_code == 302
    assert chosen["Location"] == reverse("admin:strategies_strategy_template") + f"?shop={shop.pk}"


def test_the_api_keeps_its_plain_403(client):
    from strategies.admin.denied import permission_denied

    request = RequestFactory().get("/api/v1/aftersales")
    request.user = AnonymousUser()
    response = permission_denied(request, PermissionDenied())
    assert response.status_code == 403 and b"atom-language" not in response.content


# -- the menu follows the seeds: 策略监控, 热门策略 ---------------------------------------------


def test_the_menu_names_the_seeds_sections(owner_client):
    text = owner_client.get(reverse("admin:index")).content.decode()
    assert "策略监控" in text and "热门策略" in text
    popular = reverse("admin:strategies_popularstrategy_changelist")
    assert popular in text
    opened = owner_client.get(popular)
    assert opened["Location"] == reverse("admin:strategies_strategy_template")
    owner_client.cookies["django_language"] = "en"
    text = owner_client.get(reverse("admin:index")).content.decode()
    assert "Strategy monitoring" in text and "Popular strategies" in text


def test_a_viewer_gets_no_popular_strategies_entry(client, viewer):
    client.force_login(viewer)
    text = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:strategies_popularstrategy_changelist") not in text


# -- merchant words instead of internal names ------------------------------------------------


def test_the_payload_fingerprint_is_translated(owner_client, shop):
    request = make_request(shop=shop, aftersale_id="AS-FP")
    text = owner_client.get(
        reverse("admin:strategies_aftersalerequest_change", args=[request.pk])
    ).content.decode()
    assert "报文指纹" in text and "Payload digest" not in text


def test_alerts_and_notices_are_named_as_a_merchant_knows_them(shop):
    strategy = make_strategy(shop=shop, name="小额退款")
    alert = Alert.objects.create(
        shop=shop,
        strategy=strategy,
        day=dt.date(2026, 12, 2),
        level=95,
        consumed=Decimal("47500.00"),
        cap=Decimal("50000.00"),
    )
    with translation.override("zh-hans"):
        assert str(alert) == "小额退款，2026-12-02：达到当日上限的 95%"
    with translation.override("en"):
        assert str(alert) == "小额退款, 2026-12-02: 95% of the daily cap"
    ledger = make_ledger(strategy=strategy, consumed="47500.00")
    with translation.override("en"):
        assert str(ledger).endswith(": 47,500.00 used") and "小额退款 on " in str(ledger)
    assert str(strategy.pk) not in str(alert)


def test_the_admins_own_screen_reader_headers_are_chinese(owner_client):
    # Django's zh_Hans catalogue lacks these (the app list's hidden column headers).
    text = owner_client.get(reverse("admin:index")).content.decode()
    assert "项目名称" in text
    for english in ("Model name", "Add link", "Change or view list link"):
        assert english not in text
