"""Sending, editing, deleting, reacting to, pinning and reading messages."""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.permissions import has_permission
from chat.api_errors import ApiError, NotAllowed
from chat.hot_insert import HotInsert
from federation import hooks as federation_hooks
from rooms.access import UNKNOWN_MEMBERSHIP, check_can_post
from rooms.actions import integration_triggers, message_rules
from rooms.events import LiveEvent, send_many_to_room, send_to_room, send_to_user
from rooms.markdown import mentioned_usernames, render_markdown
from rooms.models import Membership, Mention, Message, MessageEdit, MessageReport, Reaction, Room, Star, Upload
from rooms.serialization import iso, message_json, message_queryset, subscription_json, user_brief

if TYPE_CHECKING:
    from accounts.models import User

MAX_MESSAGE_LENGTH = 20000
EMOJI_MAX = 64
MAX_ATTACHMENTS_BYTES = 64 * 1024
MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Attachment fields that clients turn into links or media sources.
_ATTACHMENT_URL_FIELDS = ("title_link", "image_url", "audio_url", "video_url", "thumb_url", "author_link",
                          "author_icon", "message_link", "image_preview")
_MESSAGE_INSERT = HotInsert(Message)  # one compiled INSERT for every post (chat/hot_insert.py)
_PQ_IDLE = 0  # libpq's PQTRANS_IDLE (psycopg.pq.TransactionStatus.IDLE): no transaction open


def _id_taken() -> ApiError:
    return ApiError("A message with this id already exists", "error-message-id-exists")


@contextlib.contextmanager
def _refusing_a_taken_id(message_id: str | None) -> Iterator[None]:
    """A client-chosen message id that the database refuses as taken (two posts with one id at
    once: both passed the check before either inserted) is the same answer as the check's."""
    try:
        yield
    except IntegrityError as exc:
        cause = exc.__cause__
        constraint = getattr(getattr(cause, "diag", None), "constraint_name", None)
        taken = (constraint == f"{Message._meta.db_table}_pkey" if constraint is not None
                 else f"{Message._meta.db_table}.id" in str(exc))  # SQLite names the column only
        if message_id and taken:
            raise _id_taken() from exc
        raise


def _check_text(text: Any, *, allow_empty: bool = False) -> str:
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise ApiError("The message text must be a string", "error-invalid-params")
    if "\x00" in text:
        raise ApiError("The message contains a NUL character", "error-invalid-params")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise ApiError(f"Message too long (at most {MAX_MESSAGE_LENGTH} characters)", "error-message-size-exceeded")
    if not allow_empty and not text.strip():
        raise ApiError("The message is empty", "error-invalid-params")
    return text


def _check_url(value: Any) -> None:
    if not isinstance(value, str):
        raise ApiError("Attachment links must be strings", "error-invalid-attachment")
    lowered = value.strip().lower()
    if lowered.startswith(("http://", "https://")) or (lowered.startswith("/") and not lowered.startswith("//")):
        return
    if lowered.startswith("data:image/") and len(value) < 32 * 1024:  # Rocket.Chat's inline previews
        return
    raise ApiError("Attachment links must be http(s) URLs or local paths", "error-invalid-attachment")


def check_attachments(attachments: Any) -> list[dict[str, Any]]:
    """Validate Rocket.Chat message attachments.

    Guarantees: a list of JSON objects of at most ``MAX_ATTACHMENTS_BYTES`` serialized, whose link
    and media fields (also in nested ``attachments``) are http(s) URLs or local paths, never
    ``javascript:`` or other schemes. Text fields are stored as given; clients render them as text.
    """
    if attachments is None:
        return []
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        raise ApiError("attachments must be a list of objects", "error-invalid-attachment")
    try:
        size = len(json.dumps(attachments, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ApiError("attachments must be JSON", "error-invalid-attachment") from exc
    if size > MAX_ATTACHMENTS_BYTES:
        raise ApiError(f"attachments too large (at most {MAX_ATTACHMENTS_BYTES} bytes)", "error-invalid-attachment")

    def walk(items: list[Any], depth: int) -> None:
        for att in items:
            if not isinstance(att, dict) or depth > 3:
                raise ApiError("attachments must be a list of objects", "error-invalid-attachment")
            for key in _ATTACHMENT_URL_FIELDS:
                if att.get(key) not in (None, ""):
                    _check_url(att[key])
            nested = att.get("attachments")
            if nested is not None:
                if not isinstance(nested, list):
                    raise ApiError("attachments must be a list of objects", "error-invalid-attachment")
                walk(nested, depth + 1)

    walk(attachments, 0)
    return attachments


def publish_message(msg: Message) -> None:
    """Send the message's current JSON to the room (``message.updated``) after commit."""
    _publish(msg)


def _publish(msg: Message, kind: str = "message.updated", fresh_mentions: list[User] | None = None) -> None:
    """Send the message's JSON to the room after commit; also kept on ``msg.wire_json`` for the caller."""
    data = message_json(msg if fresh_mentions is not None else message_queryset().get(id=msg.id),
                        fresh_mentions=fresh_mentions)
    msg.wire_json = data  # type: ignore[attr-defined]
    send_to_room(msg.room_id, LiveEvent(kind, msg.room_id, data))  # type: ignore[arg-type]


def _mention_targets(text: str, room: Room, sender: User, also: Iterable[str] = ()) -> tuple[list[User], bool, bool]:
    """Who ``text`` mentions: (room members named by ``@user``, ``@all`` allowed, ``@here`` allowed).

    ``also`` adds usernames (or ``all``/``here``) mentioned outside the text (a Matrix message's
    ``m.mentions``). No query when nobody is named (the common case); ``@all``/``@here`` count only
    with the sender's ``mention-all``/``mention-here`` permission in the room.
    """
    names = mentioned_usernames(text) | set(also)
    mention_all = "all" in names and has_permission(sender, "mention-all", room)
    mention_here = "here" in names and has_permission(sender, "mention-here", room)
    names -= {"all", "here"}
    names |= {"@" + n for n in names if ":" in n and not n.startswith("@")}  # a remote user: @bob:example.org
    users: list[User] = []
    if names:
        subs = Membership.objects.filter(room=room, user__username__in=names).select_related("user")
        users = [sub.user for sub in subs]
    return users, mention_all, mention_here


def _store_mentions(msg: Message, room: Room, sender: User, also: Iterable[str] = ()) -> tuple[list[User], bool, bool]:
    """Record ``@user`` mentions of room members on a saved message; returns (users, @all, @here).

    Sets ``msg.mentions_all``/``mentions_here`` without saving them.
    """
    users, mention_all, mention_here = _mention_targets(msg.text, room, sender, also)
    if users:
        Mention.objects.bulk_create([Mention(message=msg, user=u) for u in users], ignore_conflicts=True)
    msg.mentions_all, msg.mentions_here = mention_all, mention_here
    return users, mention_all, mention_here


# The per-message counters on PostgreSQL, in one statement. The room row is updated first (the
# sender's and the others' updates need its new counters, so they run after it), so concurrent
# posts to a room queue on the room row and never lock membership rows in different orders.
_PG_ROOM_SQL = """
WITH r AS (UPDATE rooms_room SET last_message_at = %(now)s, message_count = message_count + 1,
                  shown_count = shown_count + %(shown)s, group_mention_count = group_mention_count + %(group)s,
                  counters_at = CASE WHEN %(shown)s + %(group)s > 0 THEN %(now)s ELSE counters_at END
           WHERE id = %(room)s RETURNING id, shown_count, group_mention_count)
"""
# The sender's row, settled (Membership.settle) and read up to its own message.
_PG_SENDER_SQL = """
UPDATE rooms_membership AS m SET
    open_flag = m.open_flag OR (m.state = 'joined' AND r.shown_count - %(shown)s > m.seen_shown),
    unread_base = 0, user_mentions = 0, group_mentions_base = 0,
    seen_shown = GREATEST(m.seen_shown, r.shown_count), seen_group = GREATEST(m.seen_group, r.group_mention_count),
    last_read_at = %(now)s, updated_at = %(now)s
FROM r WHERE m.room_id = %(room)s AND m.user_id = %(sender)s
"""
# Only the joined members the post mentions, or (a reply kept in its thread) the thread's followers.
_PG_OTHERS_SQL = """
UPDATE rooms_membership AS m SET
    unread_base = m.unread_base + CASE WHEN m.user_id = ANY(%(followers)s) THEN 1 ELSE 0 END,
    user_mentions = m.user_mentions + CASE WHEN m.user_id = ANY(%(mentioned)s) THEN 1 ELSE 0 END,
    updated_at = %(now)s
WHERE m.room_id = (SELECT id FROM r) AND m.user_id = ANY(%(targets)s) AND m.state = 'joined'
  AND m.user_id <> %(sender)s
"""


def _commits_on_exit(connection: Any) -> bool:
    """Whether the innermost open ``atomic`` block is the outermost one and will commit on exit."""
    return (connection.in_atomic_block and len(connection.atomic_blocks) == 1 and not connection.savepoint_ids
            and connection.commit_on_exit and not connection.needs_rollback)


@dataclass(frozen=True)
class _Bump:
    """The counter change of one new message (see :func:`_bump_counters`)."""

    sender: User
    in_room: bool
    followers: list[str]
    mentioned: list[str]
    group: bool
    now: datetime  # the message's time (what "read up to" and "updated" become)


def _bump_counters(room: Room, sender: User, now: datetime, *, in_room: bool, followers: list[str],
                   mentioned: list[str], group: bool, before: tuple[str, dict[str, Any]] | None = None) -> None:
    """Move the counters for one new message: the room's row, the sender's, and only the rows of
    members whose stored counts change.

    Room: ``last_message_at``, ``message_count``; ``shown_count`` + 1 when the message shows in the
    room and ``group_mention_count`` + 1 for ``@all``/``@here``, which moves every other joined
    member's derived ``unread``/``open``/``group_mentions`` (and ``changed_at``, through
    ``counters_at = now``) without writing their rows (see :mod:`rooms.models.rooms`). The sender:
    settled and read up to ``now`` (counters cleared, markers at the room's new counters). Written
    only when there are any: ``unread_base`` + 1 for thread ``followers`` (a reply not shown in the
    room) and ``user_mentions`` + 1 for ``mentioned``, joined members other than the sender; their
    ``updated_at = now`` (queryset updates skip ``auto_now``).

    The room row is shared by every post to the room, and its lock is held until commit, so
    concurrent posts to one room serialize here: call this last in the transaction. On PostgreSQL
    it is one statement; and when the caller's ``atomic`` block is the outermost one (it will commit
    on exit), ``COMMIT`` is sent in the same round trip. The room's lock is then held for the
    statement and the commit on the server only, never while this process waits to be scheduled or
    for the GIL between two round trips (which, on a loaded machine, was most of the hold time).
    Django's own commit at the end of the block then finds no open transaction and sends nothing;
    its ``on_commit`` callbacks run as usual. Nothing may follow this call in the block.
    Elsewhere (SQLite, nested blocks) it is a few ORM updates inside the transaction.

    ``before`` (PostgreSQL only) is a statement that has to come first in the same transaction (the
    message's own ``INSERT``, see :meth:`chat.hot_insert.HotInsert.deferred`), sent in the same
    round trip. When it is the transaction's first statement and the block commits on exit, the
    whole transaction is that one round trip: the statements go as one implicit transaction
    (PostgreSQL runs a multi-statement query atomically), without a ``BEGIN`` round trip of their own.
    """
    _bump_counters_many(room, [_Bump(sender, in_room, followers, mentioned, group, now)], before=before)


_PER_MESSAGE_PARAMS = re.compile(r"%\((sender|shown|group|followers|mentioned|targets|now)\)s")


@functools.lru_cache(maxsize=256)
def _pg_counter_sql(others: bool, index: int) -> str:
    """The counter statement of the ``index``-th message of a batch, its per-message parameters
    suffixed with the index (the room is shared)."""
    if others:
        sql = _PG_ROOM_SQL + ", s AS (" + _PG_SENDER_SQL + ")" + _PG_OTHERS_SQL
    else:
        sql = _PG_ROOM_SQL + _PG_SENDER_SQL
    return _PER_MESSAGE_PARAMS.sub(lambda m: f"%({m.group(1)}_{index})s", sql)


def _bump_counters_many(room: Room, bumps: Sequence[_Bump], *,
                        before: tuple[str, dict[str, Any]] | None = None) -> None:
    """:func:`_bump_counters` for several new messages of one room, in order: the same rows end
    the same as one call per message would leave them. On PostgreSQL the statements go in one
    round trip (and the ``COMMIT`` with them, under the same condition as for one message)."""
    if not bumps:
        return
    if before is not None and (connection.vendor != "postgresql" or len(bumps) != 1):
        raise ValueError("a statement to send first is for one message's counters on PostgreSQL")
    if connection.vendor != "postgresql":
        for b in bumps:
            _orm_bump_counters(room, b.sender, b.now, in_room=b.in_room, followers=b.followers,
                               mentioned=b.mentioned, group=b.group)
        return
    parts, params = _pg_counter_parts(room, bumps)
    if before is not None:
        parts.insert(0, before[0])
        params.update(before[1])
    _pg_send_counters(parts, params, implicit=before is not None)


def _bump_counters_of_rooms(batches: Sequence[tuple[Room, Sequence[_Bump]]]) -> None:
    """:func:`_bump_counters_many` for the new messages of several rooms; on PostgreSQL every
    room's statement in one round trip. The rooms' rows are updated in the given order: callers
    that may run at once give their rooms in one order (by ID), so that they never wait on each
    other's rows crosswise."""
    batches = [(room, bumps) for room, bumps in batches if bumps]
    if connection.vendor != "postgresql" or len(batches) < 2:
        for room, bumps in batches:
            _bump_counters_many(room, bumps)
        return
    parts: list[str] = []
    params: dict[str, Any] = {}
    for i, (room, bumps) in enumerate(batches):
        room_parts, room_params = _pg_counter_parts(room, bumps)
        parts += [part.replace("%(", f"%(r{i}_") for part in room_parts]  # each room's own names
        params.update({f"r{i}_{name}": value for name, value in room_params.items()})
    _pg_send_counters(parts, params, implicit=False)


def _pg_counter_parts(room: Room, bumps: Sequence[_Bump]) -> tuple[list[str], dict[str, Any]]:
    """The counter statements of new messages of one room and their named parameters."""
    if len(bumps) > 1 and all(b.in_room and not b.followers for b in bumps):
        return [_PG_BURST_SQL], _pg_burst_params(room, bumps)
    parts: list[str] = []
    params: dict[str, Any] = {"room": room.id}
    for i, b in enumerate(bumps):
        parts.append(_pg_counter_sql(bool(b.followers or b.mentioned), i))
        params.update({f"sender_{i}": b.sender.id, f"shown_{i}": int(b.in_room), f"group_{i}": int(b.group),
                       f"now_{i}": b.now,
                       f"followers_{i}": b.followers, f"mentioned_{i}": b.mentioned,
                       f"targets_{i}": sorted({*b.followers, *b.mentioned})})
    return parts, params


def _pg_send_counters(parts: list[str], params: dict[str, Any], *, implicit: bool) -> None:
    """Send counter statements in one round trip, with the ``COMMIT`` when the caller's block is
    the outermost one (see :func:`_bump_counters`). ``implicit``: when nothing was sent in the
    block yet, send them as one implicit transaction instead (no ``BEGIN``, no ``COMMIT``)."""
    commits = _commits_on_exit(connection)
    with connection.cursor() as cursor:
        raw = connection.connection
        if commits and implicit and raw.info.transaction_status == _PQ_IDLE:
            # Nothing sent since the block began: one implicit transaction, no BEGIN/COMMIT.
            # Django's commit on exit then finds no transaction open and sends nothing.
            raw.autocommit = True
            try:
                cursor.execute(";\n".join(parts), params)
            finally:
                raw.autocommit = False
            return
        if commits:
            parts = [*parts, "COMMIT"]
        cursor.execute(";\n".join(parts), params)


# A burst of messages shown in the room (no thread-only replies), as one statement: the room's row
# once, each sender's row once (settled as after its last message of the burst), and each other
# mentioned member's row once (its mentions added). See _pg_burst_params.
_PG_BURST_SQL = """
WITH r AS (UPDATE rooms_room SET last_message_at = %(now)s, message_count = message_count + %(n)s,
                  shown_count = shown_count + %(n)s, group_mention_count = group_mention_count + %(group)s,
                  counters_at = %(now)s
           WHERE id = %(room)s RETURNING id, shown_count, group_mention_count),
s AS (UPDATE rooms_membership AS m SET
    open_flag = m.open_flag OR (m.state = 'joined' AND (r.shown_count - v.first_off > m.seen_shown OR v.between)),
    unread_base = 0, group_mentions_base = 0,
    user_mentions = CASE WHEN m.state = 'joined' THEN v.mentions_after ELSE 0 END,
    seen_shown = GREATEST(m.seen_shown, r.shown_count - v.shown_off),
    seen_group = GREATEST(m.seen_group, r.group_mention_count - v.group_off),
    last_read_at = v.at, updated_at = v.at
  FROM r, unnest(%(s_ids)s::text[], %(s_first)s::int[], %(s_between)s::bool[], %(s_mentions)s::int[],
                 %(s_shown)s::int[], %(s_group)s::int[], %(s_at)s::timestamptz[])
          AS v(user_id, first_off, between, mentions_after, shown_off, group_off, at)
  WHERE m.room_id = %(room)s AND m.user_id = v.user_id)
UPDATE rooms_membership AS m SET user_mentions = m.user_mentions + t.cnt, updated_at = t.at
FROM unnest(%(t_ids)s::text[], %(t_counts)s::int[], %(t_at)s::timestamptz[]) AS t(user_id, cnt, at)
WHERE m.room_id = (SELECT id FROM r) AND m.user_id = t.user_id AND m.state = 'joined'
"""


def _pg_burst_params(room: Room, bumps: Sequence[_Bump]) -> dict[str, Any]:
    """The parameters of :data:`_PG_BURST_SQL`: :func:`_bump_counters_many` for messages that all
    show in the room, in one statement that leaves every row as one statement per message would
    (``tests/rooms/test_send_many.py``).

    With ``n`` messages, the room's counters after the burst ``S`` (shown) and ``G`` (group
    mentions), and a sender's first and last messages at ``f`` and ``l``: its row is settled as
    after its last message (``seen_shown`` at ``S - (n - 1 - l)``, ``seen_group`` at ``G`` minus
    the group mentions after it), its ``user_mentions`` are the mentions of it in later messages of
    others, and it reopens if it had unread messages before its first message (``S - (n - f)``
    above its ``seen_shown``) or another message came between two of its own. A mentioned member
    who did not post gains one mention per message of another that names it.
    """
    n = len(bumps)
    groups_after: list[int] = []  # group mentions among messages 0..i
    total = 0
    for b in bumps:
        total += int(b.group)
        groups_after.append(total)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    between: dict[str, bool] = {}
    for i, b in enumerate(bumps):
        sid = b.sender.id
        if sid in last and last[sid] != i - 1:
            between[sid] = True
        first.setdefault(sid, i)
        last[sid] = i
    senders = list(first)
    mentions_after = {sid: 0 for sid in senders}
    others: dict[str, int] = {}
    others_at: dict[str, datetime] = {}  # the time of the last message that names them
    for i, b in enumerate(bumps):
        for uid in dict.fromkeys(b.mentioned):
            if uid == b.sender.id:
                continue
            if uid in last:
                if i > last[uid]:
                    mentions_after[uid] += 1
            else:
                others[uid] = others.get(uid, 0) + 1
                others_at[uid] = b.now
    params: dict[str, Any] = {
        "now": bumps[-1].now, "room": room.id, "n": n, "group": total,
        "s_at": [bumps[last[sid]].now for sid in senders],
        "t_at": [others_at[uid] for uid in others],
        "s_ids": senders, "s_first": [n - first[sid] for sid in senders],
        "s_between": [between.get(sid, False) for sid in senders],
        "s_mentions": [mentions_after[sid] for sid in senders],
        "s_shown": [n - 1 - last[sid] for sid in senders],
        "s_group": [total - groups_after[last[sid]] for sid in senders],
        "t_ids": list(others), "t_counts": list(others.values()),
    }
    return params


def _orm_bump_counters(room: Room, sender: User, now: datetime, *, in_room: bool, followers: list[str],
                       mentioned: list[str], group: bool) -> None:
    """:func:`_bump_counters` through the ORM (SQLite): a few updates inside the transaction."""
    shown, grouped = int(in_room), int(group)
    others = bool(followers or mentioned)
    grown: dict[str, Any] = {"counters_at": now} if shown or grouped else {}
    Room.objects.filter(id=room.id).update(last_message_at=now, message_count=F("message_count") + 1,
                                           shown_count=F("shown_count") + shown,
                                           group_mention_count=F("group_mention_count") + grouped, **grown)
    if others:
        joined = Membership.objects.filter(room=room, state=Membership.JOINED).exclude(user=sender)
        joined.filter(user__in=followers).update(unread_base=F("unread_base") + 1, updated_at=now)
        joined.filter(user_id__in=mentioned).update(user_mentions=F("user_mentions") + 1, updated_at=now)
    sub = Membership.objects.select_related("room").filter(room=room, user=sender).first()
    if sub is not None:  # as _PG_SENDER_SQL: its own message does not reopen the room for the sender
        shown_count, group_count = sub.room.shown_count, sub.room.group_mention_count
        sub.settle(shown_count - shown, group_count - grouped)
        was_open = sub.open_flag
        sub.settle_read(shown_count, group_count)
        sub.open_flag = was_open
        sub.last_read_at = sub.updated_at = now
        Membership.objects.filter(id=sub.id).update(
            last_read_at=now, updated_at=now, user_mentions=0,
            **{f: getattr(sub, f) for f in Membership.SETTLED_FIELDS})


@transaction.atomic
def do_send_message(sender: User, room: Room, text: Any, *, thread_root_id: str | None = None,
                    show_in_room: bool | None = None, quoted_id: str | None = None,
                    attachments: list[dict[str, Any]] | None = None, alias: str = "", emoji: str = "",
                    avatar: str = "", file: Upload | None = None, message_id: str | None = None,
                    skip_post_check: bool = False, created_at: datetime | None = None,
                    membership: Membership | None = UNKNOWN_MEMBERSHIP, mentions: Iterable[str] = ()) -> Message:
    """Post a message. Renders markdown, records mentions and thread state, bumps counters.

    Guarantees: the sender may post (joined, not muted or banned, room writable), and may post
    under another name or picture (``alias``/``avatar``) only with ``message-impersonate``; a thread root and
    a quoted message must be in the same room; unread and mention counters of every other joined
    member move in the same transaction as the insert (derived from the room's counters: only the
    room's row, the sender's and those of members mentioned or following the thread are written,
    see :func:`_bump_counters`). ``created_at`` (federation history) dates
    the message in the past; counters still move as for a new message. ``membership`` is the
    sender's membership in ``room`` if the caller read it in this request (None: known to have
    none); the post check then uses it instead of reading it again. ``mentions`` adds usernames
    (or ``all``/``here``) mentioned outside the text (a Matrix message's ``m.mentions``).

    The shared row (the room's counters) is updated last, just before commit, so that concurrent
    posts to one room wait on each other as briefly as possible.
    """
    if not skip_post_check:
        check_can_post(sender, room, membership)
        if (alias or avatar) and not has_permission(sender, "message-impersonate", room):
            raise NotAllowed("Not enough permission", "error-not-allowed")  # Rocket.Chat's rule
    attachments = check_attachments(attachments)
    text = message_rules.filter_bad_words(_check_text(text, allow_empty=bool(attachments or file)))
    if message_id is not None and (not isinstance(message_id, str) or not MESSAGE_ID_RE.match(message_id)):
        raise ApiError("Invalid message id (1-64 letters, digits, _ or -)", "error-invalid-params")
    if message_id and Message.objects.filter(id=message_id).exists():
        raise _id_taken()
    thread_root = None
    if thread_root_id:
        thread_root = Message.objects.select_for_update().filter(id=thread_root_id, room=room).first()
        if thread_root is None or thread_root.deleted_at:
            raise ApiError("Invalid thread: no such message in this room", "error-invalid-message")
        if thread_root.thread_root_id:  # a reply to a reply belongs to the same thread
            thread_root = Message.objects.select_for_update().get(id=thread_root.thread_root_id)
    quoted = None
    if quoted_id:
        quoted = Message.objects.filter(id=quoted_id, room=room).first()
        if quoted is None:
            raise ApiError("The quoted message does not exist in this room", "error-invalid-message")
    now = timezone.now()
    mentioned_users, mention_all, mention_here = _mention_targets(text, room, sender, mentions)
    msg = Message(room=room, user=sender, text=text, html=render_markdown(text), created_at=created_at or now,
                  thread_root=thread_root, quoted=quoted, attachments=attachments or [],
                  alias=str(alias)[:255], emoji=str(emoji)[:64], avatar=str(avatar)[:1024], file=file,
                  show_in_room=thread_root is None or bool(show_in_room),
                  mentions_all=mention_all, mentions_here=mention_here)
    if message_id:
        msg.id = message_id
    # A plain post's INSERT goes with its counters statement, in one round trip (see _bump_counters).
    deferred = None
    if not mentioned_users and thread_root is None and connection.vendor == "postgresql":
        deferred = _MESSAGE_INSERT.deferred(msg, "msg")
    if deferred is None:
        with _refusing_a_taken_id(message_id):
            _MESSAGE_INSERT.insert(msg)
    if mentioned_users:
        Mention.objects.bulk_create([Mention(message=msg, user=u) for u in mentioned_users], ignore_conflicts=True)
    mentioned = [u.id for u in mentioned_users]

    followers: list[str] = []
    if thread_root is not None:
        thread_root.thread_count = F("thread_count") + 1
        thread_root.thread_last_at = now
        thread_root.save(update_fields=["thread_count", "thread_last_at", "updated_at"])
        thread_root.followers.add(sender)
        if thread_root.user_id:
            thread_root.followers.add(thread_root.user_id)
        thread_root.refresh_from_db()
        if not msg.show_in_room:
            followers = list(thread_root.followers.values_list("id", flat=True))

    _publish(msg, "message.new", fresh_mentions=mentioned_users)
    if thread_root is not None:
        _publish(thread_root)
    if mention_all or mention_here:
        _notify_counters(room, exclude=sender)
    elif mentioned:
        _notify_counters(room, exclude=sender, only=mentioned)
    federation_hooks.message_sent(msg)
    integration_triggers.message_sent(msg, room)  # after commit: one cache read
    with _refusing_a_taken_id(message_id):  # a concurrent post with the same id got there first
        _bump_counters(room, sender, now, in_room=msg.show_in_room, followers=followers, mentioned=mentioned,
                       group=mention_all or mention_here, before=deferred)
    return msg


@dataclass(frozen=True)
class Post:
    """One plain message for :func:`do_send_messages`: no thread, quote, attachment or file."""

    sender: User
    text: str
    created_at: datetime | None = None
    mentions: tuple[str, ...] = ()


def do_send_messages(room: Room, posts: Sequence[Post]) -> list[Message]:
    """Post several plain messages to one room at once, in order; returns them.

    For senders whose right to post the caller has already checked (as ``skip_post_check``; a
    federated burst). Guarantees: the same rows, counters, live events and hooks as
    ``do_send_message(p.sender, room, p.text, skip_post_check=True, created_at=p.created_at,
    mentions=p.mentions)`` for each post in order, with one ``INSERT`` for the messages, one for
    their mentions, one round trip to Redis for their live events and (PostgreSQL) one for all the
    counters. A text that ``do_send_message`` would refuse (empty, too long, a NUL) raises its
    :class:`ApiError` before anything is written and before a transaction block is entered, so the
    caller's transaction stays usable and it may fall back to one post at a time. No savepoint of
    its own: should the writes fail (a database error), the caller's transaction (or savepoint)
    must be rolled back.
    """
    return do_send_messages_to_rooms([(room, posts)])[0]


def do_send_messages_to_rooms(batches: Sequence[tuple[Room, Sequence[Post]]]) -> list[list[Message]]:
    """:func:`do_send_messages` for several rooms at once (a federated transaction's messages):
    returns each room's messages, in the given order. The same rows, counters, live events and
    hooks as one call per room, with one ``INSERT`` for all the messages, one for all their
    mentions and (PostgreSQL) one round trip for all the rooms' counters (its statements update
    the rooms' rows in ID order; rows the caller's transaction locked before are its own affair).
    A text any room's post would refuse raises before anything is written, as there."""
    texts = [[message_rules.filter_bad_words(_check_text(post.text)) for post in posts] for _, posts in batches]
    return _send_messages(batches, texts)


@transaction.atomic(savepoint=False)
def _send_messages(batches: Sequence[tuple[Room, Sequence[Post]]], texts: list[list[str]]) -> list[list[Message]]:
    """:func:`do_send_messages_to_rooms` once the texts passed."""
    rooms: list[tuple[Room, Sequence[Post], list[Message], list[list[User]], list[datetime]]] = []
    for (room, posts), room_texts in zip(batches, texts, strict=True):
        times: list[datetime] = []
        msgs: list[Message] = []
        mentioned_by_msg: list[list[User]] = []
        for post, text in zip(posts, room_texts, strict=True):
            users, mention_all, mention_here = _mention_targets(text, room, post.sender, post.mentions)
            now = timezone.now()  # each its own time, as one post at a time: their order stays the posts'
            times.append(now)
            msgs.append(Message(room=room, user=post.sender, text=text, html=render_markdown(text),
                                created_at=post.created_at or now, attachments=[], show_in_room=True,
                                mentions_all=mention_all, mentions_here=mention_here))
            mentioned_by_msg.append(users)
        rooms.append((room, posts, msgs, mentioned_by_msg, times))
    _MESSAGE_INSERT.insert_many([m for _, _, msgs, _, _ in rooms for m in msgs])
    mention_rows = [Mention(message=m, user=u) for _, _, msgs, mentioned_by_msg, _ in rooms
                    for m, users in zip(msgs, mentioned_by_msg, strict=True) for u in users]
    if mention_rows:
        Mention.objects.bulk_create(mention_rows, ignore_conflicts=True)
    counters: list[tuple[Room, list[_Bump]]] = []
    for room, posts, msgs, mentioned_by_msg, times in rooms:
        live: list[LiveEvent] = []
        for msg, users in zip(msgs, mentioned_by_msg, strict=True):
            msg.wire_json = message_json(msg, fresh_mentions=users)  # type: ignore[attr-defined]
            live.append(LiveEvent("message.new", room.id, msg.wire_json))  # type: ignore[attr-defined]
        send_many_to_room(room.id, live)  # as _publish for each, in one round trip
        bumps: list[_Bump] = []
        for post, msg, users, at in zip(posts, msgs, mentioned_by_msg, times, strict=True):
            mentioned = [u.id for u in users]
            if msg.mentions_all or msg.mentions_here:
                _notify_counters(room, exclude=post.sender)
            elif mentioned:
                _notify_counters(room, exclude=post.sender, only=mentioned)
            federation_hooks.message_sent(msg)
            integration_triggers.message_sent(msg, room)
            bumps.append(_Bump(post.sender, True, [], mentioned, msg.mentions_all or msg.mentions_here, at))
        counters.append((room, bumps))
    _bump_counters_of_rooms(sorted(counters, key=lambda pair: pair[0].id))
    return [msgs for _, _, msgs, _, _ in rooms]


def _notify_counters(room: Room, exclude: User | None = None, only: list[str] | None = None) -> None:
    """Send members their subscription with fresh counters, after commit.

    Every member already learns of a new message from ``message.new`` and bumps its own unread count
    (documented in :mod:`rooms.events`), so per-message fan-out to every member is not needed: this
    goes to ``only`` (the users whose mention counters moved), or to everyone for ``@all``/``@here``.
    """
    def send() -> None:
        from rooms.events import _send_now, user_group

        subs = Membership.objects.filter(room=room, state=Membership.JOINED).select_related("room", "user")
        if exclude is not None:
            subs = subs.exclude(user=exclude)
        if only is not None:
            subs = subs.filter(user_id__in=only)
        for sub in subs:
            _send_now(user_group(sub.user_id), LiveEvent("subscription", room.id, subscription_json(sub)))

    transaction.on_commit(send)


def _check_can_change(user: User, msg: Message, own_perm: str, any_perm: str) -> None:
    if msg.deleted_at:
        raise ApiError("The message was deleted", "error-message-deleted")
    if msg.type:
        raise NotAllowed("System messages cannot be changed", "error-action-not-allowed")
    if msg.user_id == user.id and (own_perm == "" or has_permission(user, own_perm, msg.room)):
        return
    if has_permission(user, any_perm, msg.room):
        return
    raise NotAllowed("Not allowed", "error-action-not-allowed")


@transaction.atomic
def do_edit_message(editor: User, msg: Message, text: Any, *, mentions: Iterable[str] = ()) -> Message:
    """Replace a message's text, keeping the previous version in its edit history."""
    msg = Message.objects.select_for_update().select_related("room").get(id=msg.id)
    _check_can_change(editor, msg, "", "edit-message")
    message_rules.check_can_edit(editor, msg)
    text = message_rules.filter_bad_words(_check_text(text, allow_empty=bool(msg.attachments)))
    sub = Membership.objects.filter(room=msg.room, user=editor).first()
    if sub is not None and sub.muted:
        raise NotAllowed("You have been muted and cannot edit messages in this room", "error-user-muted")
    if text == msg.text:
        return msg
    MessageEdit.objects.create(message=msg, previous_text=msg.text, edited_by=editor)
    msg.text = text
    msg.html = render_markdown(text)
    msg.edited_at = timezone.now()
    msg.edited_by = editor
    msg.mentions.all().delete()
    _store_mentions(msg, msg.room, editor, mentions)
    msg.save()
    _publish(msg)
    federation_hooks.message_edited(msg, editor)
    return msg


@transaction.atomic
def do_delete_message(user: User, msg: Message) -> None:
    """Tombstone a message: text, html, attachments and reactions go; the row stays for threads."""
    msg = Message.objects.select_for_update().select_related("room").get(id=msg.id)
    if not message_rules.may_force_delete(user, msg):
        _check_can_change(user, msg, "delete-own-message", "delete-message")
        message_rules.check_can_delete(user, msg)
    msg.text = msg.html = ""
    msg.attachments = []
    msg.deleted_at = timezone.now()
    msg.pinned = False
    msg.save()
    msg.reactions.all().delete()
    msg.mentions.all().delete()
    msg.edits.all().delete()
    send_to_room(msg.room_id, LiveEvent("message.deleted", msg.room_id, {"_id": msg.id, "rid": msg.room_id}))
    federation_hooks.message_deleted(msg, user)


@transaction.atomic
def do_toggle_reaction(user: User, msg: Message, emoji: str, should_react: bool | None = None) -> bool:
    """Add or remove ``user``'s ``emoji`` on ``msg``; returns whether the reaction is now present."""
    emoji = (emoji or "").strip()
    if not emoji or len(emoji) > EMOJI_MAX or any(c in emoji for c in "<>\"'&"):
        raise ApiError("Invalid emoji provided.", "error-not-allowed")
    if not emoji.startswith(":"):
        emoji = f":{emoji.strip(':')}:"
    if msg.deleted_at:
        raise ApiError("The message was deleted", "error-message-deleted")
    sub = Membership.objects.filter(room=msg.room, user=user, state=Membership.JOINED).first()
    if sub is None or sub.banned:
        raise NotAllowed("You must join this room to react", "error-not-allowed")
    if sub.muted:
        raise NotAllowed("You have been muted and cannot react in this room", "error-user-muted")
    existing = Reaction.objects.filter(message=msg, user=user, emoji=emoji).first()
    present = existing is None if should_react is None else should_react
    if present and existing is None:
        Reaction.objects.create(message=msg, user=user, emoji=emoji)
        federation_hooks.reaction_changed(msg, user, emoji, True)
    elif not present and existing is not None:
        existing.delete()
        federation_hooks.reaction_changed(msg, user, emoji, False)
    # Reactions change the message for chat.syncMessages(lastUpdate) readers.
    Message.objects.filter(id=msg.id).update(updated_at=timezone.now())
    fresh = message_queryset().get(id=msg.id)
    data = message_json(fresh)
    send_to_room(msg.room_id, LiveEvent("reaction", msg.room_id, {
        "_id": msg.id, "reactions": data.get("reactions", {}), "emoji": emoji, "username": user.username,
        "added": present}))
    return present


@transaction.atomic
def do_set_pinned(user: User, msg: Message, pinned: bool) -> Message:
    if msg.deleted_at:
        raise ApiError("The message was deleted", "error-message-deleted")
    if not has_permission(user, "pin-message", msg.room):
        raise NotAllowed("Not allowed", "error-action-not-allowed")
    msg.pinned = pinned
    msg.pinned_at = timezone.now() if pinned else None
    msg.pinned_by = user if pinned else None
    msg.save(update_fields=["pinned", "pinned_at", "pinned_by", "updated_at"])
    _publish(msg)
    return msg


@transaction.atomic
def do_follow_thread(user: User, msg: Message, follow: bool) -> None:
    if follow:
        msg.followers.add(user)
    else:
        msg.followers.remove(user)
    Message.objects.filter(id=msg.id).update(updated_at=timezone.now())
    _publish(msg)


@transaction.atomic
def do_mark_read(user: User, room: Room, at: datetime | None = None) -> Membership:
    """Mark ``room`` read: clears the counters and records the read receipt position (``at``, default now).

    The counters are cleared up to the room's counters as committed now, whatever ``at`` is (a
    remote user's receipt names an older message): posts committed after count again.
    """
    sub = Membership.objects.select_for_update().filter(room=room, user=user, state=Membership.JOINED).first()
    if sub is None:
        raise ApiError("You are not in this room", "error-user-not-in-room")
    sub.settle_read(*Room.counters_of(room.id))
    sub.last_read_at = at or timezone.now()
    sub.save(update_fields=["last_read_at", "user_mentions", *Membership.SETTLED_FIELDS, "updated_at"])
    send_to_user(user.id, LiveEvent("subscription", room.id, subscription_json(sub)))
    send_to_room(room.id, LiveEvent("receipt", room.id, {"user": user_brief(user), "ts": iso(sub.last_read_at)}))
    federation_hooks.read_marked(room, user, sub.last_read_at)
    return sub


@transaction.atomic
def do_mark_unread(user: User, room: Room, from_message: Message | None = None) -> Membership:
    """Mark ``room`` unread (``subscriptions.unread``): from ``from_message`` on (the messages of
    others shown in the room from it, not deleted, count; the read position moves to just before
    it), or else at least one unread. Mention counters stay.

    With a message, the count and the room's counters are read in one statement (one snapshot),
    so a post committing meanwhile counts exactly once: in the count or in what derives after.
    """
    sub = Membership.objects.select_for_update().filter(room=room, user=user, state=Membership.JOINED).first()
    if sub is None:
        raise ApiError("You are not in this room", "error-user-not-in-room")
    if from_message is not None:
        sub.last_read_at = from_message.created_at - timezone.timedelta(microseconds=1)
        after = (Message.objects.filter(room=OuterRef("pk"), created_at__gt=sub.last_read_at, show_in_room=True,
                                        deleted_at__isnull=True).exclude(user=user)
                 .order_by().values("room").annotate(n=Count("pk")).values("n"))
        shown, group, count = (Room.objects.filter(id=room.id).annotate(n=Coalesce(Subquery(after), 0))
                               .values_list("shown_count", "group_mention_count", "n").get())
        sub.settle(shown, group)
        sub.unread_base = count
    else:
        sub.settle(*Room.counters_of(room.id))
        sub.unread_base = max(sub.unread_base, 1)
    sub.save(update_fields=["last_read_at", *Membership.SETTLED_FIELDS, "updated_at"])
    send_to_user(user.id, LiveEvent("subscription", room.id, subscription_json(sub)))
    return sub


def read_receipts(msg: Message) -> list[dict[str, Any]]:
    """Who has read ``msg``: members (not its author) whose read position is at or after it."""
    subs = (Membership.objects.filter(room=msg.room_id, last_read_at__gte=msg.created_at)
            .filter(~Q(user_id=msg.user_id)).select_related("user").order_by("last_read_at"))
    return [{"_id": f"{msg.id}:{s.user_id}", "roomId": msg.room_id, "userId": s.user_id, "messageId": msg.id,
             "ts": iso(s.last_read_at), "user": user_brief(s.user)} for s in subs]


@transaction.atomic
def do_set_starred(user: User, msg: Message, starred: bool) -> None:
    """Star (or unstar) a message for ``user`` alone; only members of its room may. Starring
    twice, or unstarring what is not starred, changes nothing."""
    if not Membership.objects.filter(room=msg.room, user=user, state=Membership.JOINED).exists():
        raise NotAllowed("Not allowed", "error-not-allowed")
    if msg.deleted_at is not None:
        raise ApiError("The message was deleted", "error-invalid-message")
    if starred:
        Star.objects.get_or_create(message=msg, user=user)
    else:
        Star.objects.filter(message=msg, user=user).delete()


def do_report_message(user: User, msg: Message, description: object) -> None:
    """Report a message the user can read to the server's moderators (Django admin lists reports)."""
    if not isinstance(description, str) or not description.strip():
        raise ApiError('The required "description" param is missing.', "error-invalid-params")
    MessageReport.objects.create(message=msg, reporter=user, description=description.strip()[:5000])
