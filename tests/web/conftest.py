"""Browser fixtures: headless Debian Chromium driven by Playwright's sync API against ``live_url``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; pytest-django's ORM calls in fixtures
# would otherwise refuse to run "from an async context".
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("CONCORD_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    yield from chromium()


def chromium() -> Iterator[Any]:
    """Headless Chromium through Playwright's sync API, closed when the generator ends. While it
    is open, Playwright keeps an event loop running in this thread: tests elsewhere that use a
    browser take it for one test only (tests/web runs last and keeps one for its session)."""
    if not os.path.exists(CHROMIUM):
        # `make test` installs it (tests/install-browser.sh); in CI a missing browser is a failure.
        message = f"Chromium not installed at {CHROMIUM} (run tests/install-browser.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def shot() -> Callable[[Any, str], None]:
    """Save a screenshot of ``page`` as ``test-artifacts/<name>.png`` (not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page: Any, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    return take


@pytest.fixture
def open_page(browser: Any, live_url: str) -> Iterator[Callable[..., Any]]:
    """``open_page(username, password=..., viewport=...)``: a fresh browser context signed in as that user."""
    contexts: list[Any] = []
    pages: list[Any] = []

    def make(username: str, password: str = "password123", *, viewport: dict[str, int] | None = None) -> Any:
        ctx = browser.new_context(viewport=viewport or {"width": 1280, "height": 800}, base_url=live_url)
        ctx.set_default_timeout(15000)  # generous: CI machines can be busy
        contexts.append(ctx)
        page = ctx.new_page()
        pages.append(page)
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.goto("/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        try:
            page.wait_for_selector("#room-list")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"failed-login-{username}.png"))
            raise AssertionError(f"sign-in as {username} failed at {page.url}: {page.inner_text('body')[:500]}")
        page.wait_for_function("window.concord && window.concord.state.online")
        return page

    yield make
    errors = [f"{e}" for page in pages for e in page.errors]
    for ctx in contexts:
        ctx.close()
    assert not errors, f"uncaught JavaScript errors in the client: {errors}"


@pytest.fixture(autouse=True, scope="session")
def _patient_expectations() -> None:
    """``expect(...)`` waits up to 10 s (Playwright's default is 5 s), for busy CI machines."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
