"""Real-browser fixtures: one headless Debian Chromium for the browser tests, a fresh context
(cookies, storage) per test, and helpers to log in and take the README's screenshots.

Playwright's sync API keeps an asyncio loop running in the main thread while it is started, and
Django refuses ORM calls from a thread with a running loop (SynchronousOnlyOperation): the
package-scoped ``browser`` fixture sets ``DJANGO_ALLOW_ASYNC_UNSAFE`` for exactly as long as
Playwright runs (the tests only ever use the ORM from this one thread; the live server answers
from its own thread).

Screenshots go to a temporary folder unless ``ATOM_UPDATE_SCREENSHOTS=1``, which writes them to
``docs/screenshots/`` (so ``make test`` never dirties the working tree).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

CHROMIUM = Path(os.environ.get("ATOM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
PASSWORD = "pw-for-tests-1"  # tests.factories.make_membership
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests drive Debian's Chromium "
            "(`apt-get install -y chromium`; .ci/run installs it), or set ATOM_CHROMIUM.",
            pytrace=False,
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()


@pytest.fixture
def browser_locale() -> str:
    """The browser's own language (Accept-Language); a test may parametrize it."""
    return "en-US"


@pytest.fixture
def language_cookie() -> str | None:
    """The language chosen in the admin; English unless a test parametrizes it (None: none)."""
    return "en"


@pytest.fixture
def context(
    browser: Browser, live_server, browser_locale: str, language_cookie: str | None
) -> Iterator[BrowserContext]:
    """A fresh browser profile per test (cookies, storage), 1280 pixels wide."""
    ctx = browser.new_context(viewport=VIEWPORT, locale=browser_locale)
    ctx.set_default_timeout(10_000)
    if language_cookie:
        ctx.add_cookies(
            [
                {
                    "name": settings.LANGUAGE_COOKIE_NAME,
                    "value": language_cookie,
                    "url": live_server.url,
                }
            ]
        )
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, live_server) -> Iterator[Page]:
    """A page that fails its test on any JavaScript error or any request leaving the live
    server (the admin must work without a CDN)."""
    tab = context.new_page()
    errors: list[str] = []
    outside: list[str] = []
    server = urlsplit(live_server.url).netloc
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )

    def check_request(request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in {"http", "https", "ws", "wss"} and parts.netloc != server:
            outside.append(request.url)

    tab.on("request", check_request)
    yield tab
    assert outside == [], f"requests left the server: {outside}"
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture
def login(page: Page, live_server):
    """Logs ``user`` in through the admin's login form (not by forcing a session)."""

    def log_in(user) -> Page:
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        return page

    return log_in


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    if os.environ.get("ATOM_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def screenshot(page: Page, screenshot_dir: Path):
    """``screenshot("strategy-list")`` saves the whole page, 1280 pixels wide, as PNG."""

    def take(name: str) -> Path:
        path = screenshot_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        assert path.stat().st_size > 10_000, f"{path} looks empty"
        return path

    return take
