"""The bridge's pure converters: chat values <-> Matrix content, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from federation.bridge import convert


def test_message_content_carries_html_and_thread_only_when_there_are_some() -> None:
    assert convert.message_content("hi") == {"msgtype": "m.text", "body": "hi"}
    assert convert.message_content("**hi**", "<p><strong>hi</strong></p>", thread_root_event_id="$root") == {
        "msgtype": "m.text", "body": "**hi**", "format": "org.matrix.custom.html",
        "formatted_body": "<p><strong>hi</strong></p>",
        "m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}}


@pytest.mark.parametrize(("content", "text", "thread", "replaces"), [
    ({"msgtype": "m.text", "body": "plain"}, "plain", None, None),
    ({"msgtype": "m.emote", "body": "waves"}, "_Bob waves_", None, None),
    ({"msgtype": "m.image", "body": "cat.png", "url": "mxc://hs/abc"}, "cat.png (mxc://hs/abc)", None, None),
    ({"msgtype": "m.file", "body": "doc.pdf"}, "doc.pdf", None, None),
    ({"body": "a\x00b"}, "ab", None, None),
    ({"body": "in thread", "m.relates_to": {"rel_type": "m.thread", "event_id": "$t"}}, "in thread", "$t", None),
    ({"body": "* fixed", "m.relates_to": {"rel_type": "m.replace", "event_id": "$o"}}, "* fixed", None, None),
    ({"body": "* fixed", "m.new_content": {"msgtype": "m.text", "body": "fixed"},
      "m.relates_to": {"rel_type": "m.replace", "event_id": "$o"}}, "fixed", None, "$o"),
    ({"body": "odd relation", "m.relates_to": {"rel_type": "m.thread", "event_id": 5}}, "odd relation", None, None),
])
def test_incoming_message(content: dict, text: str, thread: str | None, replaces: str | None) -> None:
    got = convert.incoming_message(content, "Bob")
    assert got == convert.IncomingMessage(text, thread, replaces)


def test_replies_both_ways_with_and_without_the_fallback() -> None:
    assert convert.message_content("yes", reply_to_event_id="$q")["m.relates_to"] == {
        "m.in_reply_to": {"event_id": "$q"}}
    assert convert.message_content("yes", thread_root_event_id="$t", reply_to_event_id="$q")["m.relates_to"] == {
        "rel_type": "m.thread", "event_id": "$t", "is_falling_back": False, "m.in_reply_to": {"event_id": "$q"}}
    with_fallback = {"body": "> <@alice:hs> the question\n> second line\n\nthe answer",
                     "m.relates_to": {"m.in_reply_to": {"event_id": "$q"}}}
    assert convert.incoming_message(with_fallback, "Bob") == convert.IncomingMessage(
        "the answer", reply_to_event_id="$q")
    bare = {"body": "> not a fallback, a quote", "m.relates_to": {"m.in_reply_to": {"event_id": "$q"}}}
    assert convert.incoming_message(bare, "Bob") == convert.IncomingMessage("> not a fallback, a quote",
                                                                             reply_to_event_id="$q")
    thread_fallback = {"body": "in thread", "m.relates_to": {
        "rel_type": "m.thread", "event_id": "$t", "is_falling_back": True, "m.in_reply_to": {"event_id": "$x"}}}
    assert convert.incoming_message(thread_fallback, "Bob") == convert.IncomingMessage("in thread", "$t")
    assert convert.strip_reply_fallback("no quote\n\nhere") == "no quote\n\nhere"


def test_edit_and_reaction_content() -> None:
    assert convert.edit_content("$o", "new **text**", "<p>new <strong>text</strong></p>") == {
        "msgtype": "m.text", "body": "* new **text**", "format": "org.matrix.custom.html",
        "formatted_body": "* <p>new <strong>text</strong></p>",
        "m.new_content": {"msgtype": "m.text", "body": "new **text**", "format": "org.matrix.custom.html",
                          "formatted_body": "<p>new <strong>text</strong></p>"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$o"}}
    content = convert.reaction_content("$m", "👍")
    assert content == {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$m", "key": "👍"}}
    assert convert.incoming_reaction(content) == convert.IncomingReaction("$m", "👍")
    for bad in ({}, {"m.relates_to": {"rel_type": "m.reference", "event_id": "$m", "key": "x"}},
                {"m.relates_to": {"rel_type": "m.annotation", "event_id": 3, "key": "x"}},
                {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$m", "key": "  "}},
                {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$m", "key": "x" * 61}},
                {"m.relates_to": "nope"}):
        assert convert.incoming_reaction(bad) is None


def test_emoji_table_is_the_web_clients_and_maps_both_ways() -> None:
    import json

    from federation.bridge import emoji

    table = json.loads(emoji.TABLE_FILE.read_text(encoding="utf-8"))
    assert ["thumbsup", "👍"] in table["emoji"]
    assert emoji.key_for_shortcode(":thumbsup:") == "👍" and emoji.key_for_shortcode(":+1:") == "👍"
    assert emoji.shortcode_for_key("👍") == ":thumbsup:"
    assert emoji.shortcode_for_key("❤") == emoji.shortcode_for_key("❤️") == ":heart:"  # with or without U+FE0F
    assert emoji.shortcode_for_key("🦆") == ":🦆:" and emoji.key_for_shortcode(":🦆:") == "🦆"
    assert emoji.key_for_shortcode(":no_such_code:") == ":no_such_code:"
    assert emoji.shortcode_for_key(":no_such_code:") == ":no_such_code:"
    for code, _char in table["emoji"]:
        assert emoji.shortcode_for_key(emoji.key_for_shortcode(f":{code}:")) == f":{code}:"


def test_incoming_message_without_a_string_body_is_nothing_and_long_text_is_cut() -> None:
    assert convert.incoming_message({"msgtype": "m.text"}, "Bob") is None
    assert convert.incoming_message({"body": ["x"]}, "Bob") is None
    got = convert.incoming_message({"body": "x" * 30000}, "Bob")
    assert got is not None and len(got.text) == convert.MAX_TEXT


@pytest.mark.parametrize(("roles", "level"), [
    (["owner"], 100), (["moderator", "owner"], 100), (["moderator"], 50), ([], 0), (["leader"], 0)])
def test_power_level_for_roles(roles: list[str], level: int) -> None:
    assert convert.power_level_for_roles(roles) == level


def test_join_rule_and_portal_names() -> None:
    assert convert.join_rule_for(True) == "public"
    assert convert.join_rule_for(False) == "invite"
    assert convert.portal_name_base("Team chat / 2026!", "!abc:hs") == "Team-chat-2026"
    assert convert.portal_name_base("...", "!a-b_c:example.org") == "matrix-ab_cexampleo"
    assert convert.portal_name_base("!!!", "!xyz:hs") == "matrix-xyzhs"


def test_sent_at_is_the_origin_time_but_never_in_the_future() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert convert.sent_at(int(datetime(2026, 11, 30, tzinfo=UTC).timestamp() * 1000), now) == datetime(
        2026, 11, 30, tzinfo=UTC)
    assert convert.sent_at(int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000), now) == now
    assert convert.sent_at(2**62, now) == now


def test_mentions_become_pills_and_m_mentions() -> None:
    html = ('<p>hi <span class="mention" data-username="bob:hs.example">@bob:hs.example</span> and '
            '<span class="mention" data-username="alice">@alice</span>, '
            '<span class="mention" data-username="all">@all</span></p>')
    assert convert.matrix_html(html, {"bob:hs.example": "@bob:hs.example", "alice": "@alice:concord.test"}) == (
        '<p>hi <a href="https://matrix.to/#/@bob:hs.example">@bob:hs.example</a> and '
        '<a href="https://matrix.to/#/@alice:concord.test">@alice</a>, '
        '<span class="mention" data-username="all">@all</span></p>')
    assert convert.mentions_content(["@b:x", "@a:y", "@b:x"], room=True) == {"user_ids": ["@a:y", "@b:x"], "room": True}
    assert convert.mentions_content() == {}
    assert convert.message_content("hi", mentions={})["m.mentions"] == {}
    edit = convert.edit_content("$o", "hi @alice", mentions={"user_ids": ["@alice:concord.test"]})
    assert edit["m.mentions"] == {} and edit["m.new_content"]["m.mentions"] == {"user_ids": ["@alice:concord.test"]}
    got = convert.incoming_message({"body": "Alice: look", "m.mentions": {"user_ids": ["@alice:c", 5], "room": True}},
                                   "Bob")
    assert got is not None and (got.mentioned_user_ids, got.mentions_room) == (("@alice:c",), True)
    assert convert.mentioned_in({"m.mentions": {"user_ids": "nope", "room": "yes"}}) == ([], False)


def test_roles_mutes_and_read_only_by_thresholds() -> None:
    pl = {"users_default": 0, "events_default": 0, "ban": 50, "kick": 50, "events": {"m.room.power_levels": 100}}
    assert [convert.role_for_level(pl, level) for level in (100, 99, 50, 49, 0, -1)] == [
        "owner", "moderator", "moderator", None, None, None]
    assert convert.role_for_level(pl, float("inf")) == "owner"  # a v12 creator
    # Muted: below both the members' level and the message level (ours: -1; Element's: also -1).
    assert convert.muted_level(pl) == -1
    assert [convert.is_muted(pl, level) for level in (-1, 0, 50)] == [True, False, False]
    assert not convert.is_read_only(pl)
    # Read-only: messages at the moderators' level; a muted member stays muted when it opens again.
    ro = convert.with_read_only(pl, True)
    assert ro["events_default"] == 50 and convert.is_read_only(ro) and convert.message_level(ro) == 50
    assert convert.muted_level(ro) == -1 and not convert.is_muted(ro, 0)
    assert convert.with_read_only(ro, False)["events_default"] == 0
    # A room that names m.room.message explicitly has that level moved too.
    explicit = {**pl, "events": {"m.room.message": 0}}
    assert convert.with_read_only(explicit, True)["events"]["m.room.message"] == 50
    assert convert.is_read_only({**pl, "events": {"m.room.message": 10}})
    # A chat member's level: muted first, then roles.
    assert convert.member_level(pl, ["owner"], False) == 100
    assert convert.member_level(pl, ["moderator"], True) == -1
    assert convert.member_level(pl, [], False) == 0
    # Garbage levels fall back to the spec's defaults.
    assert convert.message_level({"events_default": "x"}) == 0 and convert.moderator_level({"ban": None}) == 50
