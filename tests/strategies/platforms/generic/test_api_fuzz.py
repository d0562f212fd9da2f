"""RELIABILITY.md scenario 21: property-based fuzzing of the intake API.

Any signed body gets a 2xx or a 4xx with a clear message, never a 5xx, and a rejected body
leaves no row behind. Deterministic for CI: derandomized, a bounded number of examples, no
deadline (the database sets the pace, not the code under test).
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies.models import AfterSaleRequest, Order, OrderItem, Product
from tests.strategies.platforms.generic.api_client import VALID_PAYLOAD, post_signed

settings.register_profile(
    "intake-ci",
    derandomize=True,
    max_examples=200,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
FUZZ = settings.get_profile("intake-ci")
# Bodies that mostly stop at the JSON parser or one field need fewer examples.
FUZZ_NARROW = settings(FUZZ, max_examples=100)

_ids = itertools.count(1)

odd_strings = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "",
            " ",
            "\u0000",
            "\ud800",
            "NaN",
            "Infinity",
            "-0",
            "1e400",
            "9.999",
            "0.00",
            "1" * 80,
            "９.９０",
            "2026-11-22T10:15:00",
            "2026-11-22T10:15:00+08:00",
            "9999-12-31T23:59:59+14:00",
            "0001-01-01T00:00:00-14:00",
            "refund_only",
            "shipped",
            "\u202e\u0301\U0001f600",
        ]
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 2**31, 2**63, 10**4000]),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_strings,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
    ),
    max_leaves=12,
)

# Every field path of the contract, by its keys from the top.
PATHS: list[tuple[Any, ...]] = [
    *[(key,) for key in VALID_PAYLOAD],
    *[("order", key) for key in VALID_PAYLOAD["order"]],
    *[("order", "items", 0, key) for key in VALID_PAYLOAD["order"]["items"][0]],
    ("order", "items", 0),
    ("order", "tags", 0),
    ("unknown_field",),
]
mutations = st.lists(
    st.tuples(
        st.sampled_from(PATHS),
        st.one_of(st.just("drop"), st.tuples(st.just("set"), json_values)),
    ),
    min_size=1,
    max_size=3,
)


def _mutate(body: dict, path: tuple[Any, ...], action: Any) -> None:
    target: Any = body
    for key in path[:-1]:
        if (isinstance(target, dict) and key in target) or (
            isinstance(target, list) and isinstance(key, int) and len(target) > key
        ):
            target = target[key]
        else:
            return  # an earlier mutation removed the parent
    last = path[-1]
    if isinstance(target, dict):
        if action == "drop":
            target.pop(last, None)
        else:
            target[last] = action[1]
    elif isinstance(target, list) and isinstance(last, int):
        if action == "drop":
            if len(target) > last:
                del target[last]
        elif len(target) > last:
            target[last] = action[1]
        else:
            target.append(action[1])


def _counts() -> tuple[int, int, int, int]:
    return (
        AfterSaleRequest.objects.count(),
        Order.objects.count(),
        OrderItem.objects.count(),
        Product.objects.count(),
    )


def _encode(value: Any) -> bytes:
    try:
        return json.dumps(value).encode("utf-8")
    except ValueError:  # an integer too long to print
        return b'{"amount": 1' + b"0" * 5000 + b"}"


def assert_clear_answer(client, shop, body: bytes) -> int:
    before = _counts()
    response = post_signed(client, shop, body)
    status = response.status_code
    assert status in {200, 202, 400, 409, 413}, (status, body[:500], response.content[:500])
    assert response["Content-Type"] == "application/json"
    answer = response.json()
    if status >= 400:
        if status == 400:
            errors = answer["errors"]
            assert errors and all(
                isinstance(path, str)
                and messages
                and all(isinstance(m, str) and m.strip() for m in messages)
                for path, messages in errors.items()
            ), answer
        else:
            assert isinstance(answer["error"], str) and answer["error"].strip()
        assert _counts() == before, body[:500]
    elif status == 202:
        assert answer["status"] == "received"
        assert _counts()[0] == before[0] + 1
    return status


@FUZZ
@given(value=json_values)
def test_it_answers_any_json_body_clearly(client, shop, value):
    assert_clear_answer(client, shop, _encode(value))


@FUZZ_NARROW
@given(raw=st.binary(max_size=300))
def test_it_answers_any_bytes_clearly(client, shop, raw):
    assert assert_clear_answer(client, shop, raw) == 400


@FUZZ
@given(changes=mutations, fresh_id=st.booleans())
def test_it_answers_any_mutation_of_a_valid_body_clearly(client, shop, changes, fresh_id):
    body = copy.deepcopy(VALID_PAYLOAD)
    if fresh_id:  # mostly new requests; sometimes a retry or a conflict on the example's id
        body["aftersale_id"] = f"AS-FUZZ-{next(_ids)}"
    for path, action in changes:
        _mutate(body, path, action)
    assert_clear_answer(client, shop, _encode(body))


@FUZZ_NARROW
@given(
    text=odd_strings,
    field=st.sampled_from(["aftersale_id", "buyer_id", "order_id", "product_id", "title", "tag"]),
)
def test_it_stores_or_rejects_any_string_in_a_string_field(client, shop, text, field):
    body = copy.deepcopy(VALID_PAYLOAD)
    body["aftersale_id"] = f"AS-TEXT-{next(_ids)}"
    if field in ("aftersale_id", "buyer_id"):
        body[field] = text
    elif field == "order_id":
        body["order"]["order_id"] = text
    elif field == "tag":
        body["order"]["tags"] = [text]
    else:
        body["order"]["items"][0][field] = text
    status = assert_clear_answer(client, shop, _encode(body))
    if status == 202:
        stored = AfterSaleRequest.objects.select_related("order").latest("pk")
        assert stored.payload == body
