"""``connect_shop`` (PLATFORMS.md "Channels"): credentials sealed at rest, hints only, the
command's options, ``--platform generic`` goes back."""

import io

import pytest
from django.core.management import CommandError, call_command

from strategies.models import Channel, app_key_digest
from tests.factories import make_shop

pytestmark = pytest.mark.django_db

SECRETS = {
    "app_key": "ks-app-0001-a9f2",
    "app_secret": "app-secret-0001-b3c4",
    "sign_secret": "sign-secret-0001-d5e6",
    "message_key": "MDEyMzQ1Njc4OWFiY2RlZg==",
    "access_token": "access-token-0001-f7a8",
    "refresh_token": "refresh-token-0001-c9d0",
}


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("connect_shop", *args, stdout=out)
    return out.getvalue()


def test_kuaishou_credentials_are_sealed_and_shown_only_as_hints():
    shop = make_shop(code="ks1")
    output = run(
        "ks1",
        "--platform=kuaishou",
        f"--app-key={SECRETS['app_key']}",
        f"--app-secret={SECRETS['app_secret']}",
        f"--sign-secret={SECRETS['sign_secret']}",
        f"--message-key={SECRETS['message_key']}",
        "--sign-method=MD5",
        f"--access-token={SECRETS['access_token']}",
        f"--refresh-token={SECRETS['refresh_token']}",
        "--expires-in=172800",
        "--refresh-expires-in=15552000",
        "--open-id=merchant-1",
        "--api-base=http://127.0.0.1:9",
        "--return-address-id=77",
    )
    row = Channel.objects.get(shop=shop)
    assert row.platform == "kuaishou" and row.sign_method == "MD5"
    assert (row.merchant_id, row.api_base, row.return_address_id) == (
        "merchant-1",
        "http://127.0.0.1:9",
        "77",
    )
    stored = " ".join(str(v) for v in Channel.objects.filter(pk=row.pk).values().get().values())
    for name, value in SECRETS.items():
        assert value not in stored, name  # nothing in clear in the row
        assert value not in output
        assert row.secret(name) == value
        assert getattr(row, f"{name}_hint") == f"…{value[-4:]}"
    assert row.app_key_lookup == app_key_digest(SECRETS["app_key"])
    assert "…a9f2" in output
    assert row.access_expires_at is not None and row.refresh_expires_at is not None


def test_missing_credentials_are_refused_and_nothing_is_stored():
    make_shop(code="ks2")
    with pytest.raises(CommandError, match="sign_secret"):
        run("ks2", "--platform=kuaishou", "--app-key=k", "--app-secret=s", "--message-key=m")
    assert not Channel.objects.exists()


def test_douyin_then_generic_goes_back_and_wipes_the_credentials():
    shop = make_shop(code="dy1")
    run("dy1", "--platform=douyin", "--app-key=7000", "--app-secret=dy-secret", "--shop-id=88001")
    row = Channel.objects.get(shop=shop)
    assert (row.platform, row.merchant_id) == ("douyin", "88001")
    assert "generic" in run("dy1", "--platform=generic")
    row.refresh_from_db()
    assert row.platform == "generic"
    assert row.app_secret_sealed == "" and row.app_key_lookup == "" and row.merchant_id == ""


def test_the_open_id_is_for_kuaishou_only():
    make_shop(code="dy2")
    with pytest.raises(CommandError, match="open-id"):
        run("dy2", "--platform=douyin", "--open-id=x")
