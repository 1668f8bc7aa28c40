"""The web client's directory across servers, in headless Chromium against a real Synapse: a
Concord user names Synapse's server in the Directory, sees its published rooms, and joins one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.federation.conftest import ConcordTLS
from tests.federation.rooms_helpers import SynapseUser, wait_for
from tests.federation.synapse_harness import SynapseServer
from tests.web.conftest import chromium, open_page, shot  # noqa: F401 (the browser fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.synapse, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium for this test only: Playwright's sync API keeps an event loop running in this
    thread while it is open, which the later (non-browser) tests of the session must not inherit
    (tests/web, last in the run, may keep theirs for the whole session)."""
    yield from chromium()


def test_directory_lists_and_joins_a_synapse_room(fed: ConcordTLS, synapse: SynapseServer, outbox_pump: Any,
                                                   make_user: Any, open_page: Any, shot: Any) -> None:  # noqa: F811
    make_user("webdir", name="Web Directory")
    eve = SynapseUser(synapse, "webeve")
    room_id = eve.create_room(preset="public_chat", visibility="public", name="Birdwatching",
                              topic="Owls at dusk", room_alias_name="birds")
    eve.send(room_id, "a barn owl tonight")
    page = open_page("webdir")
    page.click("#directory")
    page.fill("dialog input[name=server]", synapse.server_name)
    page.press("dialog input[name=server]", "Enter")
    row = page.locator("dialog .directory-list li", has_text="Birdwatching")
    expect(row).to_contain_text("Owls at dusk")
    expect(row).to_contain_text(f"#birds:{synapse.server_name}")
    expect(page.locator("dialog")).not_to_contain_text("null")
    shot(page, "directory-remote-server")
    row.locator("button", has_text="Join").click()
    expect(page.locator("#msg-list")).to_contain_text("a barn owl tonight")
    wait_for(lambda: eve.membership(room_id, f"@webdir:{fed.server_name}") == "join", what="joined in Synapse")
    # A server that does not answer is said in words, in the list.
    page.click("#directory")
    page.fill("dialog input[name=server]", "nowhere.invalid")
    page.press("dialog input[name=server]", "Enter")
    expect(page.locator("dialog .directory-list")).to_contain_text("could not be reached")
