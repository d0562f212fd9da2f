"""The demo shop: a shop, its staff, a catalogue and strategies in every scenario.

Idempotent: running it again changes nothing that is already there (the shop keeps its secret,
the strategies keep whatever a person changed since) and only fills what is missing. The daily
caps are small on purpose: the traffic simulator at 5 requests/s drives the pre-shipment
strategy past 95% within about a minute, so the 95% alert shows up during a demo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext, gettext_noop

from strategies.demo.traffic import DEFAULT_CATALOG
from strategies.models import Membership, Product, Scenario, Shop, Strategy, StrategyStatus
from strategies.services.shops import shop_create
from strategies.services.strategies import (
    strategy_create,
    strategy_create_from_template,
    strategy_set_status,
)

DEMO_SHOP_CODE = "demo"
DEMO_SHOP = {
    "name": "ATOM Demo Shop",
    "timezone": "Asia/Shanghai",
    "phone": "+86 138 0013 8000",
    "email": "alerts@demo.example.com",
}
# (username, password, role): role None is the platform operator (a superuser, no shop).
DEMO_LOGINS: tuple[tuple[str, str, str | None], ...] = (
    ("demo", "demo-pass-2026", Membership.Role.OWNER),
    ("viewer", "viewer-pass-2026", Membership.Role.VIEWER),
    ("admin", "admin-pass-2026", None),
)
SMALL_AMOUNT_NAME = gettext_noop("Small-amount automatic refund")

# The second demo shop, connected as a Kuaishou shop to the fake Kuaishou that
# ``simulate_kuaishou`` runs (the demo starts it): its own owner login, one strategy.
KUAISHOU_SHOP_CODE = "demo-ks"
KUAISHOU_SHOP = {"name": "ATOM Demo Kuaishou Shop", "timezone": "Asia/Shanghai"}
KUAISHOU_LOGIN: tuple[str, str, str] = ("kuaishou", "kuaishou-pass-2026", Membership.Role.OWNER)
KUAISHOU_STRATEGY_NAME = gettext_noop("Shipped orders: refunds up to 50 (Kuaishou)")

# In priority order within each scenario. Every scenario has at least one; post-shipment
# refund has two (priority: the small-amount template first); return-and-refund starts with a
# trial strategy, which is logged as "would approve" and then skipped.
DEMO_STRATEGIES: tuple[dict[str, Any], ...] = (
    {
        "scenario": Scenario.TAGGED_REFUND_NO_RETURN,
        "name": gettext_noop("Tagged orders: refund, keep the goods"),
        "status": StrategyStatus.ACTIVE,
        "per_request_cap": Decimal("200.00"),
        "daily_cap": Decimal("800.00"),
    },
    {
        "scenario": Scenario.PRE_SHIPMENT_REFUND,
        "name": gettext_noop("Not shipped yet: refund within 24 h of payment"),
        "status": StrategyStatus.ACTIVE,
        "per_request_cap": Decimal("100.00"),
        "max_hours_since_payment": 24,
        "daily_cap": Decimal("1500.00"),
    },
    {
        "scenario": Scenario.POST_SHIPMENT_NO_RETURN,
        "name": gettext_noop("Lost or wrong parcels: refund, no return"),
        "status": StrategyStatus.ACTIVE,
        "reasons": ["not_received", "wrong_or_missing_item"],
        "per_request_cap": Decimal("30.00"),
        "max_per_buyer_30d": 5,
        "daily_cap": Decimal("2000.00"),
    },
    {
        "scenario": Scenario.POST_SHIPMENT_REFUND,
        "name": SMALL_AMOUNT_NAME,
        "template": "small_amount",
        "status": StrategyStatus.ACTIVE,
    },
    {
        "scenario": Scenario.POST_SHIPMENT_REFUND,
        "name": gettext_noop("Shipped orders: refunds up to 50"),
        "status": StrategyStatus.ACTIVE,
        "per_request_cap": Decimal("50.00"),
        "shipped_max_days": 10,
        "daily_cap": Decimal("1000.00"),
    },
    {
        "scenario": Scenario.POST_SHIPMENT_RETURN_REFUND,
        "name": gettext_noop("Trial: every return up to 500"),
        "status": StrategyStatus.TRIAL,
        "per_request_cap": Decimal("500.00"),
        "daily_cap": Decimal("20000.00"),
    },
    {
        "scenario": Scenario.POST_SHIPMENT_RETURN_REFUND,
        "name": gettext_noop("Quality returns up to 300"),
        "status": StrategyStatus.ACTIVE,
        "reasons": ["quality_issue", "not_as_described", "seven_day_no_reason"],
        "per_request_cap": Decimal("300.00"),
        "daily_cap": Decimal("5000.00"),
        "remark": gettext_noop("Goods come back before the money goes out."),
    },
)


@dataclass
class DemoSeed:
    shop: Shop
    secret: str
    logins: tuple[tuple[str, str, str | None], ...] = DEMO_LOGINS
    created: dict[str, int] = field(default_factory=dict)


def _user(*, username: str, password: str, superuser: bool) -> tuple[User, bool]:
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user, False  # kept as it is, password included (hashing is slow on purpose)
    user = User(username=username, is_staff=True, is_superuser=superuser, is_active=True)
    user.set_password(password)
    user.save()
    return user, True


@transaction.atomic
def demo_seed(*, code: str = DEMO_SHOP_CODE) -> DemoSeed:
    """Creates (or completes) the demo shop; returns it with its API secret and what was new."""
    created = {"shops": 0, "users": 0, "products": 0, "strategies": 0}
    shop = Shop.objects.filter(code=code).first()
    if shop is None:
        shop, _secret = shop_create(code=code, **DEMO_SHOP)
        created["shops"] += 1

    for username, password, role in DEMO_LOGINS:
        user, new = _user(username=username, password=password, superuser=role is None)
        created["users"] += int(new)
        if role is not None:
            Membership.objects.update_or_create(user=user, defaults={"shop": shop, "role": role})

    for item in DEFAULT_CATALOG:
        _product, new = Product.objects.get_or_create(
            shop=shop, product_id=item.product_id, defaults={"title": item.title}
        )
        created["products"] += int(new)

    for spec in DEMO_STRATEGIES:
        fields = dict(spec)
        scenario, status = fields.pop("scenario"), fields.pop("status")
        # Named in the interface language (LANGUAGE_CODE, Chinese by default): the names reach
        # the merchant's SMS and e-mails. Found again under either name, so a second run in
        # another language adds nothing.
        source = fields["name"]
        name = fields["name"] = gettext(source)
        if "remark" in fields:
            fields["remark"] = gettext(fields["remark"])
        if Strategy.objects.filter(shop=shop, scenario=scenario, name__in={source, name}).exists():
            continue
        if fields.pop("template", None):
            strategy = strategy_create_from_template(shop=shop, name=name)
        else:
            strategy = strategy_create(shop=shop, scenario=scenario, **fields)
        strategy_set_status(strategies=[strategy], status=status)
        created["strategies"] += 1
    shop.refresh_from_db()
    return DemoSeed(shop=shop, secret=shop.api_secret, created=created)


@transaction.atomic
def kuaishou_shop_seed(*, code: str = KUAISHOU_SHOP_CODE, login: bool = True) -> Shop:
    """Creates (or completes) the demo's Kuaishou shop: the shop, one active strategy for the
    refund-only requests on shipped orders the fake pushes, and (``login``) its owner's login.
    Connecting it to a fake Kuaishou is ``simulate_kuaishou``'s (the fake's keys are new on
    every run)."""
    shop = Shop.objects.filter(code=code).first()
    if shop is None:
        shop, _secret = shop_create(code=code, **KUAISHOU_SHOP)
    if not Strategy.objects.filter(shop=shop).exists():
        strategy = strategy_create(
            shop=shop,
            scenario=Scenario.POST_SHIPMENT_REFUND,
            name=gettext(KUAISHOU_STRATEGY_NAME),
            per_request_cap=Decimal("50.00"),
            daily_cap=Decimal("5000.00"),
        )
        strategy_set_status(strategies=[strategy], status=StrategyStatus.ACTIVE)
    if login:
        username, password, role = KUAISHOU_LOGIN
        user, _new = _user(username=username, password=password, superuser=False)
        Membership.objects.update_or_create(user=user, defaults={"shop": shop, "role": role})
    return shop


def role_label(role: str) -> str:
    """A membership role as the interface names it (owner → 主账号), for the demo's banners."""
    roles = Membership.Role
    return str(roles(role).label) if role in roles.values else role


def connect_to_fake_kuaishou(shop: Shop, fake: Any, **changes: Any) -> None:
    """Connects ``shop`` to a running ``FakeKuaishou`` with a fresh authorisation from it (the
    demo's Kuaishou shop, bench/pipeline's Kuaishou workload, the channel tests); ``changes``
    override single credentials."""
    from strategies.services.channels import Credentials, connect_shop

    access, refresh = fake.issue_tokens()
    fields = {
        "app_key": fake.app_key,
        "app_secret": fake.app_secret,
        "sign_secret": fake.sign_secret,
        "message_key": fake.message_key,
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": fake.access_ttl,
        "refresh_expires_in": fake.refresh_ttl,
        "merchant_id": fake.open_id,
        "api_base": fake.url,
        **changes,
    }
    connect_shop(shop=shop, platform="kuaishou", credentials=Credentials(**fields))
