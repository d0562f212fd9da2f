"""Douyin's signature v2 and push event-sign, pinned to PLATFORMS.md's vector."""

import hashlib

from strategies.platforms.douyin.signing import event_sign, event_sign_matches, param_json, sign

VECTOR_PARAM = (
    '{"items":[{"aftersale_id":"7000000000000000001","update_time":1700000000}],"type":201}'
)


def test_it_matches_the_vector():
    assert (
        sign(
            app_key="1234567890123456789",
            app_secret="test-secret",
            method="afterSale.operate",
            param_json=VECTOR_PARAM,
            timestamp="1700000000",
        )
        == "e9dfb0b64c28de95b7d3cdc2b5a5e0937b7d58ae6334e64770ebcad2405f1815"
    )


def test_param_json_sorts_keys_at_every_level_and_is_compact():
    param = {
        "type": 201,
        "items": [{"update_time": 1700000000, "aftersale_id": "7000000000000000001"}],
    }
    assert param_json(param) == VECTOR_PARAM


def test_param_json_does_not_escape_html_or_unicode_but_escapes_line_separators_as_go():
    assert param_json({"r": "<a&b> 不想要了 \u2028"}) == '{"r":"<a&b> 不想要了 \\u2028"}'


def test_a_changed_byte_changes_the_signature():
    changed = VECTOR_PARAM.replace("201", "202")
    assert (
        sign(
            app_key="1234567890123456789",
            app_secret="test-secret",
            method="afterSale.operate",
            param_json=changed,
            timestamp="1700000000",
        )
        != "e9dfb0b64c28de95b7d3cdc2b5a5e0937b7d58ae6334e64770ebcad2405f1815"
    )


def test_event_sign_is_md5_of_key_body_secret():
    body = b'[{"tag":"0","msg_id":"","data":"{}"}]'
    expected = hashlib.md5(b"k" + body + b"s").hexdigest()
    assert event_sign(app_key="k", app_secret="s", body=body) == expected
    assert event_sign_matches(app_key="k", app_secret="s", body=body, signature=expected)
    assert not event_sign_matches(app_key="k", app_secret="s", body=body + b" ", signature=expected)
    assert not event_sign_matches(app_key="k", app_secret="other", body=body, signature=expected)
