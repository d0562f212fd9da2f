"""The strategy admin through Django's test client, as a shop owner and as a viewer."""

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from strategies.models import DailyLedger, Decision, Strategy
from strategies.selectors import shop_today
from strategies.services.strategies import strategy_update
from tests.factories import make_membership, make_product, make_strategy

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:strategies_strategy_changelist")
ADD = reverse("admin:strategies_strategy_add")
TEMPLATE = reverse("admin:strategies_strategy_template")


def change_url(strategy):
    return reverse("admin:strategies_strategy_change", args=[strategy.pk])


@pytest.fixture
def en(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


@pytest.fixture
def as_owner(en, owner):
    en.force_login(owner)
    return en


@pytest.fixture
def as_viewer(en, viewer):
    en.force_login(viewer)
    return en


def form_data(**overrides):
    data = {
        "name": "Small refunds",
        "remark": "",
        "status": "inactive",
        "valid_from_0": "",
        "valid_from_1": "",
        "valid_until_0": "",
        "valid_until_1": "",
        "window_start": "",
        "window_end": "",
        "covers_shipped": "on",
        "shipped_min_days": "",
        "shipped_max_days": "",
        "covers_received": "on",
        "received_min_days": "",
        "received_max_days": "",
        "daily_cap": "50000.00",
        "per_request_cap": "20.00",
        "max_hours_since_payment": "",
        "risk_control": "on",
        "max_per_buyer_30d": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_the_list_opens_on_the_first_scenario_with_strategies(as_owner, shop):
    make_strategy(shop=shop, scenario="post_shipment_refund", name="Only one")
    response = as_owner.get(CHANGELIST)
    assert response.status_code == 302
    assert "scenario=post_shipment_no_return" not in response["Location"]
    assert "scenario=post_shipment_refund" in response["Location"]
    page = as_owner.get(response["Location"])
    assert page.status_code == 200
    assert "Only one" in page.content.decode()


def test_the_list_shows_one_scenario_with_tabs_badges_and_consumption(as_owner, shop):
    a = make_strategy(shop=shop, name="Busy", status="active", daily_cap=Decimal("1000.00"))
    make_strategy(shop=shop, name="Calm", status="trial")
    make_strategy(shop=shop, scenario="pre_shipment_refund", name="Elsewhere")
    DailyLedger.objects.create(
        shop=shop, strategy=a, day=shop_today(shop=shop), consumed=Decimal("950.00")
    )
    html = as_owner.get(CHANGELIST, {"scenario": "post_shipment_refund"}).content.decode()
    assert "Busy" in html and "Calm" in html
    assert "Elsewhere" not in html
    assert "95.00%" in html and "atom-warning" in html
    assert "#d18b00" in html  # the trial badge
    assert "atom-tabs" in html
    assert "scenario=pre_shipment_refund" in html
    assert 'class="drag handle"' in html


def test_the_list_does_not_grow_queries_with_rows(as_owner, shop, django_assert_max_num_queries):
    make_strategy(shop=shop)
    url = f"{CHANGELIST}?scenario=post_shipment_refund"
    as_owner.get(url)  # warm the session and content types
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert as_owner.get(url).status_code == 200
    for _ in range(9):
        make_strategy(shop=shop)
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = as_owner.get(url)
    assert response.content.decode().count('class="drag handle"') == 10
    assert len(one.captured_queries) <= 12


def test_an_owner_adds_a_strategy_at_the_end_of_its_scenario(as_owner, shop):
    product = make_product(shop=shop, product_id="P1001")
    make_strategy(shop=shop)
    response = as_owner.post(
        f"{ADD}?scenario=post_shipment_refund",
        form_data(
            products=[product.pk],
            reasons=["no_longer_needed", "not_received"],
            window_start="22:00",
            window_end="08:00",
            shipped_max_days="7",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    strategy = Strategy.objects.get(name="Small refunds")
    assert strategy.scenario == "post_shipment_refund"
    assert strategy.position == 2
    assert strategy.status == "inactive"
    assert strategy.window_start == dt.time(22) and strategy.window_end == dt.time(8)
    assert strategy.reasons == ["no_longer_needed", "not_received"]
    assert list(strategy.products.all()) == [product]
    assert strategy.shop == shop
    assert strategy.history.first().history_user.username == "owner-a"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"per_request_cap": "100.01", "daily_cap": "100.00"}, "must not exceed the daily"),
        ({"window_start": "08:00", "window_end": "08:00"}, "must differ from its start"),
        ({"window_start": "08:00"}, "Give both the start and the end"),
        ({"shipped_min_days": "5", "shipped_max_days": "2"}, "must not be below the minimum"),
        (
            {
                "valid_from_0": "2026-12-01",
                "valid_from_1": "00:00",
                "valid_until_0": "2026-11-01",
                "valid_until_1": "00:00",
            },
            "must be after its start",
        ),
        ({"daily_cap": "0"}, "must be above zero"),
        ({"daily_cap": "abc"}, "Enter a number"),
        ({"per_request_cap": "1.001"}, "decimal places"),
        ({"reasons": ["bogus"]}, "Select a valid choice"),
        ({"covers_shipped": None, "covers_received": None}, "at least one order status"),
        ({"name": ""}, "This field is required"),
    ],
)
def test_invalid_input_is_a_form_error_and_stores_nothing(as_owner, shop, overrides, message):
    response = as_owner.post(f"{ADD}?scenario=post_shipment_refund", form_data(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'class="errorlist' in response.content.decode()
    assert not Strategy.objects.exists()


def test_an_eleventh_strategy_is_a_form_error(as_owner, shop):
    for _ in range(10):
        make_strategy(shop=shop)
    response = as_owner.post(f"{ADD}?scenario=post_shipment_refund", form_data())
    assert response.status_code == 200
    assert "already holds 10 strategies" in response.content.decode()
    assert Strategy.objects.count() == 10


def test_the_add_form_hides_what_the_scenario_does_not_use_and_warns(as_owner, shop):
    tagged = as_owner.get(f"{ADD}?scenario=tagged_refund_no_return").content.decode()
    assert 'name="products"' not in tagged
    assert 'name="covers_shipped"' not in tagged  # API.md: order_status ignored for tagged
    pre = as_owner.get(f"{ADD}?scenario=pre_shipment_refund").content.decode()
    assert 'name="covers_shipped"' not in pre
    assert 'name="products"' in pre
    assert "Refunding before shipment" in pre
    assert "not the parcel&#x27;s real state" in pre or "not the parcel's real state" in pre
    assert "No per-request cap is set" in pre
    no_return = as_owner.get(f"{ADD}?scenario=post_shipment_no_return").content.decode()
    assert "loses both the money and the goods" in no_return
    assert "Refunding before shipment" not in no_return


def test_an_add_without_scenario_shows_the_scenario_picker(as_owner, shop):
    # Never silently the first scenario (issue 12, 11; see test_scenario_picker.py).
    response = as_owner.get(ADD)
    assert response.status_code == 200
    assert response.templates[0].name == "admin/strategies/strategy/scenario_picker.html"


def test_a_missing_per_request_cap_is_warned_after_save(as_owner, shop):
    response = as_owner.post(
        f"{ADD}?scenario=post_shipment_refund", form_data(per_request_cap=""), follow=True
    )
    assert "No per-request cap is set" in response.content.decode()
    assert Strategy.objects.get().per_request_cap is None


def test_an_owner_edits_a_strategy_and_the_history_shows_it(as_owner, shop):
    strategy = make_strategy(shop=shop, name="Before", per_request_cap=Decimal("5.00"))
    response = as_owner.post(change_url(strategy), form_data(name="After", daily_cap="800.00"))
    assert response.status_code == 302
    strategy.refresh_from_db()
    assert (strategy.name, strategy.daily_cap, strategy.position) == (
        "After",
        Decimal("800.00"),
        1,
    )
    history = as_owner.get(reverse("admin:strategies_strategy_history", args=[strategy.pk]))
    html = history.content.decode()
    assert history.status_code == 200
    assert "owner-a" in html
    assert "Before" in html and "After" in html
    record = strategy.history.first()
    detail = as_owner.get(
        reverse("admin:strategies_strategy_simple_history", args=[strategy.pk, record.history_id])
    )
    assert detail.status_code == 200
    # Past versions are shown, not restored by hand.
    revert = as_owner.post(
        reverse("admin:strategies_strategy_simple_history", args=[strategy.pk, record.history_id]),
        form_data(name="Reverted"),
    )
    assert revert.status_code == 403
    strategy.refresh_from_db()
    assert strategy.name == "After"


def test_the_small_amount_strategy_keeps_its_20_limit_in_the_form(as_owner, shop):
    from strategies.services.strategies import strategy_create_from_template

    strategy = strategy_create_from_template(shop=shop)
    response = as_owner.post(
        change_url(strategy), form_data(name=strategy.name, per_request_cap="20.01")
    )
    assert response.status_code == 200
    assert "at most 20.00" in response.content.decode()
    strategy.refresh_from_db()
    assert strategy.per_request_cap == Decimal("10.00")


def test_status_actions_switch_strategies(as_owner, shop):
    a, b = make_strategy(shop=shop), make_strategy(shop=shop)
    url = f"{CHANGELIST}?scenario=post_shipment_refund"
    for action, status in (("make_active", "active"), ("make_trial", "trial")):
        response = as_owner.post(
            url,
            {"action": action, "_selected_action": [a.pk, b.pk], "index": 0, "atom_confirm": "yes"},
        )
        assert response.status_code == 302
        assert set(Strategy.objects.values_list("status", flat=True)) == {status}
    as_owner.post(url, {"action": "make_inactive", "_selected_action": [a.pk], "index": 0})
    assert Strategy.objects.get(pk=a.pk).status == "inactive"
    assert Strategy.objects.get(pk=b.pk).status == "trial"


def test_template_creation_makes_the_small_amount_strategy(as_owner, shop):
    page = as_owner.get(TEMPLATE)
    assert page.status_code == 200
    assert 'value="10.00"' in page.content.decode()
    response = as_owner.post(TEMPLATE, {"per_request_cap": "10.00"})
    strategy = Strategy.objects.get()
    assert response.status_code == 302
    assert response["Location"] == change_url(strategy)
    assert strategy.template == "small_amount"
    assert strategy.per_request_cap == Decimal("10.00")
    assert strategy.daily_cap == Decimal("100000.00")
    assert strategy.status == "inactive"
    assert strategy.risk_control


def test_template_creation_refuses_more_than_20(as_owner, shop):
    response = as_owner.post(TEMPLATE, {"per_request_cap": "20.01"})
    assert response.status_code == 200
    assert "less than or equal to 20.00" in response.content.decode()
    assert not Strategy.objects.exists()


def test_template_creation_refuses_an_eleventh(as_owner, shop):
    for _ in range(10):
        make_strategy(shop=shop)
    response = as_owner.post(TEMPLATE, {"per_request_cap": "10.00"})
    assert response.status_code == 200
    assert "at most 10 strategies" in response.content.decode()
    assert Strategy.objects.count() == 10


def test_deleting_closes_the_gap(as_owner, shop):
    a, b, c = (make_strategy(shop=shop) for _ in range(3))
    response = as_owner.post(
        reverse("admin:strategies_strategy_delete", args=[b.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert list(Strategy.objects.order_by("position").values_list("id", "position")) == [
        (a.id, 1),
        (c.id, 2),
    ]


def test_an_owner_gets_the_drag_column_and_its_hint(as_owner, shop):
    make_strategy(shop=shop, name="Drag me")
    html = as_owner.get(f"{CHANGELIST}?scenario=post_shipment_refund").content.decode()
    assert '<td class="field-_reorder_' in html
    assert "Drag a row by its handle" in html


def test_a_viewer_reads_everything_and_changes_nothing(as_viewer, shop):
    strategy = make_strategy(shop=shop, name="Read me")
    html = as_viewer.get(f"{CHANGELIST}?scenario=post_shipment_refund").content.decode()
    assert "Read me" in html
    assert 'class="drag handle"' not in html
    assert '<td class="field-_reorder_' not in html  # no drag column at all
    assert "Drag a row by its handle" not in html
    assert "Create from template" not in html
    assert 'name="action"' not in html
    page = as_viewer.get(change_url(strategy))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert as_viewer.post(change_url(strategy), form_data(name="Changed")).status_code == 403
    assert as_viewer.get(f"{ADD}?scenario=post_shipment_refund").status_code == 403
    assert as_viewer.post(TEMPLATE, {"per_request_cap": "10.00"}).status_code == 403
    assert (
        as_viewer.post(
            reverse("admin:strategies_strategy_delete", args=[strategy.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    as_viewer.post(
        f"{CHANGELIST}?scenario=post_shipment_refund",
        {"action": "make_active", "_selected_action": [strategy.pk], "index": 0},
    )
    strategy.refresh_from_db()
    assert (strategy.name, strategy.status) == ("Read me", "inactive")
    history = as_viewer.get(reverse("admin:strategies_strategy_history", args=[strategy.pk]))
    assert history.status_code == 200


def test_an_operator_sees_every_shop_with_a_shop_filter(en, shop, other_shop):
    from django.contrib.auth import get_user_model

    admin_user = get_user_model().objects.create_superuser("root", password="pw-for-tests-1")
    en.force_login(admin_user)
    make_strategy(shop=shop, name="From A")
    make_strategy(shop=other_shop, name="From B")
    html = en.get(f"{CHANGELIST}?scenario=post_shipment_refund").content.decode()
    assert "From A" in html and "From B" in html
    assert 'class="drag handle"' not in html  # two shops shown: no dragging
    assert "Choose a shop in the filter" in html
    html = en.get(
        f"{CHANGELIST}?scenario=post_shipment_refund&shop={other_shop.pk}"
    ).content.decode()
    assert "From B" in html and "From A" not in html
    assert 'class="drag handle"' in html
    response = en.post(
        f"{ADD}?scenario=post_shipment_refund&shop={other_shop.pk}", form_data(name="Op made")
    )
    assert response.status_code == 302
    assert Strategy.objects.get(name="Op made").shop == other_shop


def test_exports_the_shops_strategies(as_viewer, shop):
    make_strategy(shop=shop, name="Exported", daily_cap=Decimal("100000.00"))
    response = as_viewer.get(reverse("admin:strategies_strategy_export"))
    assert response.status_code == 200
    assert response.json()[0]["name"] == "Exported"
    assert response.json()[0]["daily_cap"] == "100000.00"


def test_owner_of_another_shop_is_not_an_owner_here(en, shop, other_shop):
    outsider = make_membership(shop=other_shop, username="someone-b", role="owner").user
    en.force_login(outsider)
    strategy = make_strategy(shop=shop)
    assert en.get(change_url(strategy)).status_code == 404
    strategy_update(strategy=strategy, name="still mine")


def test_a_refusal_after_the_form_passed_keeps_what_was_typed(as_owner, shop, monkeypatch):
    # Nine strategies: the form lets the tenth through; then another member takes the tenth slot
    # a moment before the service stores this one, and the service refuses it.
    import strategies.admin.strategy

    for _ in range(9):
        make_strategy(shop=shop)
    real_create = strategies.admin.strategy.strategy_create

    def create_after_someone_else(**kwargs):
        make_strategy(shop=shop, name="Added by a colleague")
        return real_create(**kwargs)

    monkeypatch.setattr(strategies.admin.strategy, "strategy_create", create_after_someone_else)
    response = as_owner.post(
        f"{ADD}?scenario=post_shipment_refund",
        form_data(name="Typed with care", remark="Long note", daily_cap="1234.56"),
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "A scenario holds at most 10 strategies; delete one first." in html
    assert 'class="errorlist' in html
    assert 'value="Typed with care"' in html
    assert 'value="Long note"' in html and 'value="1234.56"' in html
    # Nothing was stored (the simulated colleague's add ran in this request's transaction).
    assert Strategy.objects.filter(shop=shop).count() == 9
    assert not Strategy.objects.filter(name="Typed with care").exists()


# -- a form opened before a colleague's change (RELIABILITY.md 27) ---------------------------


def opened_version(html: str) -> str:
    import re

    return re.search(r'name="version" value="(\d+)"', html).group(1)


def test_a_stale_form_cannot_switch_a_strategy_back_on(as_owner, shop):
    colleague = make_membership(shop=shop, username="colleague-a", role="owner").user
    strategy = make_strategy(shop=shop, name="Night", status="active", per_request_cap="20.00")
    page = as_owner.get(change_url(strategy)).content.decode()
    version = opened_version(page)
    assert 'type="hidden" name="version"' in page

    # Meanwhile a colleague deactivates it from the list.
    from django.test import Client

    other = Client()
    other.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    other.force_login(colleague)
    other.post(
        f"{CHANGELIST}?scenario=post_shipment_refund",
        {"action": "make_inactive", "_selected_action": [strategy.pk], "index": 0},
    )
    assert Strategy.objects.get(pk=strategy.pk).status == "inactive"

    # The stale form (still saying "active") is saved with a changed remark.
    response = as_owner.post(
        change_url(strategy),
        form_data(name="Night", status="active", remark="typed with care", version=version),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "nothing was saved" in html
    assert "colleague-a changed status from Active to Inactive at" in html
    assert "Changed meanwhile by colleague-a" in html
    assert 'value="typed with care"' in html  # what was typed is kept
    stored = Strategy.objects.get(pk=strategy.pk)
    assert (stored.status, stored.remark) == ("inactive", "")
    assert [h.status for h in stored.history.all()[:2]] == ["inactive", "active"]

    # The page now carries the current version: saving again, having seen it, is deliberate.
    assert opened_version(html) == str(stored.version)
    again = as_owner.post(
        change_url(strategy),
        form_data(
            name="Night", status="inactive", remark="typed with care", version=opened_version(html)
        ),
    )
    assert again.status_code == 302
    assert Strategy.objects.get(pk=strategy.pk).remark == "typed with care"


def test_a_drag_makes_an_open_form_stale_too(as_owner, shop):
    a, b = make_strategy(shop=shop, name="A"), make_strategy(shop=shop, name="B")
    version = opened_version(as_owner.get(change_url(a)).content.decode())
    import json

    moved = as_owner.post(
        f"{reverse('admin:strategies_strategy_sortable_update')}?scenario=post_shipment_refund",
        json.dumps({"orderedIds": [b.pk, a.pk]}),
        content_type="application/json",
    )
    assert moved.status_code == 200
    response = as_owner.post(change_url(a), form_data(name="A renamed", version=version))
    assert response.status_code == 200
    assert "changed priority from 1 to 2" in response.content.decode()
    assert Strategy.objects.get(pk=a.pk).name == "A"


# -- validity dates (RELIABILITY.md 28) -----------------------------------------------------


@pytest.mark.parametrize(
    ("field", "day", "time"),
    [("valid_until", "9999-12-31", "23:59:59"), ("valid_from", "0001-01-01", "00:00")],
)
def test_a_validity_date_outside_2000_2099_is_a_form_error(en, field, day, time):
    from tests.factories import make_shop

    la = make_shop(code="la", timezone="America/Los_Angeles")
    en.force_login(make_membership(shop=la, username="la-owner", role="owner").user)
    response = en.post(
        f"{ADD}?scenario=post_shipment_refund", form_data(**{f"{field}_0": day, f"{field}_1": time})
    )
    assert response.status_code == 200
    assert "Give a date within 2000-01-01 and 2099-12-31 (shop time)." in response.content.decode()
    assert not Strategy.objects.exists()


# -- deleting archives what decided (issue 11.6) ---------------------------------------------


def test_an_owner_deletes_a_strategy_that_alerted_and_it_is_archived(as_owner, shop):
    from notifications.models import Alert, Notice
    from notifications.services import alerts_check_ledger
    from tests.factories import make_decision, make_request

    strategy = make_strategy(shop=shop, name="Alerted", status="active", daily_cap="10.00")
    decision = make_decision(request=make_request(shop=shop, amount="9.90"), strategy=strategy)
    alerts_check_ledger(ledger_id=decision.ledger_id)
    delete_url = reverse("admin:strategies_strategy_delete", args=[strategy.pk])

    confirm = as_owner.get(delete_url).content.decode()
    assert "archived if it has decided requests" in confirm
    assert "protected" not in confirm.lower() and 'type="submit"' in confirm
    response = as_owner.post(delete_url, {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert "it was archived" in response.content.decode()
    assert not Strategy.objects.filter(pk=strategy.pk).exists()
    assert Alert.objects.count() == Notice.objects.count() == 1
    assert Decision.objects.get().strategy_id == strategy.pk
    # Gone from the list and the change page; its history is still there.
    assert (
        "Alerted"
        not in as_owner.get(f"{CHANGELIST}?scenario=post_shipment_refund").content.decode()
    )
    assert as_owner.get(change_url(strategy)).status_code == 404
    history = as_owner.get(reverse("admin:strategies_strategy_history", args=[strategy.pk]))
    assert history.status_code == 200 and "Alerted" in history.content.decode()


def test_the_bulk_delete_archives_the_used_and_removes_the_unused(as_owner, shop):
    from tests.factories import make_decision, make_request

    used, unused = make_strategy(shop=shop, name="Used"), make_strategy(shop=shop, name="Unused")
    make_decision(request=make_request(shop=shop), strategy=used)
    response = as_owner.post(
        f"{CHANGELIST}?scenario=post_shipment_refund",
        {"action": "delete_selected", "_selected_action": [used.pk, unused.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert "“Used” had decided requests, so it was archived" in response.content.decode()
    assert list(Strategy.all_objects.values_list("name", flat=True)) == ["Used"]
    assert not Strategy.objects.exists()


# -- bad input at the doors (issue 11.13, 12.17) ---------------------------------------------


def test_deeply_nested_json_at_the_reorder_endpoint_is_a_400(as_owner, shop):
    make_strategy(shop=shop)
    url = f"{reverse('admin:strategies_strategy_sortable_update')}?scenario=post_shipment_refund"
    body = "[" * 100_000 + "]" * 100_000
    response = as_owner.post(url, body, content_type="application/json")
    assert response.status_code == 400
    assert response.content.decode() == "The reorder request is not readable JSON."


def test_the_status_action_says_one_strategy_or_several(as_owner, shop):
    a, b = make_strategy(shop=shop), make_strategy(shop=shop)
    url = f"{CHANGELIST}?scenario=post_shipment_refund"
    one = as_owner.post(
        url,
        {"action": "make_active", "_selected_action": [a.pk], "index": 0, "atom_confirm": "yes"},
        follow=True,
    )
    assert "1 strategy set to “Active”." in one.content.decode()
    two = as_owner.post(
        url, {"action": "make_trial", "_selected_action": [a.pk, b.pk], "index": 0}, follow=True
    )
    assert "2 strategies set to “Trial run”." in two.content.decode()
