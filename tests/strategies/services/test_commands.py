"""The command line of API.md: create_shop, export_strategies, import_strategies."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

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
    with translation.override("en"):
        out, _err = run("import_strategies", "--shop", other_shop.code, str(target))
    assert out.strip() == (
        "2 strategies imported into shop-b, all inactive: switch them on after checking."
    )
    copied = Strategy.objects.filter(shop=other_shop).order_by("name")
    assert [(s.name, s.status) for s in copied] == [("One", "inactive"), ("Two", "inactive")]


def test_keep_status_restores_a_backup_as_it_was(shop, other_shop, tmp_path):
    make_strategy(shop=shop, name="Live", status="active")
    target = tmp_path / "backup.json"
    run("export_strategies", "--shop", shop.code, "-o", str(target))
    with translation.override("en"):
        out, _err = run(
            "import_strategies", "--shop", other_shop.code, str(target), "--keep-status"
        )
    assert "1 strategy imported into shop-b, with the status the file gives." in out
    assert Strategy.objects.get(shop=other_shop).status == "active"


def _entry(**fields):
    return {"name": "Fine", "scenario": "post_shipment_refund", **fields}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (json.dumps([_entry(daily_cap=1e30)]), "daily_cap"),
        (
            '[{"name": "Fine", "scenario": "post_shipment_refund", "daily_cap": 1e30}]',
            "daily_cap",
        ),
        (json.dumps([_entry(products=["P" * 65])]), "products.0"),
        (json.dumps([_entry(name="NUL\u0000")]), "name"),
        (json.dumps([_entry(remark="\u0000")]), "remark"),
        (json.dumps([_entry(products=["P\u0000"])]), "products.0"),
        (json.dumps([_entry(**{"na\u0000me": 1})]), "na\\x00me"),
        (json.dumps([_entry(max_hours_since_payment=10**30)]), "max_hours_since_payment"),
        (json.dumps([_entry(valid_until="9999-12-31T23:59:59-08:00")]), "valid_until"),
        (json.dumps([_entry(window={"start": [[[[[[]]]]]], "end": "08:00"})]), "window.start"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
        (
            '[{"name": "Fine", "scenario": "post_shipment_refund", "reasons": '
            + "[" * 5000
            + "]" * 5000
            + "}]",
            "nested too deeply",
        ),
    ],
)
def test_bad_input_is_a_clear_error_never_a_traceback(shop, tmp_path, body, where):
    target = tmp_path / "bad.json"
    target.write_text(body)
    with translation.override("en"), pytest.raises(CommandError) as excinfo:
        run("import_strategies", "--shop", shop.code, str(target))
    message = str(excinfo.value)
    if where != "nested too deeply":
        assert "Nothing was imported:\nentry 0 “" in message and f"”, {where}: " in message
    assert where in message
    assert "Traceback" not in message
    assert not Strategy.objects.exists()


def test_the_errors_are_in_the_interface_language(shop, tmp_path):
    target = tmp_path / "bad.json"
    target.write_text(json.dumps([_entry(name="坏的", daily_cap="abc")]))
    with translation.override("zh-hans"), pytest.raises(CommandError) as excinfo:
        run("import_strategies", "--shop", shop.code, str(target))
    message = str(excinfo.value)
    assert "未导入任何策略" in message and "第 0 项“坏的”，daily_cap" in message
    assert "Nothing was imported" not in message and "decimal" not in message


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
