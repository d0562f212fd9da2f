"""RELIABILITY.md scenario 31 (second half): a rotated shop secret still signs during the grace
period only; and a known and an unknown shop cost the API the same work."""

from __future__ import annotations

import contextlib
import statistics
import time

import pytest

from strategies.models import AfterSaleRequest
from strategies.platforms.generic import auth
from strategies.platforms.generic.auth import SignatureRejected, shop_for_signed_request
from strategies.platforms.generic.signing import signed_headers
from strategies.services.shops import shop_secret_rotate
from tests.factories import make_shop
from tests.strategies.platforms.generic.api_client import encode, payload, post_signed


def check(shop, secret: str, *, now: float, timestamp: int | None = None):
    """``shop_for_signed_request`` on a POST signed with ``secret`` at ``timestamp``."""
    body = b'{"x": 1}'
    headers = signed_headers(
        shop_code=shop.code, secret=secret, body=body, timestamp=timestamp or int(now)
    )
    return shop_for_signed_request(
        shop_code=headers["X-Atom-Shop"],
        timestamp=headers["X-Atom-Timestamp"],
        signature=headers["X-Atom-Signature"],
        method="POST",
        path="/api/v1/aftersales",
        body=body,
        now=now,
    )


def test_the_old_secret_signs_during_the_grace_period_only(db):
    shop = make_shop(code="rot")
    old = shop.api_secret
    new = shop_secret_rotate(shop=shop, grace_seconds=3600)
    until = shop.api_secret_previous_until.timestamp()

    for moment in (time.time(), until - 3599, until - 1):
        assert check(shop, new, now=moment) == shop
        assert check(shop, old, now=moment) == shop
    for later in (until, until + 1, until + 10 * 86400):
        with pytest.raises(SignatureRejected):
            check(shop, old, now=later)
        assert check(shop, new, now=later) == shop


def test_without_grace_the_old_secret_stops_at_once(db):
    shop = make_shop(code="rot")
    old = shop.api_secret
    new = shop_secret_rotate(shop=shop, grace_seconds=0)
    with pytest.raises(SignatureRejected):
        check(shop, old, now=time.time())
    assert check(shop, new, now=time.time()) == shop


def test_a_second_rotation_ends_the_first_ones_grace(db):
    shop = make_shop(code="rot")
    first = shop.api_secret
    second = shop_secret_rotate(shop=shop, grace_seconds=3600)
    third = shop_secret_rotate(shop=shop, grace_seconds=3600)
    now = time.time()
    with pytest.raises(SignatureRejected):
        check(shop, first, now=now)
    assert check(shop, second, now=now) == shop
    assert check(shop, third, now=now) == shop


def test_a_rotated_shop_over_http(client, shop, monkeypatch):
    old = shop.api_secret
    new = shop_secret_rotate(shop=shop, grace_seconds=60)
    assert post_signed(client, shop, payload(aftersale_id="AS-NEW"), secret=new).status_code == 202
    assert post_signed(client, shop, payload(aftersale_id="AS-OLD"), secret=old).status_code == 202
    # Two minutes later: the old secret is refused, the new one still works.
    later = time.time() + 120
    monkeypatch.setattr(auth.time, "time", lambda: later)
    body = encode(payload(aftersale_id="AS-LATE"))
    refused = post_signed(client, shop, body, secret=old, timestamp=int(later))
    assert refused.status_code == 401
    assert post_signed(client, shop, body, secret=new, timestamp=int(later)).status_code == 202
    assert set(AfterSaleRequest.objects.values_list("aftersale_id", flat=True)) == {
        "AS-NEW",
        "AS-OLD",
        "AS-LATE",
    }


def test_secrets_opened_before_a_rotation_do_not_outlive_it(db):
    # Opened (and remembered) before the rotation: the new secret signs at once, the old one
    # within its grace only, and not at all after a rotation without grace.
    shop = make_shop(code="rot")
    old = shop.api_secret
    assert check(shop, old, now=time.time()) == shop
    new = shop_secret_rotate(shop=shop, grace_seconds=3600)
    now = time.time()
    assert check(shop, new, now=now) == shop
    assert check(shop, old, now=now) == shop
    with pytest.raises(SignatureRejected):
        check(shop, old, now=now + 3601)
    newest = shop_secret_rotate(shop=shop, grace_seconds=0)
    for secret in (old, new):
        with pytest.raises(SignatureRejected):
            check(shop, secret, now=time.time())
    assert check(shop, newest, now=time.time()) == shop


def test_a_signed_request_decrypts_no_secret_once_they_were_opened(db, monkeypatch):
    # The two sealed secrets are opened per request (the same work for every shop), but each
    # is decrypted once per process: then a known and an unknown shop both cost two HMACs.
    from strategies import encryption

    decrypted: list[str] = []
    uncached = encryption.secret_open_uncached

    def counting(sealed):
        decrypted.append(sealed)
        return uncached(sealed)

    monkeypatch.setattr(encryption, "secret_open_uncached", counting)
    encryption._secret_open_cached.cache_clear()
    known = make_shop(code="known")
    rotated = make_shop(code="rotated")
    shop_secret_rotate(shop=rotated, grace_seconds=3600)
    decrypted.clear()
    for code in ("known", "rotated", "nobody"):
        _attempt(code, "w" * 43)
    # Each once: the dummy, the known shop's secret, the rotated shop's current and previous.
    assert len(decrypted) == len(set(decrypted)) == 4
    decrypted.clear()
    for code in ("known", "rotated", "nobody", "known"):
        _attempt(code, "w" * 43)
    assert decrypted == []
    assert check(known, known.api_secret, now=time.time()) == known
    encryption._secret_open_cached.cache_clear()


# --- the same work for a known and an unknown shop ---------------------------------------------


@pytest.fixture
def work(monkeypatch):
    """Counts the secrets opened and the signatures compared per call (public functions)."""
    counts = {"opened": 0, "compared": 0}
    opened, compared = auth.secret_open, auth.signature_matches

    def counting_open(sealed):
        counts["opened"] += 1
        return opened(sealed)

    def counting_compare(**kwargs):
        counts["compared"] += 1
        return compared(**kwargs)

    monkeypatch.setattr(auth, "secret_open", counting_open)
    monkeypatch.setattr(auth, "signature_matches", counting_compare)
    return counts


def _attempt(code: str, secret: str) -> None:
    headers = signed_headers(shop_code=code, secret=secret, body=b"{}")
    with contextlib.suppress(SignatureRejected):
        shop_for_signed_request(
            shop_code=code,
            timestamp=headers["X-Atom-Timestamp"],
            signature=headers["X-Atom-Signature"],
            method="POST",
            path="/api/v1/aftersales",
            body=b"{}",
        )


def test_known_and_unknown_shops_do_the_same_work(db, work, django_assert_num_queries):
    plain = make_shop(code="plain")
    rotated = make_shop(code="rotated")
    shop_secret_rotate(shop=rotated, grace_seconds=3600)
    for code, secret in (
        ("plain", plain.api_secret),  # accepted
        ("plain", "w" * 43),  # wrong signature
        ("rotated", "w" * 43),  # wrong signature, mid-rotation
        ("nobody", "w" * 43),  # unknown shop
    ):
        work.update(opened=0, compared=0)
        with django_assert_num_queries(1):
            _attempt(code, secret)
        assert work == {"opened": 2, "compared": 2}, code


def test_known_and_unknown_shops_take_about_the_same_time(db):
    # The work is the same (above); this catches a gross short cut, such as an unknown shop
    # answered without its database lookup. Interleaved, median of many: robust to load.
    known = make_shop(code="known")
    samples: dict[str, list[float]] = {"known": [], "nobody": []}
    for _ in range(3):  # warm up
        _attempt("known", "w" * 43)
        _attempt("nobody", "w" * 43)
    for _ in range(150):
        for code in ("known", "nobody"):
            start = time.perf_counter()
            _attempt(code, "w" * 43)
            samples[code].append(time.perf_counter() - start)
    ratio = statistics.median(samples["nobody"]) / statistics.median(samples["known"])
    print(f"unknown/known median time: {ratio:.2f}")
    assert 0.5 < ratio < 2, (ratio, known)
