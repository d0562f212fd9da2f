"""Issue 12, "Money at risk", through the admin: switching on and raising a cap are confirmed
after reading what the strategy does (and its latest backtest), a cap lowered below today's use
is warned about, the reason for a change is kept in the history, the import arrives inactive,
and the scenarios' precedence is said where strategies are set."""

import datetime as dt
import io
import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from strategies.models import BacktestRun, Strategy
from strategies.services.strategies import strategy_create_from_template
from strategies.services.strategy_files import strategies_export
from tests.factories import make_finished_backtest, make_ledger, make_strategy
from tests.strategies.admin.test_admin_strategies import form_data

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:strategies_strategy_changelist")
ADD = reverse("admin:strategies_strategy_add")
IMPORT = reverse("admin:strategies_strategy_import")
LIST = f"{CHANGELIST}?scenario=post_shipment_refund"


def change_url(strategy):
    return reverse("admin:strategies_strategy_change", args=[strategy.pk])


def history_url(strategy):
    return reverse("admin:strategies_strategy_history", args=[strategy.pk])


def strategy_form(strategy, **overrides):
    values = {
        "name": strategy.name,
        "status": strategy.status,
        "daily_cap": str(strategy.daily_cap),
        "per_request_cap": str(strategy.per_request_cap or ""),
        **overrides,
    }
    return form_data(**values)


# -- 3. switching on from the list ----------------------------------------------------------------


def test_the_activate_action_asks_first_with_the_summary_and_the_backtest(as_owner, shop):
    night = make_strategy(shop=shop, name="Night", per_request_cap=Decimal("25.50"))
    other = make_strategy(shop=shop, name="Other")
    run = make_finished_backtest(shop=shop, strategy=night)
    page = as_owner.post(
        LIST, {"action": "make_active", "_selected_action": [night.pk, other.pk], "index": 0}
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "Activate these strategies?" in html
    assert "Automatically approves refund-only requests on shipped/received orders" in html
    assert "each ≤ 25.50" in html
    backtest = reverse("admin:strategies_backtestrun_change", args=[run.pk])
    assert f'href="{backtest}"' in html
    assert "backtested 30 days: would approve 1,204 requests, 8,310.50" in html
    assert "Not backtested yet" in html  # the other one
    assert set(Strategy.objects.values_list("status", flat=True)) == {"inactive"}

    done = as_owner.post(
        LIST,
        {
            "action": "make_active",
            "_selected_action": [night.pk, other.pk],
            "atom_confirm": "yes",
            "change_reason": "checked with the team",
        },
        follow=True,
    )
    assert "2 strategies set to “Active”." in done.content.decode()
    assert set(Strategy.objects.values_list("status", flat=True)) == {"active"}
    assert night.history.first().history_change_reason == "checked with the team"


def test_the_confirmation_page_is_in_chinese_by_default(owner_client, shop):
    night = make_strategy(shop=shop, name="Night")
    html = owner_client.post(
        LIST, {"action": "make_active", "_selected_action": [night.pk], "index": 0}
    ).content.decode()
    assert "确认开启这些策略？" in html
    assert "自动同意 已发货/已签收 订单的仅退款申请" in html
    assert "是的，开启" in html


def test_deactivating_needs_no_confirmation(as_owner, shop):
    live = make_strategy(shop=shop, status="active")
    response = as_owner.post(
        LIST, {"action": "make_inactive", "_selected_action": [live.pk], "index": 0}
    )
    assert response.status_code == 302
    assert Strategy.objects.get(pk=live.pk).status == "inactive"


# -- 3. switching on and raising a cap in the form ----------------------------------------------


def test_switching_on_in_the_form_asks_first_and_keeps_what_was_typed(as_owner, shop):
    night = make_strategy(shop=shop, name="Night", per_request_cap=Decimal("20.00"))
    make_finished_backtest(shop=shop, strategy=night)
    post = strategy_form(night, status="active", remark="typed", version=night.version)
    page = as_owner.post(change_url(night), post)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="atom-confirm"' in html
    assert "Switching on" in html
    assert "backtested 30 days: would approve 1,204 requests, 8,310.50" in html
    assert 'value="typed"' in html
    assert Strategy.objects.get(pk=night.pk).status == "inactive"

    saved = as_owner.post(change_url(night), {**post, "atom_confirm": "yes"})
    assert saved.status_code == 302
    assert Strategy.objects.get(pk=night.pk).status == "active"


def test_adding_a_strategy_already_active_asks_first(as_owner, shop):
    post = form_data(name="Straight on", status="active")
    assert as_owner.post(f"{ADD}?scenario=post_shipment_refund", post).status_code == 200
    assert not Strategy.objects.exists()
    response = as_owner.post(
        f"{ADD}?scenario=post_shipment_refund", {**post, "atom_confirm": "yes"}
    )
    assert response.status_code == 302
    assert Strategy.objects.get().status == "active"


def test_raising_a_cap_of_an_active_strategy_asks_first_lowering_does_not(as_owner, shop):
    live = make_strategy(
        shop=shop, name="Live", status="active", daily_cap=Decimal("3000.00"), per_request_cap=20
    )
    raised = as_owner.post(
        change_url(live), strategy_form(live, daily_cap="5000.00", version=live.version)
    )
    assert "The daily total cap is raised from 3,000.00 to 5,000.00." in raised.content.decode()
    assert Strategy.objects.get(pk=live.pk).daily_cap == Decimal("3000.00")
    lowered = as_owner.post(
        change_url(live), strategy_form(live, daily_cap="2000.00", version=live.version)
    )
    assert lowered.status_code == 302
    assert Strategy.objects.get(pk=live.pk).daily_cap == Decimal("2000.00")


def test_a_backtest_of_the_form_needs_no_confirmation(as_owner, shop, sent):
    night = make_strategy(shop=shop, name="Night", per_request_cap=Decimal("20.00"))
    url = reverse("admin:strategies_strategy_backtest", args=[night.pk])
    post = strategy_form(night, status="active", version=night.version)
    response = as_owner.post(url, {**post, "_backtest": "1", "backtest_days": "30"})
    assert response.status_code == 302
    assert BacktestRun.objects.filter(strategy=night).exists()


# -- 6. a cap lowered below today's use -------------------------------------------------------


def test_lowering_a_cap_below_todays_use_is_warned_then_shown_full(as_owner, shop):
    live = make_strategy(shop=shop, name="Live", status="active", daily_cap=Decimal("2000.00"))
    make_ledger(strategy=live, consumed="999.91", approved_count=40)
    post = strategy_form(live, daily_cap="500.00", version=live.version)
    html = as_owner.post(change_url(live), post).content.decode()
    assert "Today 999.91 is already used" in html and "no more requests today" in html
    assert as_owner.post(change_url(live), {**post, "atom_confirm": "yes"}).status_code == 302
    # The form says so while it lasts, and the list's bar is full, not 199.98%.
    assert "Today 999.91 is already used" in as_owner.get(change_url(live)).content.decode()
    listing = as_owner.get(LIST).content.decode()
    assert "199.98%" not in listing
    assert "width:100.00%" in listing and ">100.00%<" in listing


# -- 18. the reason for a change --------------------------------------------------------------


def test_the_reason_for_a_change_is_kept_and_shown_in_the_history(as_owner, shop):
    night = make_strategy(shop=shop, name="Night", per_request_cap=Decimal("20.00"))
    post = strategy_form(
        night, name="Night owl", change_reason="renamed for the 11.11 sale", version=night.version
    )
    assert 'name="change_reason"' in as_owner.get(change_url(night)).content.decode()
    assert as_owner.post(change_url(night), post).status_code == 302
    record = Strategy.history.filter(id=night.pk).order_by("-history_id").first()
    assert record.history_change_reason == "renamed for the 11.11 sale"
    assert "renamed for the 11.11 sale" in as_owner.get(history_url(night)).content.decode()


def test_a_viewer_gets_no_reason_field(client, viewer, shop):
    night = make_strategy(shop=shop, name="Night")
    client.force_login(viewer)
    assert 'name="change_reason"' not in client.get(change_url(night)).content.decode()


# -- 4. the sentence in the list and the form; names unique ------------------------------------


def test_the_list_and_the_form_show_each_strategys_sentence(as_owner, shop):
    night = make_strategy(shop=shop, name="Night", window_start=dt.time(22), window_end=dt.time(8))
    make_strategy(shop=shop, name="Day", reasons=["not_received"])
    listing = as_owner.get(LIST).content.decode()
    sentences = re.findall(r'<span class="atom-summary">(.*?)</span>', listing)
    assert len(sentences) == 2 and len(set(sentences)) == 2
    assert any("22:00-08:00" in s for s in sentences)
    assert "22:00-08:00" in as_owner.get(change_url(night)).content.decode()


def test_a_taken_name_is_refused_next_to_the_name_field(as_owner, shop):
    make_strategy(shop=shop, name="Night")
    page = as_owner.post(f"{ADD}?scenario=pre_shipment_refund", form_data(name="Night"))
    assert page.status_code == 200
    html = page.content.decode()
    field = re.search(r'<div class="form-row[^"]*field-name.*?</div>', html, re.S).group(0)
    assert "already has a strategy of this name" in field


# -- 5. precedence between scenarios ------------------------------------------------------------


def test_both_tabs_and_the_form_say_which_scenario_is_tried_first(as_owner, shop):
    no_return = as_owner.get(f"{CHANGELIST}?scenario=post_shipment_no_return").content.decode()
    returns = as_owner.get(f"{CHANGELIST}?scenario=post_shipment_return_refund").content.decode()
    assert "also take “Return and refund” requests" in no_return
    assert "tried first by “After shipment: refund only, no return”" in returns
    for html in (no_return, returns):
        assert html.count("Scenarios are tried in this fixed order") == 1
    form = as_owner.get(f"{ADD}?scenario=post_shipment_return_refund").content.decode()
    risk_box = re.search(r'<div class="atom-risk".*?</div>', form, re.S).group(0)
    assert "without the goods coming back" in risk_box


# -- 1 and 2. the admin import ------------------------------------------------------------------


def upload(client, entries, **extra):
    body = io.BytesIO(json.dumps(entries).encode())
    body.name = "strategies.json"
    return client.post(IMPORT, {"file": body, **extra}, follow=True)


def test_an_import_arrives_inactive_and_says_so(as_owner, shop, other_shop):
    for n in range(3):
        make_strategy(shop=other_shop, name=f"Live {n}", status="active")
    response = upload(as_owner, strategies_export(shop=other_shop))
    html = response.content.decode()
    assert "3 strategies imported into shop-a, all inactive: switch them on after checking." in html
    assert set(Strategy.objects.filter(shop=shop).values_list("status", flat=True)) == {"inactive"}


def test_a_merchant_cannot_keep_the_files_statuses(as_owner, shop, other_shop):
    make_strategy(shop=other_shop, name="Live", status="active")
    assert 'name="keep_status"' not in as_owner.get(IMPORT).content.decode()
    upload(as_owner, strategies_export(shop=other_shop), keep_status="on")
    assert Strategy.objects.get(shop=shop).status == "inactive"


def test_an_operator_restoring_a_backup_keeps_the_statuses(client, shop, other_shop):
    make_strategy(shop=other_shop, name="Live", status="active")
    operator = get_user_model().objects.create_superuser("root", password="pw-1")
    client.force_login(operator)
    upload_url = f"{IMPORT}?shop={shop.pk}"
    body = io.BytesIO(json.dumps(strategies_export(shop=other_shop)).encode())
    body.name = "backup.json"
    client.post(upload_url, {"file": body, "keep_status": "on"})
    assert Strategy.objects.get(shop=shop).status == "active"


def test_the_small_amount_ceiling_holds_after_an_admin_import(as_owner, shop, other_shop):
    strategy_create_from_template(shop=other_shop, per_request_cap=Decimal("15.00"))
    upload(as_owner, strategies_export(shop=other_shop))
    copy = Strategy.objects.get(shop=shop)
    assert copy.template == "small_amount"
    page = as_owner.post(change_url(copy), strategy_form(copy, per_request_cap="500.00"))
    assert "at most 20.00" in page.content.decode()
    assert Strategy.objects.get(pk=copy.pk).per_request_cap == Decimal("15.00")


def test_a_bad_file_imports_nothing_and_says_why(as_owner, shop):
    html = upload(as_owner, [{"name": "X", "scenario": "nope"}]).content.decode()
    assert "entry 0" in html and "scenario" in html
    body = io.BytesIO(b"{not json")
    body.name = "broken.json"
    broken = as_owner.post(IMPORT, {"file": body}).content.decode()
    assert "not valid JSON" in broken
    assert not Strategy.objects.exists()


def test_a_viewer_may_not_import(client, viewer, shop):
    client.force_login(viewer)
    assert client.get(IMPORT).status_code == 403


def test_an_error_to_correct_comes_before_the_confirmation(as_owner, shop):
    small = strategy_create_from_template(shop=shop)
    post = strategy_form(small, status="active", per_request_cap="500.00", version=small.version)
    html = as_owner.post(change_url(small), post).content.decode()
    assert "at most 20.00" in html
    assert 'id="atom-confirm"' not in html and "confirm it" not in html
    assert Strategy.objects.get(pk=small.pk).status == "inactive"
