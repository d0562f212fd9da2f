"""Shared fixtures. The suite runs on PostgreSQL: the guarantees it proves are PostgreSQL's."""

import pytest
from django.conf import settings

from strategies.pipeline import publish
from tests.factories import make_membership, make_shop

# Fixtures shared across folders: the real worker, broker and gateway (tests/worker.py).
pytest_plugins = ["tests.worker"]


def pytest_configure(config: pytest.Config) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(
            f"The test suite needs PostgreSQL (DATABASE_URL), not {engine}: run `make test`."
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A skipped test is a failing test in CI: make every skip loud.
    for item in items:
        for marker in item.iter_markers(name="skip"):
            raise pytest.UsageError(f"{item.nodeid} is marked skip: fix it or delete it")


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    # Hashing cost is not what these tests prove; MD5 keeps user creation cheap.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def shop(db):
    return make_shop(code="shop-a", name="Shop A")


@pytest.fixture
def other_shop(db):
    return make_shop(code="shop-b", name="Shop B")


@pytest.fixture
def owner(shop):
    return make_membership(shop=shop, username="owner-a", role="owner").user


@pytest.fixture
def viewer(shop):
    return make_membership(shop=shop, username="viewer-a", role="viewer").user


@pytest.fixture
def other_owner(other_shop):
    return make_membership(shop=other_shop, username="owner-b", role="owner").user


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def as_owner(client, owner):
    """The shop owner's admin session, in English (the default interface is Chinese)."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(owner)
    return client


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, list]]:
    """The tasks the pipeline publishes, kept here instead of sent (the publish seam)."""
    calls: list[tuple[str, list]] = []

    def publish_now(name: str, args: list, countdown: float | None = None) -> bool:
        calls.append((name, args))
        return True

    monkeypatch.setattr(publish, "publish_now", publish_now)
    return calls
