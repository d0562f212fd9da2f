"""Kuaishou tokens: a refresh rotates the pair, the old refresh token is discarded."""

import datetime as dt

import pytest

from strategies.platforms.channel import TokenRefused
from strategies.platforms.kuaishou.client import KuaishouError
from tests.strategies.platforms.kuaishou.conftest import channel_for

REFRESH = "oauth2.refresh_token"


def test_a_refresh_returns_a_new_pair_that_works(fake, shipped_990):
    access, refresh = fake.issue_tokens()
    now = dt.datetime.now(dt.UTC)
    grant = channel_for(fake, access_token=access).refresh(refresh_token=refresh, now=now)
    assert grant.access_token != access and grant.refresh_token != refresh
    assert grant.expires_at == now + dt.timedelta(seconds=172800)
    assert grant.merchant == fake.open_id
    assert "merchant_refund" in grant.scopes
    [call] = fake.calls_of(REFRESH)
    assert call.verb == "POST"
    assert call.params == {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "app_id": fake.app_key,
        "app_secret": fake.app_secret,
    }
    assert channel_for(fake, access_token=grant.access_token).fetch(shipped_990).request


def test_the_new_refresh_token_keeps_the_original_expiry(fake):
    _, refresh = fake.issue_tokens()
    channel = channel_for(fake)
    first = channel.refresh(refresh_token=refresh)
    second = channel.refresh(refresh_token=first.refresh_token)
    original = fake.refresh_tokens[refresh][0]
    assert fake.refresh_tokens[second.refresh_token][0] == original
    # The client reads the remaining lifetime the platform reports, to the second.
    assert abs(second.refresh_expires_at.timestamp() - original) < 2
    assert abs(first.refresh_expires_at.timestamp() - original) < 2


def test_the_old_refresh_token_is_discarded(fake):
    _, refresh = fake.issue_tokens()
    channel = channel_for(fake)
    channel.refresh(refresh_token=refresh)
    with pytest.raises(TokenRefused) as exc:
        channel.refresh(refresh_token=refresh)
    assert exc.value.code == "refreshToken.discarded"


def test_the_old_refresh_token_lives_through_the_grace(fake):
    fake.discard_grace = 300
    _, refresh = fake.issue_tokens()
    channel = channel_for(fake)
    first = channel.refresh(refresh_token=refresh)
    second = channel.refresh(refresh_token=refresh)
    assert second.refresh_token != first.refresh_token


def test_an_unknown_refresh_token_and_a_wrong_app_secret_are_refused(fake):
    with pytest.raises(TokenRefused):
        channel_for(fake).refresh(refresh_token="rt-forged")
    _, refresh = fake.issue_tokens()
    with pytest.raises(TokenRefused) as exc:
        channel_for(fake, app_secret="wrong").refresh(refresh_token=refresh)
    assert "unauthorized_client" in exc.value.message


def test_a_lost_answer_is_retryable_and_the_old_token_was_already_used(fake):
    _, refresh = fake.issue_tokens()
    fake.script(REFRESH, "timeout_after")
    channel = channel_for(fake)
    with pytest.raises(KuaishouError):
        channel.refresh(refresh_token=refresh)
    # The platform rotated the pair: the answer is lost, the old refresh token is gone.
    with pytest.raises(TokenRefused):
        channel.refresh(refresh_token=refresh)
