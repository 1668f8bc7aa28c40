"""``chat.*``: posting, editing, deleting, reacting, threads, pins, search, receipts and sync.

Each view parses its parameters, fetches what it acts on through :mod:`rooms.access` (so a private
room or its messages never leak to a non-member, and a banned user reads nothing) and calls one
``do_*`` action, which re-checks the right to post or change. Responses follow Rocket.Chat's shapes.

Quotes: Rocket.Chat's web client quotes by prefixing the text with ``[ ](<message permalink>)`` and
the server turns that into an attachment with ``message_link``; API clients may also send such an
attachment themselves. Both forms are accepted, as is our explicit ``quote`` field (a message id),
and all become :attr:`Message.quoted`, serialized as ``quote`` on the message.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.db.models import Q
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.permissions import has_permission
from chat import rate_limits
from chat.api import ApiView, bool_param, ok, pagination, param, str_param
from chat.api_errors import ApiError, NotFound
from rooms.access import UNKNOWN_MEMBERSHIP, access_message, access_room_and_membership, access_room_for_read
from rooms.actions.memberships import do_set_ignored
from rooms.actions.messages import (
    do_delete_message,
    do_edit_message,
    do_follow_thread,
    do_report_message,
    do_send_message,
    do_set_pinned,
    do_set_starred,
    do_toggle_reaction,
    read_receipts,
)
from rooms.actions.rooms import do_get_or_create_dm
from rooms.api.chat_params import date_param, id_param, message_page, messages_json
from rooms.models import Membership, Message, Room
from rooms.serialization import iso, message_json, message_queryset, user_brief

MAX_SEARCH_LENGTH = 500
_QUOTE_PREFIX_RE = re.compile(r"^\s*\[\s*\]\((?P<url>[^)\s]+)\)\s*")


def _fresh(msg: Message) -> dict[str, Any]:
    """The message's current JSON: the one the action just published, else read again."""
    published = getattr(msg, "wire_json", None)
    return published if published is not None else message_json(message_queryset().get(id=msg.id))


def _msg_id_from_link(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    values = parse_qs(urlsplit(url).query).get("msg")
    return values[0] if values else None


def extract_quote(text: Any, attachments: Any, explicit: Any) -> tuple[Any, Any, str | None]:
    """Split a quote out of a message: returns ``(text, attachments, quoted message id)``.

    The quote is, in order of precedence, ``explicit`` (an id or ``{"_id": ...}``), the first
    attachment carrying a ``message_link`` (removed from the attachments), or a leading
    ``[ ](permalink?msg=<id>)`` in the text (removed from the text). Inputs of the wrong type pass
    through untouched for the action to reject.
    """
    quoted: str | None = None
    if isinstance(explicit, dict):
        explicit = explicit.get("_id")
    if explicit is not None:
        if not isinstance(explicit, str) or not explicit:
            raise ApiError('The "quote" field must be a message id.', "error-invalid-params")
        quoted = explicit
    if isinstance(attachments, list):
        kept = []
        for att in attachments:
            linked = _msg_id_from_link(att.get("message_link")) if isinstance(att, dict) else None
            if linked:
                quoted = quoted or linked
            else:
                kept.append(att)
        attachments = kept
    if isinstance(text, str):
        match = _QUOTE_PREFIX_RE.match(text)
        linked = _msg_id_from_link(match.group("url")) if match else None
        if match and linked:
            quoted = quoted or linked
            text = text[match.end():]
    return text, attachments, quoted


def resolve_post_target(user: User, room_id: str | None, channel: str | None) -> tuple[Room, Membership | None]:
    """The room named by ``roomId`` or ``channel`` (``#name``, ``@username``, a name or an id),
    and the user's membership in it as read on the way.

    ``@username`` finds or creates the DM with that user. A private room the user cannot read is
    reported as not found. The membership is the row (None: the user has none), or
    :data:`rooms.access.UNKNOWN_MEMBERSHIP` for a DM found by username; :func:`do_send_message`
    takes it as is and reads it only when unknown.
    """
    if room_id:
        return access_room_and_membership(user, room_id=room_id)
    if not channel:
        raise ApiError('The "roomId" or "channel" param is required', "error-room-param-not-provided")
    if channel.startswith("@"):
        other = User.objects.filter(username=channel[1:], is_active=True).first()
        if other is None:
            raise NotFound("The user does not exist", "error-invalid-user")
        room, _created = do_get_or_create_dm(user, [other])
        return room, UNKNOWN_MEMBERSHIP
    if channel.startswith("#"):
        return access_room_and_membership(user, room_name=channel[1:], types=(Room.CHANNEL, Room.GROUP))
    if Room.objects.filter(id=channel).exists():
        return access_room_and_membership(user, room_id=channel)
    return access_room_and_membership(user, room_name=channel, types=(Room.CHANNEL, Room.GROUP))


def _check_message_room(msg: Message, room_id: str | None) -> None:
    if room_id and msg.room_id != room_id:
        raise ApiError("The room id provided does not match where the message is from.", "error-invalid-params")


def _thread_root(user: User, tmid: str | None) -> Message:
    root = access_message(user, tmid)
    if root.thread_root_id:
        raise ApiError("This message is a reply, not a thread", "error-invalid-message")
    return root


def limit_messages(user: User, room: Room) -> None:
    """The per-user, per-room message rate limit (``api-bypass-rate-limit`` holders exempt)."""
    if rate_limits.enabled() and not has_permission(user, "api-bypass-rate-limit"):
        rate_limits.check("messages", f"{user.pk}:{room.id}")


class PostMessageView(ApiView):
    """``chat.postMessage``: ``roomId`` or ``channel``; ``text``, ``alias``, ``emoji``, ``avatar``,
    ``attachments``, ``tmid``, ``tshow``, ``quote``. Answers ``{ts, channel, message}``."""

    def post(self, request: Request) -> Response:
        room, sub = resolve_post_target(request.user, id_param(request, "roomId", required=False),
                                        str_param(request, "channel", max_length=300))
        text, attachments, quoted = extract_quote(param(request, "text", ""), param(request, "attachments"),
                                                  param(request, "quote"))
        limit_messages(request.user, room)
        msg = do_send_message(
            request.user, room, text, attachments=attachments, quoted_id=quoted, membership=sub,
            thread_root_id=id_param(request, "tmid", required=False), show_in_room=bool_param(request, "tshow"),
            alias=str_param(request, "alias", "", max_length=255) or "",
            emoji=str_param(request, "emoji", "", max_length=64) or "",
            avatar=str_param(request, "avatar", "", max_length=1024) or "",
        )
        channel = room.name if room.type != Room.DIRECT else room.id
        return ok(ts=int(msg.created_at.timestamp() * 1000), channel=channel, message=_fresh(msg))


class SendMessageView(ApiView):
    """``chat.sendMessage``: a ``message`` object with ``rid``, ``msg`` and optionally ``_id``,
    ``tmid``, ``tshow``, ``alias``, ``emoji``, ``avatar``, ``attachments``, ``quote``."""

    def post(self, request: Request) -> Response:
        message = param(request, "message", required=True)
        if not isinstance(message, dict):
            raise ApiError('The "message" param must be an object.', "error-invalid-params")
        rid = message.get("rid")
        if not isinstance(rid, str) or not rid:
            raise ApiError('The "rid" param is required.', "error-invalid-params")
        room, sub = access_room_and_membership(request.user, room_id=rid)
        fields = {k: message.get(k) for k in ("alias", "emoji", "avatar")}
        for key, value in fields.items():
            if value is not None and not isinstance(value, str):
                raise ApiError(f'The "{key}" field must be a string.', "error-invalid-params")
        tmid, tshow = message.get("tmid"), message.get("tshow")
        if tmid is not None and not isinstance(tmid, str):
            raise ApiError('The "tmid" field must be a message id.', "error-invalid-params")
        if tshow is not None and not isinstance(tshow, bool):
            raise ApiError('The "tshow" field must be a boolean.', "error-invalid-params")
        text, attachments, quoted = extract_quote(message.get("msg", ""), message.get("attachments"),
                                                  message.get("quote"))
        limit_messages(request.user, room)
        msg = do_send_message(request.user, room, text, attachments=attachments, quoted_id=quoted, membership=sub,
                              thread_root_id=tmid or None, show_in_room=tshow, message_id=message.get("_id"),
                              alias=fields["alias"] or "", emoji=fields["emoji"] or "",
                              avatar=fields["avatar"] or "")
        return ok(message=_fresh(msg))


class UpdateView(ApiView):
    """``chat.update``: ``roomId``, ``msgId``, ``text``. The previous text goes to the edit history."""

    def post(self, request: Request) -> Response:
        msg = access_message(request.user, id_param(request, "msgId"))
        _check_message_room(msg, id_param(request, "roomId", required=False))
        text = param(request, "text", required=True)
        msg = do_edit_message(request.user, msg, text)
        return ok(message=_fresh(msg))


class DeleteView(ApiView):
    """``chat.delete``: ``roomId``, ``msgId``. Answers ``{_id, ts, message: {_id, rid, u}}``."""

    def post(self, request: Request) -> Response:
        msg = access_message(request.user, id_param(request, "msgId"))
        _check_message_room(msg, id_param(request, "roomId", required=False))
        do_delete_message(request.user, msg)
        msg.refresh_from_db()
        return ok(_id=msg.id, ts=int(msg.deleted_at.timestamp() * 1000) if msg.deleted_at else None,
                  message={"_id": msg.id, "rid": msg.room_id, "u": user_brief(msg.user)})


class ReactView(ApiView):
    """``chat.react``: ``messageId``, ``emoji`` (or ``reaction``), optional ``shouldReact``."""

    def post(self, request: Request) -> Response:
        msg = access_message(request.user, id_param(request, "messageId", "msgId"))
        emoji = str_param(request, "emoji", max_length=64) or str_param(request, "reaction", max_length=64)
        if not emoji:
            raise ApiError('The required "emoji" param is missing.', "error-invalid-params")
        do_toggle_reaction(request.user, msg, emoji, bool_param(request, "shouldReact"))
        return ok()


class GetMessageView(ApiView):
    """``chat.getMessage``: ``msgId``."""

    def get(self, request: Request) -> Response:
        return ok(message=_fresh(access_message(request.user, id_param(request, "msgId"))))


class EditHistoryView(ApiView):
    """``chat.getMessageEditHistory`` (Concord extension): ``msgId``.

    Answers ``{history: [{text, editedAt, editedBy}], message}``, oldest version first; the current
    text is the message itself. A deleted message has no history.
    """

    def get(self, request: Request) -> Response:
        msg = access_message(request.user, id_param(request, "msgId"))
        history = [{"text": e.previous_text, "editedAt": iso(e.edited_at), "editedBy": user_brief(e.edited_by)}
                   for e in msg.edits.select_related("edited_by").order_by("edited_at", "id")]
        return ok(history=history, count=len(history), message=_fresh(msg))


class ThreadMessagesView(ApiView):
    """``chat.getThreadMessages``: ``tmid``, ``offset``, ``count``. Replies, oldest first."""

    def get(self, request: Request) -> Response:
        root = _thread_root(request.user, id_param(request, "tmid"))
        qs = Message.objects.filter(thread_root=root, deleted_at__isnull=True).order_by("created_at", "id")
        return ok(**message_page(request, qs))


class ThreadsListView(ApiView):
    """``chat.getThreadsList``: ``rid``, ``type`` (``all``, ``following``, ``unread``), ``text``."""

    def get(self, request: Request) -> Response:
        room = access_room_for_read(request.user, room_id=id_param(request, "rid", "roomId"))
        qs = Message.objects.filter(room=room, thread_count__gt=0, thread_root__isnull=True)
        kind = str_param(request, "type", "all", max_length=20)
        if kind == "following":
            qs = qs.filter(followers=request.user)
        elif kind == "unread":
            sub = Membership.objects.filter(room=room, user=request.user).first()
            qs = qs.filter(followers=request.user)
            if sub is not None and sub.last_read_at is not None:
                qs = qs.filter(thread_last_at__gt=sub.last_read_at)
        elif kind != "all":
            raise ApiError('The "type" param must be all, following or unread.', "error-invalid-params")
        text = str_param(request, "text", max_length=MAX_SEARCH_LENGTH)
        if text:
            qs = qs.filter(text__icontains=text)
        return ok(**message_page(request, qs.order_by("-thread_last_at", "-id"), key="threads"))


class SyncThreadsListView(ApiView):
    """``chat.syncThreadsList``: ``rid``, ``updatedSince`` -> ``{threads: {update, remove}}``."""

    def get(self, request: Request) -> Response:
        room = access_room_for_read(request.user, room_id=id_param(request, "rid", "roomId"))
        since = date_param(request, "updatedSince", required=True)
        qs = Message.objects.filter(room=room, thread_count__gt=0, thread_root__isnull=True, updated_at__gt=since)
        ids = list(qs.order_by("-updated_at").values_list("id", flat=True)[:500])
        return ok(threads={"update": messages_json(ids), "remove": []})


class SyncThreadMessagesView(ApiView):
    """``chat.syncThreadMessages``: ``tmid``, ``updatedSince`` -> ``{messages: {update, remove}}``."""

    def get(self, request: Request) -> Response:
        root = _thread_root(request.user, id_param(request, "tmid"))
        since = date_param(request, "updatedSince", required=True)
        changed = Message.objects.filter(thread_root=root, updated_at__gt=since)
        ids = list(changed.filter(deleted_at__isnull=True).order_by("created_at").values_list("id", flat=True)[:500])
        removed = [{"_id": mid, "_deletedAt": iso(at)} for mid, at in
                   changed.filter(deleted_at__gt=since).values_list("id", "deleted_at")[:500]]
        return ok(messages={"update": messages_json(ids), "remove": removed})


class FollowView(ApiView):
    """``chat.followMessage`` / ``chat.unfollowMessage``: ``mid``."""

    follow = True

    def post(self, request: Request) -> Response:
        msg = access_message(request.user, id_param(request, "mid", "msgId"))
        do_follow_thread(request.user, msg, self.follow)
        return ok()


class UnfollowView(FollowView):
    follow = False


class ReadReceiptsView(ApiView):
    """``chat.getMessageReadReceipts``: ``messageId`` -> ``{receipts: [{userId, user, ts, ...}]}``."""

    def get(self, request: Request) -> Response:
        msg = access_message(request.user, id_param(request, "messageId", "msgId"))
        return ok(receipts=read_receipts(msg))


class SearchView(ApiView):
    """``chat.search``: ``roomId``, ``searchText``; newest first, paged."""

    def get(self, request: Request) -> Response:
        room = access_room_for_read(request.user, room_id=id_param(request, "roomId"))
        text = str_param(request, "searchText", required=True, max_length=MAX_SEARCH_LENGTH) or ""
        qs = Message.objects.filter(room=room, deleted_at__isnull=True, type="", text__icontains=text.strip())
        return ok(**message_page(request, qs.order_by("-created_at", "-id"), default_count=20))


class PinView(ApiView):
    """``chat.pinMessage`` / ``chat.unPinMessage``: ``messageId``. Answers the message."""

    pinned = True

    def post(self, request: Request) -> Response:
        msg = access_message(request.user, id_param(request, "messageId", "msgId"))
        msg = do_set_pinned(request.user, msg, self.pinned)
        return ok(message=_fresh(msg))


class UnpinView(PinView):
    pinned = False


class StarView(ApiView):
    """``chat.starMessage`` / ``chat.unStarMessage``: ``messageId`` (only for the caller)."""

    starred = True

    def post(self, request: Request) -> Response:
        msg = access_message(request.user, id_param(request, "messageId", "msgId"))
        do_set_starred(request.user, msg, self.starred)
        return ok()


class ReportMessageView(ApiView):
    """``chat.reportMessage {messageId, description}``: to the server's moderators."""

    def post(self, request: Request) -> Response:
        msg = access_message(request.user, id_param(request, "messageId", "msgId"))
        do_report_message(request.user, msg, param(request, "description"))
        return ok()


class IgnoreUserView(ApiView):
    """``chat.ignoreUser?rid=&userId=&ignore=true|false`` (GET, as in Rocket.Chat): hide a member's
    messages in one's own view of the room (the subscription's ``ignored``)."""

    def get(self, request: Request) -> Response:
        rid = id_param(request, "rid")
        user_id = id_param(request, "userId")
        room, sub = access_room_and_membership(request.user, room_id=rid)
        if sub is None or sub.state != Membership.JOINED:
            raise ApiError("Invalid subscription", "error-invalid-subscription")
        other = User.objects.filter(id=user_id).first()
        if other is None or other.id == request.user.id:
            raise ApiError("Invalid user", "error-invalid-user")
        do_set_ignored(sub, other, bool(bool_param(request, "ignore", True)))
        return ok()


class StarredMessagesView(ApiView):
    """``chat.getStarredMessages``: ``roomId``; the caller's starred messages, newest first, each
    with ``starred: [{_id}]`` (the caller: stars are private)."""

    def get(self, request: Request) -> Response:
        room = access_room_for_read(request.user, room_id=id_param(request, "roomId"))
        qs = Message.objects.filter(room=room, deleted_at__isnull=True, stars__user=request.user)
        page = message_page(request, qs.order_by("-created_at", "-id"))
        for m in page["messages"]:
            m["starred"] = [{"_id": request.user.id}]
        return ok(**page)


class PinnedMessagesView(ApiView):
    """``chat.getPinnedMessages``: ``roomId``; most recently pinned first, paged."""

    def get(self, request: Request) -> Response:
        room = access_room_for_read(request.user, room_id=id_param(request, "roomId"))
        qs = Message.objects.filter(room=room, pinned=True, deleted_at__isnull=True)
        return ok(**message_page(request, qs.order_by("-pinned_at", "-id")))


class MentionedMessagesView(ApiView):
    """``chat.getMentionedMessages``: ``roomId``; messages mentioning the caller by name, newest first."""

    def get(self, request: Request) -> Response:
        room = access_room_for_read(request.user, room_id=id_param(request, "roomId"))
        qs = Message.objects.filter(room=room, deleted_at__isnull=True, mentions__user=request.user)
        return ok(**message_page(request, qs.order_by("-created_at", "-id")))


class DeletedMessagesView(ApiView):
    """``chat.getDeletedMessages``: ``roomId``, ``since`` -> ``{messages: [{_id, _deletedAt}], ...}``."""

    def get(self, request: Request) -> Response:
        room = access_room_for_read(request.user, room_id=id_param(request, "roomId"))
        since = date_param(request, "since", required=True)
        offset, count = pagination(request)
        qs = Message.objects.filter(room=room, deleted_at__gte=since).order_by("deleted_at", "id")
        rows = [{"_id": mid, "_deletedAt": iso(at)}
                for mid, at in qs.values_list("id", "deleted_at")[offset:offset + count]]
        return ok(messages=rows, count=len(rows), offset=offset, total=qs.count())


class SyncMessagesView(ApiView):
    """``chat.syncMessages``: ``roomId``, ``lastUpdate`` -> ``{result: {updated, deleted}}``.

    ``updated`` holds up to 500 live messages changed after ``lastUpdate`` (oldest change first),
    ``deleted`` the tombstones deleted after it as ``{_id, _deletedAt}``.
    """

    def get(self, request: Request) -> Response:
        room = access_room_for_read(request.user, room_id=id_param(request, "roomId"))
        since = date_param(request, "lastUpdate", required=True)
        changed = Message.objects.filter(room=room, updated_at__gt=since)
        ids = list(changed.filter(deleted_at__isnull=True).order_by("updated_at", "id")
                   .values_list("id", flat=True)[:500])
        deleted = [{"_id": mid, "_deletedAt": iso(at)} for mid, at in
                   changed.filter(Q(deleted_at__gt=since)).order_by("deleted_at").values_list("id", "deleted_at")[:500]]
        return ok(result={"updated": messages_json(ids), "deleted": deleted})

