"""``subscriptions.*`` and ``rooms.get``/``rooms.info``: what the caller belongs to and its counters.

With ``updatedSince`` both list calls answer only what changed after that moment, as Rocket.Chat's
``{update: [...], remove: [...]}``: ``remove`` lists the rooms the caller left (or was removed
from) since then, so a reconnecting client can bring its list up to date.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import has_permission
from chat.api import ApiView, bool_param, json_param, ok, param, str_param
from chat.api_errors import ApiError, NotAllowed
from rooms.access import access_joined_room, access_room_for_read, can_read
from rooms.actions.memberships import do_set_favorite
from rooms.actions.messages import do_mark_read, do_mark_unread
from rooms.actions.rooms import do_delete_room
from rooms.api.chat_params import date_param, id_param
from rooms.models import Membership, Message, Room
from rooms.serialization import iso, room_json, rooms_json, subscription_json

LISTED_STATES = (Membership.JOINED, Membership.INVITED)


def _removed(user: Any, since: Any) -> list[dict[str, Any]]:
    left = (Membership.objects.filter(user=user, state=Membership.LEFT, updated_at__gt=since)
            .values_list("id", "room_id", "updated_at"))
    return [{"_id": sid, "rid": rid, "_deletedAt": iso(at)} for sid, rid, at in left]


class SubscriptionsGetView(ApiView):
    """``subscriptions.get``: the caller's subscriptions (joined and invited), or with
    ``updatedSince`` those changed since then plus ``remove`` for rooms left since then."""

    def get(self, request: Request) -> Response:
        since = date_param(request, "updatedSince")
        subs = Membership.objects.filter(user=request.user, state__in=LISTED_STATES).select_related("room", "user")
        if since is None:
            return ok(update=[subscription_json(s) for s in subs.order_by("joined_at")], remove=[])
        # A post moves joined members' counters without writing their rows: room.counters_at says when.
        subs = subs.filter(Q(updated_at__gt=since) | Q(room__updated_at__gt=since)
                           | Q(state=Membership.JOINED, room__counters_at__gt=since))
        return ok(update=[subscription_json(s) for s in sorted(subs, key=lambda s: (s.changed_at, s.id))],
                  remove=_removed(request.user, since))


class SubscriptionsGetOneView(ApiView):
    """``subscriptions.getOne``: ``roomId`` -> ``{subscription}`` (null when not subscribed)."""

    def get(self, request: Request) -> Response:
        room_id = id_param(request, "roomId")
        sub = (Membership.objects.filter(user=request.user, room_id=room_id, state__in=LISTED_STATES)
               .select_related("room", "user").first())
        return ok(subscription=subscription_json(sub) if sub is not None else None)


class SubscriptionsReadView(ApiView):
    """``subscriptions.read``: ``rid`` (or ``roomId``). Clears the counters, records the receipt."""

    def post(self, request: Request) -> Response:
        room, _sub = access_joined_room(request.user, room_id=id_param(request, "rid", "roomId"))
        do_mark_read(request.user, room)
        return ok()


class SubscriptionsUnreadView(ApiView):
    """``subscriptions.unread``: ``roomId``, or ``firstUnreadMessage: {_id}`` to mark unread from there."""

    def post(self, request: Request) -> Response:
        first = param(request, "firstUnreadMessage")
        from_message: Message | None = None
        if first is not None:
            mid = first.get("_id") if isinstance(first, dict) else None
            if not isinstance(mid, str) or not mid:
                raise ApiError('"firstUnreadMessage" must be {"_id": <message id>}', "error-invalid-params")
            from_message = Message.objects.filter(id=mid).first()
            if from_message is None:
                raise ApiError("Message not found", "error-message-not-found")
            room, _sub = access_joined_room(request.user, room_id=from_message.room_id)
        else:
            room, _sub = access_joined_room(request.user, room_id=id_param(request, "roomId"))
        do_mark_unread(request.user, room, from_message)
        return ok()


class RoomsGetView(ApiView):
    """``rooms.get``: the rooms the caller has joined; with ``updatedSince`` only those changed
    (settings, last message, or the caller's membership) plus ``remove`` for rooms left since."""

    def get(self, request: Request) -> Response:
        since = date_param(request, "updatedSince")
        subs = Membership.objects.filter(user=request.user, state=Membership.JOINED)
        rooms = Room.objects.filter(id__in=subs.values("room_id")).select_related("creator", "matrix_room")
        if since is None:
            return ok(update=rooms_json(rooms.order_by("created_at")), remove=[])
        changed_subs = subs.filter(updated_at__gt=since).values("room_id")
        rooms = rooms.filter(Q(updated_at__gt=since) | Q(last_message_at__gt=since) | Q(id__in=changed_subs))
        removed = [{"_id": r["rid"], "_deletedAt": r["_deletedAt"]} for r in _removed(request.user, since)]
        return ok(update=rooms_json(rooms.order_by("created_at")), remove=removed)


class RoomsInfoView(ApiView):
    """``rooms.info``: ``roomId`` or ``roomName`` -> ``{room}``; private rooms only for members."""

    def get(self, request: Request) -> Response:
        room_id = id_param(request, "roomId", required=False)
        room_name = None if room_id else id_param(request, "roomName", required=False)
        room = access_room_for_read(request.user, room_id=room_id, room_name=room_name)
        return ok(room=room_json(room))


class FavoriteView(ApiView):
    """``rooms.favorite {roomId | roomName, favorite}``: the caller's own room list."""

    def post(self, request: Request) -> Response:
        favorite = bool_param(request, "favorite")
        if favorite is None:
            raise ApiError('The "favorite" param is required', "error-invalid-params")
        room_id = id_param(request, "roomId", required=False)
        room_name = None if room_id else id_param(request, "roomName", required=False)
        room, sub = access_joined_room(request.user, room_id, room_name)
        do_set_favorite(sub, favorite)
        return ok()


class NameExistsView(ApiView):
    """``rooms.nameExists?roomName=``: whether a channel or group has that name."""

    def get(self, request: Request) -> Response:
        name = str_param(request, "roomName", max_length=300)
        if not name:
            raise ApiError("must have required property 'roomName' [invalid-params]", "invalid-params")
        exists = Room.objects.filter(name=name.lstrip("#"), type__in=(Room.CHANNEL, Room.GROUP)).exists()
        return ok(exists=exists)


class InvitationsView(ApiView):
    """``rooms.invitations?roomId=`` (our extension): the room's pending invitations, for its
    members: ``{invitations: [{_id, username, name, invitedBy, invitedAt}]}``."""

    def get(self, request: Request) -> Response:
        room_id = id_param(request, "roomId", required=False)
        room, _ = access_joined_room(request.user, room_id, None)
        subs = (Membership.objects.filter(room=room, state=Membership.INVITED)
                .select_related("user", "invited_by").order_by("invited_at", "joined_at"))
        return ok(invitations=[{"_id": m.user_id, "username": m.user.username, "name": m.user.display_name,
                                "invitedBy": m.invited_by.username if m.invited_by else None,
                                "invitedAt": iso(m.invited_at or m.joined_at)} for m in subs[:500]])


class RoomsDeleteView(ApiView):
    """``rooms.delete {roomId}``: any room type, with its type's permission (``delete-c``,
    ``delete-p``, ``delete-d``), as Rocket.Chat."""

    def post(self, request: Request) -> Response:
        room_id = id_param(request, "roomId")
        room = Room.objects.filter(id=room_id).first()
        if room is None or not (can_read(request.user, room)
                                or has_permission(request.user, "view-room-administration")):
            raise ApiError('The required "roomId" param provided does not match any room', "error-room-not-found")
        if not has_permission(request.user, f"delete-{room.type}", room):
            raise NotAllowed("Not allowed", "error-not-allowed")
        do_delete_room(room, by=request.user)
        return ok()


class RoomsAutocompleteView(ApiView):
    """``rooms.autocomplete.channelAndPrivate?selector={"name": "..."}``: channels and groups the
    caller is in whose name starts with the term: ``{items: [{_id, name, fname, t, avatarETag}]}``."""

    def get(self, request: Request) -> Response:
        selector = json_param(request, "selector")
        if not isinstance(selector, dict) or not isinstance(selector.get("name", ""), str):
            raise ApiError("The 'selector' param is required", "error-invalid-params")
        term = str(selector.get("name", ""))[:100]
        joined = Membership.objects.filter(user=request.user, state=Membership.JOINED).values("room_id")
        rooms = (Room.objects.filter(id__in=joined, type__in=(Room.CHANNEL, Room.GROUP), name__istartswith=term)
                 .order_by("name")[:10])
        return ok(items=[{"_id": r.id, "name": r.name, "fname": r.fname or r.name, "t": r.type, "avatarETag": None}
                         for r in rooms])
