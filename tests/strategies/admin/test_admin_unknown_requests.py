"""Requests left `unknown` in the admin: a list filter, a notice on every page, and the owners'
"paid" / "not paid" confirmations (audited); the simulated gateway's banner (issue 11.2, 11.7)."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from strategies.models import AfterSaleRequest, DailyLedger, ExecutionConfirmation
from tests.factories import make_decision, make_request

pytestmark = pytest.mark.django_db

LIST = "admin:strategies_aftersalerequest_changelist"


def unknown_request(shop, aftersale_id: str) -> AfterSaleRequest:
    """An approval as the execution leaves it after an ambiguous attempt the platform could not
    settle: `unknown`, its reservation kept."""
    decision = make_decision(request=make_request(shop=shop, aftersale_id=aftersale_id))
    AfterSaleRequest.objects.filter(pk=decision.request_id).update(status="unknown")
    return AfterSaleRequest.objects.get(pk=decision.request_id)


def consumed(request: AfterSaleRequest) -> Decimal:
    return DailyLedger.objects.get(decisions__request=request).consumed


def act(client, action: str, requests, *, confirm: bool):
    data = {"action": action, ACTION_CHECKBOX_NAME: [r.pk for r in requests]}
    if confirm:
        data["post"] = "yes"
    return client.post(reverse(LIST), data, follow=confirm)


def test_the_list_filters_requests_awaiting_confirmation(as_owner, shop):
    unknown_request(shop, "AS-UNKNOWN")
    make_request(shop=shop, aftersale_id="AS-RECEIVED")
    html = as_owner.get(reverse(LIST)).content.decode()
    assert "Awaiting confirmation" in html  # a choice of the status filter
    only = as_owner.get(reverse(LIST), {"status__exact": "unknown"}).content.decode()
    assert "AS-UNKNOWN" in only and "AS-RECEIVED" not in only


def test_staff_see_how_many_requests_wait_on_every_page(as_owner, client, shop, other_owner):
    index = reverse("admin:index")
    assert "atom-awaiting-confirmation" not in as_owner.get(index).content.decode()
    unknown_request(shop, "AS-U1")
    unknown_request(shop, "AS-U2")
    for url in (index, reverse(LIST), reverse("admin:strategies_order_changelist")):
        html = as_owner.get(url).content.decode()
        assert "2 after-sales requests await confirmation" in html
        assert "?status__exact=unknown" in html
    # Another shop's staff are told nothing about this shop.
    client.force_login(other_owner)
    assert "atom-awaiting-confirmation" not in client.get(index).content.decode()


def test_the_notice_is_in_chinese_by_default(owner_client, shop):
    unknown_request(shop, "AS-U1")
    html = owner_client.get(reverse("admin:index")).content.decode()
    assert "待确认" in html or "等待确认" in html


def test_an_owner_confirms_paid_after_seeing_what_it_does(as_owner, owner, shop):
    request = unknown_request(shop, "AS-PAID")
    page = act(as_owner, "confirm_paid", [request], confirm=False)
    assert page.status_code == 200
    assert "AS-PAID" in page.content.decode() and "Yes, they were paid" in page.content.decode()
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "unknown"  # nothing done yet
    done = act(as_owner, "confirm_paid", [request], confirm=True)
    assert "1 request confirmed “Paid”" in done.content.decode()
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "executed"
    assert consumed(request) == Decimal("9.90")
    audit = ExecutionConfirmation.objects.get(decision__request=request)
    assert (audit.verdict, audit.user) == ("paid", owner)
    change = reverse("admin:strategies_aftersalerequest_change", args=[request.pk])
    assert f"Paid, by {owner.username}" in as_owner.get(change).content.decode()


def test_an_owner_confirms_not_paid_and_the_reservation_is_released(as_owner, owner, shop):
    request = unknown_request(shop, "AS-NOT-PAID")
    assert consumed(request) == Decimal("9.90")
    act(as_owner, "confirm_not_paid", [request], confirm=True)
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "failed"
    assert consumed(request) == Decimal("0.00")
    assert ExecutionConfirmation.objects.get(decision__request=request).verdict == "not_paid"
    # The same action again (a double click, a stale page) changes nothing.
    again = act(as_owner, "confirm_not_paid", [request], confirm=True)
    assert "nothing done" in again.content.decode()
    assert consumed(request) == Decimal("0.00")
    assert ExecutionConfirmation.objects.count() == 1


def test_requests_not_awaiting_confirmation_are_never_confirmed(as_owner, shop):
    decision = make_decision(request=make_request(shop=shop, aftersale_id="AS-APPROVED"))
    approved = decision.request
    response = act(as_owner, "confirm_not_paid", [approved], confirm=True)
    assert "nothing done" in response.content.decode()
    assert AfterSaleRequest.objects.get(pk=approved.pk).status == "approved"
    assert consumed(approved) == Decimal("9.90")


def test_a_viewer_cannot_confirm(client, viewer, shop):
    request = unknown_request(shop, "AS-VIEWER")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(viewer)
    html = client.get(reverse(LIST)).content.decode()
    assert "AS-VIEWER" in html and "confirm_paid" not in html
    act(client, "confirm_not_paid", [request], confirm=True)
    act(client, "confirm_paid", [request], confirm=True)
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "unknown"
    assert consumed(request) == Decimal("9.90")
    assert not ExecutionConfirmation.objects.exists()


def test_an_owner_cannot_confirm_another_shops_request(client, other_owner, shop):
    request = unknown_request(shop, "AS-THEIRS")
    client.force_login(other_owner)
    act(client, "confirm_not_paid", [request], confirm=True)
    assert AfterSaleRequest.objects.get(pk=request.pk).status == "unknown"
    assert not ExecutionConfirmation.objects.exists()


# --- the simulated gateway's banner (issue 11.7) ---------------------------------------------


def test_every_page_shows_a_banner_while_the_simulated_gateway_is_on(as_owner, client, settings):
    settings.ATOM_GATEWAY = "simulated"
    for url in (reverse("admin:index"), reverse(LIST)):
        assert "atom-simulated-gateway" in as_owner.get(url).content.decode()
    client.logout()  # the login page too, in the default language
    login = client.get(reverse("admin:login")).content.decode()
    assert "atom-simulated-gateway" in login and "不会产生任何实际退款" in login


def test_no_banner_with_the_http_gateway(as_owner, settings):
    settings.ATOM_GATEWAY = "http"
    settings.ATOM_GATEWAY_URL = "http://127.0.0.1:9"
    assert "atom-simulated-gateway" not in as_owner.get(reverse("admin:index")).content.decode()


def test_one_settled_by_the_platform_s_status_check_says_so(as_owner, shop):
    from django.utils import translation

    from strategies.pipeline.execute import decision_confirm_by_platform

    request = unknown_request(shop, "AS-CHECKED")
    assert decision_confirm_by_platform(decision_id=request.decision.pk, paid=True) is True
    change = reverse("admin:strategies_aftersalerequest_change", args=[request.pk])
    assert "Paid, by the platform&#x27;s status check at" in as_owner.get(change).content.decode()
    with translation.override("zh-hans"):
        said = translation.gettext("%(verdict)s, by the platform's status check at %(at)s")
    assert "由平台状态核对于" in said
