"""Fixtures of the console's browser tests: one world (clusters, operator, LDAP, server)
shared by the module, Debian's Chromium driven by Playwright, and signed-in pages.

Both are module-scoped, not session-scoped: Playwright's synchronous API keeps an event
loop running in the test thread while it is open, so it must be closed before the
process (a pytest-xdist worker) goes on to asynchronous tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ...integration.server.directory import running_directory
from ...integration.server.test_ldap import ldap_settings
from .world import ConsoleWorld, console_world

CHROMIUM = "/usr/bin/chromium"
IMAGES = Path(__file__).parents[3] / "docs" / "images"
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "carol": "carol-pw-3"}


@pytest.fixture(scope="module")
def console(request: pytest.FixtureRequest) -> Iterator[ConsoleWorld]:
    folder = Path(tempfile.mkdtemp(prefix="milkyway-console-"))
    ran: set[str] = set()
    request.module.scenarios_ran = ran
    try:
        with (
            running_directory(folder / "ldap") as directory,
            console_world(folder, ldap_settings(directory.url)) as world,
        ):
            world.wait_ready("stream1")
            world.wait_ready("ledger")
            yield world
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _every_scenario_ran_here(request, ran)


@pytest.fixture(autouse=True)
def _scenario(request: pytest.FixtureRequest) -> None:
    ran = getattr(request.module, "scenarios_ran", None)
    if ran is not None:
        ran.add(request.node.nodeid)


def _every_scenario_ran_here(request: pytest.FixtureRequest, ran: set[str]) -> None:
    """The scenarios build on each other in one world: a worker that ran only some of
    them (pytest-xdist handing out single tests) tested a world the scenarios were not
    written for, and two such worlds competed for the machine."""
    session = request.session
    if session.shouldfail or session.shouldstop:
        return
    selected = {item.nodeid for item in session.items if item.module is request.module}
    if ran != selected:
        pytest.fail(
            f"this worker ran {len(ran)} of the module's {len(selected)} console scenarios: "
            "they share one world and must run in one process; run pytest with "
            "--dist loadfile (as `make test` does), not --dist load"
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[dev]' (playwright==1.65.2)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def sign_in(console: ConsoleWorld, browser: Any) -> Iterator[Callable[..., Any]]:
    """``sign_in(user)``: a page of a fresh browser context, signed in as ``user``."""
    contexts: list[Any] = []

    def open_as(user: str, path: str = "#/applications") -> Any:
        context = browser.new_context(
            ignore_https_errors=True, viewport={"width": 1400, "height": 900}
        )
        context.set_default_timeout(60_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{console.url}/console/{path}")
        page.get_by_label("User name").fill(user)
        page.get_by_label("Password").fill(PASSWORDS[user])
        page.get_by_role("button", name="Sign in").click()
        page.locator("#who-name").filter(has_text=user).wait_for()
        return page

    yield open_as
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> None:
    """Saves the page for docs/console.md (docs/images/console-NAME.png)."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / f"console-{name}.png"), full_page=True)


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
