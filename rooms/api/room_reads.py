"""Read queries behind the room-level endpoints: history, message lists, members, roles, counters.

These never write. Each takes rooms and users the caller has already been allowed to see (the
views fetch them through :mod:`rooms.api.room_common`), so none of them checks access again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from chat.api_errors import ApiError
from rooms.models import Membership, Message, Room, Upload
from rooms.serialization import iso, message_json, message_queryset, rooms_json, upload_json, user_brief


@dataclass(frozen=True)
class HistoryQuery:
    """Rocket.Chat's history parameters.

    ``latest``/``oldest`` bound the creation time (exclusive unless ``inclusive``);
    ``show_thread_messages`` also returns thread replies that were not sent to the room;
    ``hidden`` is what the reader may not see (:func:`rooms.access.hidden_history`).
    """

    latest: datetime | None = None
    oldest: datetime | None = None
    inclusive: bool = False
    offset: int = 0
    count: int = 20
    show_thread_messages: bool = False
    hidden: Q | None = None


def _visible_in_room(qs: QuerySet[Message], show_thread_messages: bool) -> QuerySet[Message]:
    if show_thread_messages:
        return qs
    return qs.filter(Q(thread_root__isnull=True) | Q(show_in_room=True))


def room_history(room: Room, query: HistoryQuery) -> list[Message]:
    """Messages of ``room``, newest first, within the query's bounds and page.

    Guarantees: deleted messages are included (their JSON is a tombstone); thread replies that
    were not also sent to the room are left out unless asked for; order is stable (time, then id).
    """
    latest = query.latest or timezone.now()
    qs = message_queryset().filter(room=room)
    if query.hidden is not None:
        qs = qs.exclude(query.hidden)
    qs = qs.filter(created_at__lte=latest) if query.inclusive else qs.filter(created_at__lt=latest)
    if query.oldest is not None:
        qs = qs.filter(created_at__gte=query.oldest) if query.inclusive else qs.filter(created_at__gt=query.oldest)
    qs = _visible_in_room(qs, query.show_thread_messages).order_by("-created_at", "-id")
    return list(qs[query.offset:query.offset + query.count])


def unread_info(room: Room, sub: Membership | None, loaded: list[Message]) -> dict[str, Any]:
    """``firstUnread`` and ``unreadNotLoaded`` for a history page (Rocket.Chat's ``unreads=true``)."""
    if sub is None or sub.state != Membership.JOINED or sub.last_read_at is None:
        return {"unreadNotLoaded": 0}
    unread = _visible_in_room(Message.objects.filter(room=room, created_at__gt=sub.last_read_at), False)
    unread = unread.exclude(user=sub.user)
    data: dict[str, Any] = {}
    first = message_queryset().filter(id__in=unread.values("id")).order_by("created_at", "id").first()
    if first is not None:
        data["firstUnread"] = message_json(first)
    oldest_loaded = loaded[-1].created_at if loaded else None
    data["unreadNotLoaded"] = unread.filter(created_at__lt=oldest_loaded).count() if oldest_loaded else 0
    return data


SORTABLE_MESSAGE_FIELDS = {"ts": "created_at", "_updatedAt": "updated_at"}


def room_messages(room: Room, *, query: Any, sort: Any, offset: int, count: int,
                  hidden: Q | None = None) -> tuple[list[Message], int]:
    """A page of ``room``'s messages for ``*.messages`` and the total matching.

    Understands the ``query`` filters Rocket.Chat clients send for it (``pinned``,
    ``mentions._id``, ``u.username``, ``msg`` with ``$regex``) and ``sort`` on ``ts``/``_updatedAt``;
    default order is newest first. Anything else in ``query`` is refused rather than ignored.
    ``hidden``: what the reader may not see (:func:`rooms.access.hidden_history`).
    """
    qs = _visible_in_room(message_queryset().filter(room=room), True)
    if hidden is not None:
        qs = qs.exclude(hidden)
    if query is not None:
        if not isinstance(query, dict):
            raise ApiError('"query" must be a JSON object', "error-invalid-params")
        for key, value in query.items():
            if key == "pinned":
                qs = qs.filter(pinned=bool(value))
            elif key == "mentions._id":
                qs = qs.filter(mentions__user_id=str(value))
            elif key == "u.username":
                qs = qs.filter(user__username=str(value))
            elif key == "u._id":
                qs = qs.filter(user_id=str(value))
            elif key == "msg" and isinstance(value, dict) and isinstance(value.get("$regex"), str):
                qs = qs.filter(text__icontains=value["$regex"])
            elif key == "msg" and isinstance(value, str):
                qs = qs.filter(text=value)
            else:
                raise ApiError(f'Unsupported query field "{key}"', "error-invalid-params")
    order = ["-created_at", "-id"]
    if sort is not None:
        if not isinstance(sort, dict) or len(sort) != 1:
            raise ApiError('"sort" must be a JSON object with one field', "error-invalid-params")
        ((field, direction),) = sort.items()
        if field not in SORTABLE_MESSAGE_FIELDS or direction not in (1, -1):
            raise ApiError(f'Unsupported sort "{field}"', "error-invalid-params")
        prefix = "-" if direction == -1 else ""
        order = [prefix + SORTABLE_MESSAGE_FIELDS[field], prefix + "id"]
    qs = qs.order_by(*order).distinct()
    return list(qs[offset:offset + count]), qs.count()


def room_members(room: Room, *, offset: int, count: int, term: str = "",
                 statuses: list[str] | None = None) -> tuple[list[User], int]:
    """A page of the joined members of ``room`` sorted by username, and their total."""
    qs = User.objects.filter(memberships__room=room, memberships__state=Membership.JOINED).prefetch_related("roles")
    if term:
        qs = qs.filter(Q(username__icontains=term) | Q(name__icontains=term))
    if statuses:
        qs = qs.filter(status__in=statuses)
    qs = qs.order_by("username")
    return list(qs[offset:offset + count]), qs.count()


def room_roles(room: Room) -> list[dict[str, Any]]:
    """Every joined member holding a room role, as ``{_id, rid, u, roles}``."""
    subs = Membership.objects.filter(room=room, state=Membership.JOINED).select_related("user").order_by("joined_at")
    return [{"_id": s.id, "rid": room.id, "u": user_brief(s.user), "roles": list(s.roles)}
            for s in subs if s.roles]


def room_moderators(room: Room) -> list[dict[str, Any] | None]:
    subs = Membership.objects.filter(room=room, state=Membership.JOINED).select_related("user").order_by("joined_at")
    return [user_brief(s.user) for s in subs if "moderator" in s.roles]


def room_files(room: Room, *, offset: int, count: int, images_only: bool = False, until: datetime | None = None,
               only_id: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """A page of the files shared in ``room`` (newest first) and their total.

    Only confirmed uploads count (an upload nobody posted is not shared yet), and a file whose
    message was deleted is gone with it. ``images_only``: only images; ``until``: only files
    uploaded then or before; ``only_id``: that upload only.
    """
    deleted = Message.objects.filter(room=room, deleted_at__isnull=False, file__isnull=False).values("file_id")
    qs = (Upload.objects.filter(room=room, confirmed=True).exclude(id__in=deleted)
          .select_related("user").order_by("-created_at", "-id"))
    if images_only:
        qs = qs.filter(content_type__startswith="image/")
    if until is not None:
        qs = qs.filter(created_at__lte=until)
    if only_id is not None:
        qs = qs.filter(id=only_id)
    files = []
    for upload in qs[offset:offset + count]:
        data = upload_json(upload)
        data["user"] = user_brief(upload.user)
        files.append(data)
    return files, qs.count()


def room_counters(room: Room, user: User) -> dict[str, Any]:
    """Rocket.Chat's ``*.counters``: membership, unread and mention counts of ``user`` in ``room``."""
    sub = Membership.objects.filter(room=room, user=user, state=Membership.JOINED).select_related("room").first()
    members = room.memberships.filter(state=Membership.JOINED).count()
    return {
        "joined": sub is not None,
        "members": members,
        "unreads": sub.unread if sub is not None else None,
        "unreadsFrom": iso(sub.last_read_at) if sub is not None else None,
        "msgs": room.message_count,
        "latest": iso(room.last_message_at),
        "userMentions": sub.user_mentions if sub is not None else 0,
    }


def rooms_page(qs: QuerySet[Room], *, offset: int, count: int, name: str = "") -> tuple[list[dict[str, Any]], int]:
    """A page of rooms (JSON) sorted by name, optionally filtered by a name fragment, and the total."""
    if name:
        qs = qs.filter(Q(name__icontains=name) | Q(fname__icontains=name))
    qs = qs.select_related("creator").order_by("name", "id")
    return rooms_json(qs[offset:offset + count]), qs.count()


def dms_page(user: User, *, offset: int, count: int, everyone: bool = False) -> tuple[list[dict[str, Any]], int]:
    """A page of DMs (the caller's, or all when ``everyone``), most recently active first."""
    qs = Room.objects.filter(type=Room.DIRECT)
    if not everyone:
        qs = qs.filter(memberships__user=user, memberships__state=Membership.JOINED)
    qs = qs.select_related("creator").order_by(F("last_message_at").desc(nulls_last=True), "-created_at", "id")
    return rooms_json(qs[offset:offset + count]), qs.count()
