"""Rocket.Chat-shaped JSON of rooms, subscriptions, messages and users (REST API and live events)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Prefetch

from rooms.models import Membership, Message, Room, Upload

if TYPE_CHECKING:
    from accounts.models import User


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_brief(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"_id": user.id, "username": user.username, "name": user.display_name}


def upload_url(upload: Upload) -> str:
    return f"/file-upload/{upload.id}/{upload.name}"


def upload_json(upload: Upload) -> dict[str, Any]:
    data: dict[str, Any] = {
        "_id": upload.id, "name": upload.name, "type": upload.content_type, "size": upload.size,
        "rid": upload.room_id, "userId": upload.user_id, "url": upload_url(upload),
        "uploadedAt": iso(upload.created_at), "description": upload.description,
        "kind": upload.kind, "confirmed": upload.confirmed,
    }
    if upload.thumbnail:
        data["thumbUrl"] = f"/file-upload/{upload.id}/thumb/{upload.name}"
    if upload.width:
        data["identify"] = {"size": {"width": upload.width, "height": upload.height}}
    return data


def attachment_for_upload(upload: Upload, description: str = "") -> dict[str, Any]:
    """The Rocket.Chat attachment object describing an uploaded file."""
    url = upload_url(upload)
    att: dict[str, Any] = {"title": upload.name, "title_link": url, "title_link_download": True,
                           "type": "file", "description": description}
    if upload.kind == "image":
        att.update({"image_url": url, "image_type": upload.content_type, "image_size": upload.size})
        if upload.thumbnail:
            att["image_preview"] = f"/file-upload/{upload.id}/thumb/{upload.name}"
        if upload.width:
            att["image_dimensions"] = {"width": upload.width, "height": upload.height}
    elif upload.kind == "audio":
        att.update({"audio_url": url, "audio_type": upload.content_type, "audio_size": upload.size})
    elif upload.kind == "video":
        att.update({"video_url": url, "video_type": upload.content_type, "video_size": upload.size})
    return att


def message_queryset() -> Any:
    return Message.objects.select_related(
        "user", "edited_by", "pinned_by", "file", "quoted", "quoted__user", "thread_root", "discussion"
    ).prefetch_related(
        Prefetch("reactions"), "reactions__user", "mentions__user", "followers",
    )


def message_json(msg: Message, *, fresh_mentions: list[User] | None = None) -> dict[str, Any]:
    """A message in Rocket.Chat's shape, plus ``html`` (our sanitized rendering).

    ``fresh_mentions`` is for a message just created in this process: its mentioned users are
    given, and it is known to have no reactions and no thread of its own, so no query runs.
    """
    fresh = fresh_mentions is not None
    mentions = fresh_mentions if fresh else [m.user for m in msg.mentions.all()]
    data: dict[str, Any] = {
        "_id": msg.id,
        "rid": msg.room_id,
        "msg": msg.text,
        "html": msg.html,
        "ts": iso(msg.created_at),
        "u": user_brief(msg.user),
        "_updatedAt": iso(msg.updated_at),
        "urls": [],
        "mentions": [user_brief(u) for u in (mentions or [])],
        "channels": [],
        "attachments": list(msg.attachments),
    }
    if msg.mentions_all:
        data["mentions"].append({"_id": "all", "username": "all"})
    if msg.mentions_here:
        data["mentions"].append({"_id": "here", "username": "here"})
    if msg.type:
        data["t"] = msg.type
    if msg.alias:
        data["alias"] = msg.alias
    if msg.emoji:
        data["emoji"] = msg.emoji
    if msg.avatar:
        data["avatar"] = msg.avatar
    if msg.edited_at:
        data["editedAt"] = iso(msg.edited_at)
        data["editedBy"] = user_brief(msg.edited_by)
    if msg.deleted_at:
        data["_hidden"] = False
        data["deleted"] = True
        data["deletedAt"] = iso(msg.deleted_at)
    reactions: dict[str, dict[str, list[str]]] = {}
    for r in ([] if fresh else msg.reactions.all()):
        entry = reactions.setdefault(r.emoji, {"usernames": [], "names": []})
        entry["usernames"].append(r.user.username)
        entry["names"].append(r.user.display_name)
    if reactions:
        data["reactions"] = reactions
    if msg.thread_root_id:
        data["tmid"] = msg.thread_root_id
        if not msg.show_in_room:
            data["tshow"] = False
        else:
            data["tshow"] = True
    if msg.thread_count:
        data["tcount"] = msg.thread_count
        data["tlm"] = iso(msg.thread_last_at)
        data["replies"] = [u.id for u in msg.followers.all()]
    if msg.file_id and msg.file is not None:
        f = msg.file
        data["file"] = {"_id": f.id, "name": f.name, "type": f.content_type, "size": f.size}
        data["files"] = [data["file"]]
    if msg.pinned:
        data["pinned"] = True
        data["pinnedAt"] = iso(msg.pinned_at)
        data["pinnedBy"] = user_brief(msg.pinned_by)
    if msg.discussion_id and msg.discussion is not None:
        # Rocket.Chat refreshes these on every post in the discussion; here they are read from it.
        data["drid"] = msg.discussion_id
        data["dcount"] = msg.discussion.message_count
        data["dlm"] = iso(msg.discussion.last_message_at)
    if msg.quoted_id and msg.quoted is not None:
        q = msg.quoted
        data["quote"] = {"_id": q.id, "msg": "" if q.deleted_at else q.text, "u": user_brief(q.user),
                         "ts": iso(q.created_at)}
    return data


def is_federated(room: Room) -> bool:
    """Whether the room is also a Matrix room (Rocket.Chat's ``federated``); no query when the
    caller selected ``matrix_room`` with the room."""
    cache = room._state.fields_cache
    if "matrix_room" in cache:
        return cache["matrix_room"] is not None
    if "federated_known" in room.__dict__:  # set by rooms_json
        return bool(room.__dict__["federated_known"])
    return Room.objects.filter(id=room.id, matrix_room__isnull=False).exists()


def rooms_json(rooms: Iterable[Room]) -> list[dict[str, Any]]:
    """:func:`room_json` of many rooms in a fixed number of queries: member counts, muted members
    and the Matrix link are read for all of them at once."""
    rooms = list(rooms)
    ids = [r.id for r in rooms]
    counts = dict(Membership.objects.filter(room_id__in=ids, state=Membership.JOINED).values("room_id")
                  .annotate(n=Count("id")).values_list("room_id", "n"))
    muted: dict[str, list[str]] = {}
    for room_id, username in (Membership.objects.filter(room_id__in=ids, state=Membership.JOINED, muted=True)
                              .order_by("user__username").values_list("room_id", "user__username")):
        muted.setdefault(room_id, []).append(username)
    federated = set(Room.objects.filter(id__in=ids, matrix_room__isnull=False).values_list("id", flat=True))
    out = []
    for room in rooms:
        room.__dict__["users_count"] = counts.get(room.id, 0)
        room.__dict__["muted_usernames"] = muted.get(room.id, [])
        if "matrix_room" not in room._state.fields_cache:
            room.__dict__["federated_known"] = room.id in federated
        out.append(room_json(room))
    return out


def room_json(room: Room) -> dict[str, Any]:
    data: dict[str, Any] = {
        "_id": room.id,
        "t": room.type,
        "name": room.name,
        "fname": room.fname or room.name,
        "topic": room.topic,
        "description": room.description,
        "announcement": room.announcement,
        "ro": room.read_only,
        "broadcast": room.broadcast,
        "federated": is_federated(room),
        "joinCodeRequired": bool(room.join_code),
        "historyVisibility": room.history_visibility,
        "archived": room.archived,
        "default": room.default,
        "msgs": room.message_count,
        "ts": iso(room.created_at),
        "_updatedAt": iso(room.updated_at),
        "lm": iso(room.last_message_at),
        "u": user_brief(room.creator),
        "usersCount": (room.__dict__["users_count"] if "users_count" in room.__dict__
                       else room.memberships.filter(state=Membership.JOINED).count()),
        "muted": (room.__dict__["muted_usernames"] if "muted_usernames" in room.__dict__
                  else sorted(room.memberships.filter(state=Membership.JOINED, muted=True)
                              .values_list("user__username", flat=True))),
    }
    data.update(room_links_json(room))
    if room.custom_fields:
        data["customFields"] = room.custom_fields
    if room.type == Room.DIRECT:
        members = list(room.memberships.filter(state=Membership.JOINED).select_related("user"))
        data["usernames"] = sorted(m.user.username for m in members)
        data["uids"] = sorted(m.user_id for m in members)
    return data


def room_links_json(room: Room) -> dict[str, Any]:
    """Rocket.Chat's discussion and team fields of a room, present only when they apply: ``prid``
    (the parent of a discussion), ``teamId``, ``teamMain`` (the team's main room) and
    ``teamDefault`` (team members join it). Reads no row."""
    data: dict[str, Any] = {}
    if room.parent_id:
        data["prid"] = room.parent_id
    if room.team_id:
        data["teamId"] = room.team_id
        if room.team_main:
            data["teamMain"] = True
        if room.team_default:
            data["teamDefault"] = True
    return data


def subscription_json(sub: Membership) -> dict[str, Any]:
    """The subscription in Rocket.Chat's shape; its counters derive from ``sub.room`` (fresh)."""
    room = sub.room
    unread = sub.unread
    name = room.name
    fname = room.fname or room.name
    if room.type == Room.DIRECT:
        others = [m.user for m in room.memberships.filter(state=Membership.JOINED).select_related("user")
                  if m.user_id != sub.user_id]
        if others:
            name = ", ".join(sorted(u.username for u in others))
            fname = ", ".join(sorted(u.display_name for u in others))
    return {
        "_id": sub.id,
        "rid": sub.room_id,
        "t": room.type,
        "name": name,
        "fname": fname,
        "u": user_brief(sub.user),
        "open": sub.open,
        "f": sub.favorite,
        "ignored": list(sub.ignored or []),
        "alert": unread > 0,
        "unread": unread,
        "userMentions": sub.user_mentions,
        "groupMentions": sub.group_mentions,
        "roles": list(sub.roles),
        "ls": iso(sub.last_read_at),
        "ts": iso(sub.joined_at),
        "_updatedAt": iso(sub.changed_at),
        "muted": sub.muted,
        "state": sub.state,
        "ro": room.read_only,
        "archived": room.archived,
        **room_links_json(room),
    }
