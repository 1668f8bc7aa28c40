"""End-to-end tests of the web client in headless Chromium against the real server.

Two users in two browser contexts see each other's messages, edits, deletes, reactions, thread
replies, typing and read receipts live; uploads show previews; slash commands work; message text
never runs as HTML; the client reconnects and catches up after its socket drops.
"""

from __future__ import annotations

import base64
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _in_thread(fn, *args, **kw):
    """Run a real action off the test thread, as the server runs it: in a thread without an event
    loop (Playwright's runs in this one; ``DJANGO_ALLOW_ASYNC_UNSAFE`` in conftest only lets the
    fixtures' own ORM calls through)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kw).result()


def _room(creator, name, members, **kw):
    from rooms.actions.rooms import do_create_room

    return _in_thread(do_create_room, creator, "c", name, members=members, **kw)


def _png(color=(200, 30, 30), size=(64, 48)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def _open(page, name):
    page.click(f'#room-list a[data-name="{name}"]')
    page.wait_for_selector("#composer")


def _send(page, text, selector="#composer"):
    page.fill(selector, text)
    page.press(selector, "Enter")


def test_two_users_see_each_other_live(live_url, make_user, open_page, shot):
    alice = make_user("alice", name="Alice Liddell")
    bob = make_user("bob", name="Bob Builder")
    _room(alice, "general", [bob], topic="Company-wide")
    _room(alice, "random", [bob])
    a = open_page("alice")
    b = open_page("bob")
    _open(a, "general")
    _open(b, "general")

    # Messages and highlighted mentions.
    _send(a, "Hello @bob, welcome to **Concord**")
    msg_b = b.locator("#msg-list .msg", has_text="welcome to").first
    expect(msg_b.locator("strong")).to_have_text("Concord")
    expect(msg_b.locator(".mention.me")).to_have_text("@bob")

    # Typing indicator.
    b.type("#composer", "typing somet")
    expect(a.locator("#typing")).to_have_text("Bob Builder is typing…")
    b.fill("#composer", "")
    # Read receipts: bob has the room open, so alice's message shows him as a reader.
    expect(a.locator(".seen-by")).to_contain_text("Bob Builder")

    # Edit with the Up key; bob sees the new text and the edited marker.
    a.press("#composer", "ArrowUp")
    expect(a.locator(".composer.editing")).to_be_visible()
    a.fill("#composer", "Hello @bob, welcome to **Concord** (now edited)")
    a.press("#composer", "Enter")
    expect(msg_b).to_contain_text("(now edited)")
    expect(msg_b.locator(".edited")).to_be_visible()

    # Reactions from the emoji picker, with counts and who reacted.
    msg_b.hover()
    msg_b.locator('.msg-actions [data-action="react"]').click()
    b.click('.emoji-picker button[data-code="tada"]')
    reaction_a = a.locator("#msg-list .msg", has_text="now edited").first.locator(".reaction:not(.add)")
    expect(reaction_a).to_have_count(1)
    expect(reaction_a.locator(".count")).to_have_text("1")
    assert "Bob Builder" in reaction_a.get_attribute("title")
    # Alice adds herself by clicking the chip: the count goes to 2 on bob's side.
    reaction_a.click()
    expect(msg_b.locator(".reaction:not(.add) .count")).to_have_text("2")

    # Threads: alice opens a thread and replies; bob sees the reply count, opens it, replies back.
    msg_a = a.locator("#msg-list .msg", has_text="now edited").first
    msg_a.hover()
    msg_a.locator('.msg-actions [data-action="open-thread"]').click()
    a.wait_for_selector("#thread-composer")
    _send(a, "First thread reply", "#thread-composer")
    expect(a.locator("#thread-list")).to_contain_text("First thread reply")
    expect(msg_b.locator(".thread-summary")).to_contain_text("1 reply")
    msg_b.locator(".thread-summary").click()
    expect(b.locator("#thread-list")).to_contain_text("First thread reply")
    _send(b, "Reply from bob in the thread", "#thread-composer")
    expect(a.locator("#thread-list")).to_contain_text("Reply from bob in the thread")
    expect(msg_a.locator(".thread-summary")).to_contain_text("2 replies")
    # Thread replies stay out of the main timeline.
    expect(a.locator("#msg-list")).not_to_contain_text("First thread reply")
    shot(a, "thread-panel-alice")
    a.click('#side-panel button.close')

    # Quote reply.
    msg_b.hover()
    msg_b.locator('.msg-actions [data-action="quote"]').click()
    expect(b.locator("#composer-area .composer-banner")).to_contain_text("Replying to Alice Liddell")
    _send(b, "Thanks for the welcome!")
    quoted = a.locator(".msg", has_text="Thanks for the welcome!")
    expect(quoted.locator(".quote")).to_contain_text("Alice Liddell")

    # Delete: bob sees the tombstone.
    _send(a, "This will be deleted")
    doomed_b = b.locator(".msg", has_text="This will be deleted")
    expect(doomed_b).to_have_count(1)
    doomed_a = a.locator(".msg", has_text="This will be deleted")
    doomed_a.hover()
    doomed_a.locator('.msg-actions [data-action="delete"]').click()
    a.click("#confirm-ok")
    expect(doomed_b).to_have_count(0)
    expect(b.locator(".msg.deleted").last).to_contain_text("This message was deleted.")

    # Pin: bob sees it pinned.
    msg_a.hover()
    msg_a.locator('.msg-actions [data-action="pin"]').click()
    expect(msg_b.locator(".tag.pin")).to_be_visible()

    # Unread and mention badges update live in another room.
    _open(a, "random")
    _send(a, "ping @bob in random")
    badge = b.locator('#room-list a[data-name="random"]')
    expect(badge.locator(".badge.mention")).to_have_text("@1")
    expect(badge.locator(".badge.unread-count")).to_have_text("1")
    shot(b, "room-bob-desktop")
    # A message without a mention bumps the unread count too (counted by the client from message.new).
    _send(a, "and a plain one")
    expect(badge.locator(".badge.unread-count")).to_have_text("2")
    badge.click()
    expect(b.locator('#room-list a[data-name="random"] .badge')).to_have_count(0)
    shot(a, "room-alice-desktop")
    assert a.errors == [] and b.errors == []


def test_upload_image_button_and_drop(live_url, make_user, open_page, shot):
    alice = make_user("alice")
    bob = make_user("bob")
    _room(alice, "pics", [bob])
    a = open_page("alice")
    b = open_page("bob")
    _open(a, "pics")
    _open(b, "pics")
    a.set_input_files("#composer-area input[type=file]",
                      files=[{"name": "red.png", "mimeType": "image/png", "buffer": _png()}])
    img = b.locator(".att-image img").first
    expect(img).to_be_visible()
    assert re.search(r"/file-upload/[^/]+/(thumb/)?red\.png$", img.get_attribute("src"))
    b.wait_for_function("() => { const i = document.querySelector('.att-image img');"
                        " return i && i.complete && i.naturalWidth > 0 }")

    # Drag and drop a second image onto the room.
    data = base64.b64encode(_png((30, 120, 200))).decode()
    a.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const file = new File([bytes], 'blue.png', {type: 'image/png'});
        const dt = new DataTransfer(); dt.items.add(file);
        const view = document.getElementById('room-view');
        for (const type of ['dragenter', 'dragover', 'drop'])
            view.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", data)
    expect(b.locator(".att-image figcaption", has_text="blue.png")).to_be_visible()
    expect(b.locator(".att-image img")).to_have_count(2)
    shot(b, "upload-preview")


def test_slash_commands(live_url, make_user, open_page, shot):
    alice = make_user("alice", name="Alice")
    make_user("bob", name="Bob")
    make_user("carol", name="Carol")
    _room(alice, "ops", [])
    a = open_page("alice")
    b = open_page("bob")
    _open(a, "ops")

    _send(a, "/help")
    expect(a.locator(".msg.ephemeral")).to_contain_text("/invite @user")

    # /invite: bob's sidebar gets the room live.
    _send(a, "/invite @bob")
    expect(b.locator('#room-list a[data-name="ops"]')).to_be_visible()
    expect(a.locator(".msg.system").last).to_contain_text("alice added bob")

    _send(a, "/topic Deploys and incidents")
    expect(a.locator("#room-topic")).to_have_text("Deploys and incidents")

    _send(a, "/me waves")
    expect(a.locator(".msg", has_text="waves").locator("em")).to_have_text("waves")

    _send(a, "/mute @bob")
    expect(a.locator(".msg.system").last).to_contain_text("alice muted bob")
    _open(b, "ops")
    expect(b.locator("#composer-area")).to_contain_text("You are muted")
    _send(b, "can I talk?")
    expect(b.locator(".toast.error")).to_be_visible()
    # After a reload the members panel knows bob is muted (from the room's muted list).
    a.reload()
    a.click("#members-button")
    muted_bob = a.locator('.member[data-username="bob"]')
    expect(muted_bob.locator(".role-muted")).to_be_visible()
    muted_bob.locator("summary").click()
    expect(muted_bob.locator('[data-action="unmute"]')).to_be_visible()
    expect(muted_bob.locator('[data-action="mute"]')).to_have_count(0)
    a.click('#side-panel button.close')
    _send(a, "/unmute @bob")
    expect(a.locator(".msg.system").last).to_contain_text("alice unmuted bob")

    # The members panel shows roles; promote bob through its menu.
    a.click("#members-button")
    member = a.locator('.member[data-username="bob"]')
    member.locator("summary").click()
    member.locator('[data-action="addModerator"]').click()
    expect(a.locator('.member[data-username="bob"] .role-moderator')).to_be_visible()
    expect(a.locator('.member[data-username="alice"] .role-owner')).to_be_visible()
    shot(a, "members-panel")
    a.click('#side-panel button.close')

    _send(a, "/kick @bob")
    expect(b.locator('#room-list a[data-name="ops"]')).to_have_count(0)
    _send(a, "/ban @bob")
    expect(a.locator(".msg.system").last).to_contain_text("alice banned bob")
    _send(a, "/invite @bob")
    expect(a.locator(".toast.error").last).to_contain_text("banned")
    _send(a, "/unban @bob")
    expect(a.locator(".msg.system").last).to_contain_text("alice unbanned bob")

    _send(a, "/nosuchcommand")
    expect(a.locator(".toast.error").last).to_contain_text("Unknown command")

    _send(a, "/dm @bob @carol")
    a.wait_for_url(re.compile(r"/direct/"))
    expect(a.locator("#room-name")).to_contain_text("Bob")
    _send(a, "hi both")
    expect(b.locator("#room-list a.room-item", has_text="alice")).to_be_visible()

    a.click('#room-list a[data-name="ops"]')
    _send(a, "/invite @bob")
    expect(a.locator(".msg.system").last).to_contain_text("alice added bob")
    _send(a, "/leave")
    expect(a.locator(".toast.error").last).to_contain_text("last owner")
    shot(a, "slash-commands")


def test_html_in_messages_names_and_files_stays_text(live_url, make_user, open_page):
    alice = make_user("alice", name='<img src=x onerror="window.pwned=1">Alice')
    bob = make_user("bob")
    _room(alice, "sec", [bob])
    a = open_page("alice")
    b = open_page("bob")
    _open(a, "sec")
    _open(b, "sec")
    payload = '<img src=x onerror="window.pwned=2"> <script>window.pwned=3</script> [x](javascript:window.pwned=4)'
    _send(a, payload)
    a.set_input_files("#composer-area input[type=file]",
                      files=[{"name": '<img src=x onerror="window.pwned=5">.txt', "mimeType": "text/plain",
                              "buffer": b"hi"}])
    msg = b.locator(".msg", has_text="<script>window.pwned=3</script>")
    expect(msg).to_be_visible()
    expect(msg.locator(".msg-name")).to_have_text('<img src=x onerror="window.pwned=1">Alice')
    expect(b.locator(".att-file a")).to_contain_text("onerror")
    assert b.locator(".msg img:not(.avatar)").count() == 0
    assert b.locator("script:not([type=module])").count() == 0
    for link in b.locator(".msg-text a").all():
        assert not (link.get_attribute("href") or "").startswith("javascript:")
    assert b.evaluate("window.pwned") is None and a.evaluate("window.pwned") is None


def test_reconnect_shows_offline_and_catches_up(live_url, make_user, open_page, shot, rc_client):
    alice = make_user("alice")
    bob = make_user("bob")
    room = _room(alice, "resilient", [bob])
    a = open_page("alice")
    _open(a, "resilient")
    # Drop the socket and keep the network "down": new WebSockets fail until it comes back.
    a.evaluate("""() => {
        window.__RealWebSocket = window.WebSocket;
        window.WebSocket = class { constructor() { throw new Error('network down'); } };
        window.concord.state.live.ws.close();
    }""")
    expect(a.locator("#conn-banner")).to_contain_text("offline")
    shot(a, "offline-banner")
    rc = rc_client("bob")
    rc.chat_post_message("sent while alice was offline", room_id=room.id)
    a.wait_for_timeout(300)
    expect(a.locator("#msg-list")).not_to_contain_text("sent while alice was offline")
    a.evaluate("""() => { window.WebSocket = window.__RealWebSocket; window.dispatchEvent(new Event('online')); }""")
    expect(a.locator("#conn-banner")).to_be_hidden()
    expect(a.locator("#msg-list")).to_contain_text("sent while alice was offline")
    # Live events flow again after the reconnect.
    rc.chat_post_message("and after", room_id=room.id)
    expect(a.locator("#msg-list")).to_contain_text("and after")


def test_signup_profile_directory_and_narrow_layout(live_url, make_user, browser, shot):
    owner = make_user("olga")
    _room(owner, "lobby", [], topic="Say hi")
    ctx = browser.new_context(viewport={"width": 390, "height": 760}, base_url=live_url)
    ctx.set_default_timeout(15000)
    page = ctx.new_page()
    try:
        page.goto("/")
        assert page.url.endswith("/login")
        shot(page, "login-narrow")
        page.click("text=Create an account")
        page.fill("input[name=username]", "newbie")
        page.fill("input[name=name]", "New Bie")
        page.fill("input[name=email]", "newbie@example.test")
        page.fill("input[name=password]", "123")
        page.click("button[type=submit]")
        expect(page.locator(".form-error")).to_contain_text("too short")
        page.fill("input[name=password]", "secret-pass")
        page.click("button[type=submit]")
        page.wait_for_selector("#room-list")
        # Directory: find and join the public channel.
        page.click("#directory")
        page.click('button[data-join="lobby"]')
        page.wait_for_selector("#composer")
        expect(page.locator("#room-topic")).to_have_text("Say hi")
        _send(page, "hello from my phone")
        expect(page.locator(".msg", has_text="hello from my phone")).to_be_visible()
        shot(page, "room-narrow")
        page.click(".room-head .back")
        expect(page.locator("#sidebar")).to_be_visible()
        shot(page, "sidebar-narrow")
        # Profile: display name and avatar.
        page.click("#me-button")
        page.fill("dialog input[name=name]", "Newbie Renamed")
        page.set_input_files("dialog input[name=avatar]",
                             files=[{"name": "me.png", "mimeType": "image/png", "buffer": _png((10, 160, 90))}])
        page.click("dialog button[type=submit]")
        expect(page.locator("#me-name")).to_have_text("Newbie Renamed")
        expect(page.locator(".toast.ok", has_text="Profile saved")).to_be_visible()
        shot(page, "profile-saved-narrow")
        from accounts.models import User

        assert User.objects.get(username="newbie").avatar
        # Sign out, and the app sends us back to the sign-in page.
        page.click("#me-button")
        page.click("#sign-out")
        page.wait_for_url(re.compile(r"/login$"))
        page.goto("/")
        assert page.url.endswith("/login")
        page.fill("input[name=username]", "newbie")
        page.fill("input[name=password]", "wrong")
        page.click("button[type=submit]")
        expect(page.locator(".form-error")).to_contain_text("Wrong username or password")
    finally:
        ctx.close()


def test_history_scrollback_permalink_and_settings(live_url, make_user, open_page, shot):
    from rooms.actions.messages import do_send_message

    alice = make_user("alice")
    room = _room(alice, "archive", [], topic="Old stuff")

    def fill() -> list[str]:
        return [do_send_message(alice, room, f"history message {i:03d}").id for i in range(120)]

    ids = _in_thread(fill)
    a = open_page("alice")
    _open(a, "archive")
    expect(a.locator("#msg-list")).to_contain_text("history message 119")
    expect(a.locator("#msg-list")).not_to_contain_text("history message 000")
    # Infinite scroll back: scrolling to the top loads older pages until the start of the room.
    # Keep scrolling to the top until the client says it reached the start (however long each page takes).
    a.wait_for_function("""() => {
        document.getElementById('messages').scrollTop = 0;
        return document.getElementById('history-top').textContent.includes('start of archive');
    }""", polling=250)
    expect(a.locator("#msg-list")).to_contain_text("history message 000")
    expect(a.locator("#history-top")).to_contain_text("start of archive")
    assert a.locator("#msg-list .msg").count() == 120  # every message once, none skipped
    assert a.locator(".day-sep").count() == 1

    # A message permalink opens the room (after a reload) and highlights the message.
    a.goto(f"/channel/archive?msg={ids[118]}")
    expect(a.locator(f"#msg-{ids[118]}")).to_be_in_viewport()

    # Room settings: announcement, read-only and what new members see.
    a.click("#settings-button")
    a.fill("dialog textarea[name=announcement]", "Read the *rules*")
    a.check("dialog input[name=readOnly]")
    a.select_option("dialog select[name=historyVisibility]", "joined")
    a.click("dialog button[type=submit]")
    expect(a.locator("#announcement")).to_have_text("Read the *rules*")
    # The dialog saves each setting in turn: wait for the last one to land.
    deadline = time.time() + 10
    while _in_thread(lambda: type(room).objects.get(id=room.id).history_visibility) != "joined" \
            and time.time() < deadline:
        time.sleep(0.1)
    assert _in_thread(lambda: type(room).objects.get(id=room.id).read_only)
    assert _in_thread(lambda: type(room).objects.get(id=room.id).history_visibility) == "joined"
    expect(a.locator("#msg-list")).to_contain_text("changed what new members see to: messages from when they joined")
    shot(a, "settings-applied")


def test_pending_invitation_accept_and_decline(live_url, make_user, open_page, shot):
    from rooms.actions.memberships import do_invite
    from rooms.actions.rooms import do_create_room
    from rooms.models import Membership

    alice = make_user("alice", name="Alice Liddell")
    bob = make_user("bob", name="Bob Builder")
    secret = _in_thread(do_create_room, alice, "p", "secret-plans")
    other = _in_thread(do_create_room, alice, "p", "not-for-bob")
    b = open_page("bob")
    # Invitations arrive live, are labelled in the sidebar, and the room offers Accept / Decline.
    _in_thread(do_invite, secret, bob, by=alice)
    _in_thread(do_invite, other, bob, by=alice)
    invited = b.locator('#room-list a[data-name="secret-plans"]')
    expect(invited.locator(".badge.invite")).to_be_visible()
    invited.click()
    expect(b.locator("#accept-invite")).to_be_visible()
    shot(b, "invitation")
    b.click("#accept-invite")
    b.wait_for_selector("#composer")
    expect(invited.locator(".badge.invite")).to_have_count(0)
    _send(b, "thanks for the invite")
    expect(b.locator(".msg", has_text="thanks for the invite")).to_be_visible()
    assert Membership.objects.get(room=secret, user=bob).state == Membership.JOINED

    b.locator('#room-list a[data-name="not-for-bob"]').click()
    b.click("#decline-invite")
    expect(b.locator('#room-list a[data-name="not-for-bob"]')).to_have_count(0)
    assert Membership.objects.get(room=other, user=bob).state == Membership.LEFT
    assert b.errors == []


def _wait_row(fetch, timeout=10.0):
    """A row the page's request is writing (the page can show a message before its commit)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        row = fetch()
        if row is not None:
            return row
        time.sleep(0.1)
    raise AssertionError("the row did not appear")


def test_a_federated_room_shows_what_remote_users_do(live_url, make_user, open_page, shot, settings):
    """Remote edits, reactions, quotes and files (placeholder, then the file once fetched) as they
    arrive through the event store; a remote user is offered and mentioned by Matrix ID."""
    from django.utils import timezone

    from federation.models import BridgedMessage, MatrixRoom
    from federation.protocol.builder import build_create_event, build_event
    from federation.protocol.events import CREATE_KEY
    from federation.protocol.room_versions import get_room_version
    from federation.protocol.signing import SigningKey
    from federation.store.events import Arrival, persist_event
    from rooms.actions.uploads import do_attach_file
    from rooms.models import Mention, Message

    settings.CONCORD_SERVER_NAME = "concord.test"
    alice = make_user("alice", name="Alice Liddell")
    portal = _room(alice, "partners", [])
    rv, key, remote = get_room_version("11"), SigningKey.generate("w1"), "partner.example"
    bob = f"@bob:{remote}"
    ts = int(timezone.now().timestamp() * 1000)
    create = build_create_event(rv, sender=bob, origin_server_ts=ts, server_name=remote, signing_key=key,
                                room_id=f"!web{ts}:{remote}")
    mroom = MatrixRoom.objects.create(room_id=create.room_id, room_version="11", chat_room=portal)
    state, last = {CREATE_KEY: create.event_id}, [create]

    def arrive(event_type, content, state_key=None, redacts=None):
        nonlocal ts
        ts += 1
        ev = build_event(rv, room_id=create.room_id, event_type=event_type, sender=bob, content=content,
                         prev_events=last, state=state, origin_server_ts=ts, server_name=remote, signing_key=key,
                         state_key=state_key, redacts=redacts)
        last[:] = [ev]
        if state_key is not None:
            state[(event_type, state_key)] = ev.event_id
        _in_thread(persist_event, mroom, ev, arrival=Arrival.LIVE, state_after=dict(state))
        return ev

    arrive("m.room.member", {"membership": "join", "displayname": "Bob Partner"}, state_key=bob)
    a = open_page("alice")
    _open(a, "partners")
    _send(a, "welcome, partners")
    mine = a.locator(".msg", has_text="welcome, partners")
    expect(mine).to_be_visible()
    ours = _wait_row(lambda: Message.objects.filter(room=portal, text="welcome, partners").first())
    BridgedMessage.objects.create(event_id="$ours-welcome", message_id=ours.id)  # as if it had gone out

    first = arrive("m.room.message", {"msgtype": "m.text", "body": "helo from the other side"})
    expect(a.locator(".msg", has_text="helo from the other side")).to_be_visible()
    arrive("m.room.message", {"msgtype": "m.text", "body": "* hello from the other side",
                              "m.new_content": {"msgtype": "m.text", "body": "hello from the other side"},
                              "m.relates_to": {"rel_type": "m.replace", "event_id": first.event_id}})
    edited = a.locator(".msg", has_text="hello from the other side")
    expect(edited.locator(".edited")).to_be_visible()
    expect(edited.locator(".msg-user")).to_have_text(bob)  # a Matrix ID, shown with its one "@"
    arrive("m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$ours-welcome", "key": "🎉"}})
    expect(mine.locator(".reaction", has_text="🎉")).to_be_visible()
    arrive("m.room.message", {"msgtype": "m.text", "body": "> <@alice:concord.test> welcome\n\nthanks!",
                              "m.relates_to": {"m.in_reply_to": {"event_id": "$ours-welcome"}}})
    reply = a.locator(".msg", has_text="thanks!")
    expect(reply.locator("blockquote.quote", has_text="welcome, partners")).to_be_visible()
    file_event = arrive("m.room.message", {"msgtype": "m.image", "body": "chart.png", "url": f"mxc://{remote}/chart1",
                                           "info": {"mimetype": "image/png", "w": 64, "h": 48}})
    pending = a.locator(".msg", has_text="chart.png")
    expect(pending.locator(".att-file.pending")).to_be_visible()
    link = BridgedMessage.objects.get(event_id=file_event.event_id)
    _in_thread(do_attach_file, Message.objects.get(id=link.message_id), "chart.png", "image/png", _png())
    expect(pending.locator("figure.att-image img")).to_be_visible()
    shot(a, "federated-room")

    # The remote user is offered by Matrix ID in the composer and mentioned with one "@".
    a.fill("#composer", "ping @bob")
    option = a.locator(".autocomplete li", has_text=f"@bob:{remote}")
    expect(option).to_be_visible()
    option.dispatch_event("mousedown")
    expect(a.locator("#composer")).to_have_value(f"ping @bob:{remote} ")
    a.press("#composer", "Enter")
    expect(a.locator(".msg", has_text=f"ping @bob:{remote}")).to_be_visible()
    sent = _wait_row(lambda: Message.objects.filter(room=portal, text__startswith=f"ping @bob:{remote}").first())
    assert list(Mention.objects.filter(message=sent).values_list("user__username", flat=True)) == [bob]
    # The room says it is federated; the member list marks the remote user with their server.
    expect(a.locator(".room-head .federated-tag")).to_be_visible()
    expect(a.locator(f".room-item[data-rid='{portal.id}'] .federated-mark")).to_be_visible()
    a.click("#members-button")
    expect(a.locator(f".member[data-username='{bob}'] .role-remote")).to_have_text(f" {remote}")
    expect(a.locator(f".member[data-username='{bob}']")).not_to_contain_text(f"@{bob}")  # one "@"
    # Room settings show the Matrix side: the room, the servers in it and, for its owner, the
    # server ACL fields (the room's current state, as receiving its events would have set it).
    from federation.store.events import encode_state

    _in_thread(lambda: MatrixRoom.objects.filter(pk=mroom.pk).update(current_state=encode_state(state)))
    a.click("#settings-button")
    expect(a.locator("dialog #federation-servers")).to_contain_text(remote)
    expect(a.locator("dialog")).to_contain_text(create.room_id)
    assert a.locator("dialog textarea[name=aclDeny]").is_enabled()
    expect(a.locator("dialog button", has_text="Save server ACL")).to_be_visible()
    a.keyboard.press("Escape")
    assert a.errors == []


def test_federation_admin_page(live_url, make_user, open_page, shot):
    make_user("fedadmin", roles=("admin", "user"))
    make_user("plainperson")
    plain = open_page("plainperson")
    expect(plain.locator("#federation-admin")).to_have_count(0)
    a = open_page("fedadmin")
    a.click("#federation-admin")
    expect(a.locator("dialog #federation-state")).to_be_visible()
    a.fill("dialog input[name=pattern]", "Spam.Example")
    a.select_option("dialog select[name=kind]", "deny")
    a.fill("dialog input[name=note]", "spam")
    a.click("dialog button:has-text('Add rule')")
    deny = a.locator("dialog ul.rules[data-kind=deny]")
    expect(deny).to_contain_text("spam.example")
    from federation.models import ServerRule

    assert _in_thread(lambda: list(ServerRule.objects.values_list("pattern", "kind"))) == [("spam.example", "deny")]
    shot(a, "federation-admin")
    deny.locator("li", has_text="spam.example").locator("button", has_text="Remove").click()
    expect(deny).not_to_contain_text("spam.example")
    expect(a.locator("dialog table.destinations")).to_contain_text("Nothing sent to another server yet")
    expect(a.locator("dialog table.remote-keys")).to_contain_text("No other server's keys fetched yet")
    # A switch turned off on the page is off for the server at once.
    from federation import config

    typing = a.locator("dialog input[name=Federation_Matrix_typing]")
    expect(typing).to_be_checked()
    typing.uncheck()
    expect(a.get_by_text("Typing notifications: off.")).to_be_visible()  # the save answered
    assert _in_thread(lambda: (config.edus_enabled("typing"), config.edus_enabled("receipts"))) == (False, True)
    expect(a.locator("dialog input[name=Federation_Matrix_typing]")).not_to_be_checked()  # as reloaded
    a.locator("dialog input[name=Federation_Matrix_typing]").check()
    expect(a.get_by_text("Typing notifications: on.")).to_be_visible()
    assert _in_thread(lambda: config.edus_enabled("typing")) is True


def test_pending_invitations_show_in_the_members_panel_and_can_be_revoked(live_url, make_user, open_page):
    from rooms.actions.memberships import do_invite
    from rooms.models import Membership

    alice, bob = make_user("alice"), make_user("bob")
    room = _room(alice, "invitations", [])
    _in_thread(do_invite, room, bob, by=alice)
    a = open_page("alice")
    _open(a, "invitations")
    a.click("#members-button")
    pending = a.locator("#invited-list .member[data-username=bob]")
    expect(pending).to_contain_text("invitation pending")
    pending.locator("button[data-action=revoke]").click()
    expect(a.locator("#invited-list")).to_have_count(0)
    assert _in_thread(lambda: Membership.objects.get(room=room, user=bob).state) == "left"


def test_messages_of_an_ignored_user_are_hidden_until_shown(live_url, make_user, open_page):
    from rooms.actions.memberships import do_set_ignored
    from rooms.actions.messages import do_send_message
    from rooms.models import Membership

    rita, troll = make_user("rita"), make_user("troll")
    room = _room(rita, "quiet", [troll])
    _in_thread(do_send_message, troll, room, "buy cheap stuff")
    _in_thread(lambda: do_set_ignored(Membership.objects.get(room=room, user=rita), troll, True))
    a = open_page("rita")
    _open(a, "quiet")
    hidden = a.locator(".msg.ignored")
    expect(hidden).to_contain_text("Message from a user you ignore")
    expect(a.locator("#msg-list")).not_to_contain_text("buy cheap stuff")
    hidden.locator("button", has_text="Show").click()
    expect(a.locator("#msg-list")).to_contain_text("buy cheap stuff")
