"""The command line of API.md: create_shop, export_strategies, import_strategies."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from strategies.models import Shop, Strategy
from tests.factories import make_strategy

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_shop_prints_a_generated_secret(db):
    out, _err = run("create_shop", "demo", "--name", "Demo shop", "--phone", "13800000000")
    secret = out.strip()
    shop = Shop.objects.get(code="demo")
    assert len(secret) >= 40
    assert shop.api_secret == secret
    assert (shop.name, shop.phone, shop.timezone) == ("Demo shop", "13800000000", "Asia/Shanghai")


def test_create_shop_takes_a_given_secret_and_refuses_a_taken_code(db):
    out, _err = run(
        "create_shop", "given", "--name", "G", "--secret", "s" * 40, "--timezone", "Europe/Berlin"
    )
    assert out.strip() == "s" * 40
    with pytest.raises(CommandError, match="code"):
        run("create_shop", "given", "--name", "Again")
    with pytest.raises(CommandError, match="timezone"):
        run("create_shop", "other", "--name", "Other", "--timezone", "Nowhere/Here")


def test_export_then_import_copies_the_strategies(shop, other_shop, tmp_path):
    make_strategy(shop=shop, name="One", per_request_cap="9.90")
    make_strategy(shop=shop, scenario="pre_shipment_refund", name="Two", status="active")
    target = tmp_path / "strategies.json"
    run("export_strategies", "--shop", shop.code, "-o", str(target))
    stdout, _err = run("export_strategies", "--shop", shop.code)
    assert json.loads(stdout) == json.loads(target.read_text())
    assert json.loads(stdout)[1]["per_request_cap"] == "9.90"
    out, _err = run("import_strategies", "--shop", other_shop.code, str(target))
    assert "2" in out
    copied = Strategy.objects.filter(shop=other_shop).order_by("name")
    assert [(s.name, s.status) for s in copied] == [("One", "inactive"), ("Two", "active")]


def test_an_invalid_file_imports_nothing_and_names_the_entry(shop, tmp_path):
    target = tmp_path / "bad.json"
    target.write_text(
        json.dumps(
            [
                {"name": "Fine", "scenario": "post_shipment_refund"},
                {"name": "Broken", "scenario": "post_shipment_refund", "daily_cap": "-5.00"},
            ]
        )
    )
    with pytest.raises(CommandError) as excinfo:
        run("import_strategies", "--shop", shop.code, str(target))
    assert "Broken" in str(excinfo.value) and "daily_cap" in str(excinfo.value)
    assert not Strategy.objects.exists()
    target.write_text("{not json")
    with pytest.raises(CommandError):
        run("import_strategies", "--shop", shop.code, str(target))
    with pytest.raises(CommandError):
        run("export_strategies", "--shop", "no-such-shop")
