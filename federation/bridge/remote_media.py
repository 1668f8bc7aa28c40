"""Files from other servers: a message's file, a remote user's avatar; fetched from the origin.

A file message appears in the chat at once with a placeholder attachment (the file's name), and a
:class:`~federation.models.PendingMedia` row is written in the same transaction; a remote user's
new avatar (from their member event or profile) gets a row too. After commit a fetch is scheduled
(a Celery task, registered at start-up), and the beat task re-drives rows a lost task left.

A fetch is a signed ``GET`` of the origin's authenticated media endpoint; the answer must be a
media ``multipart/mixed`` with the bytes inline (no redirects followed), at most
``CONCORD_MAX_UPLOAD_MB``, of the type the event announced, and passes the chat's own checks
(an "image" must really be one; avatars are re-encoded). A file is stored once as an upload with
its thumbnail and becomes the message's attachment. Failures back off (1 min doubling, at most a
day) for :data:`MAX_ATTEMPTS` attempts, each logged; then the placeholder stays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.actions import do_set_avatar
from accounts.models import User
from federation import config
from federation.bridge import convert
from federation.models import PendingMedia
from federation.transport.client import FederationClient, encode_path
from federation.transport.multipart import MultipartError, decode_media
from rooms.actions.uploads import do_attach_file
from rooms.models import Message

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
CLAIM_SECONDS = 300  # one fetch at a time per file; a fetcher that died is replaced after this
AVATAR_SEEN_TTL = 86400

FetchScheduler = Callable[[str], None]
_scheduler: FetchScheduler | None = None


def register_fetch_scheduler(scheduler: FetchScheduler | None) -> None:
    """Install what starts a fetch (``FederationConfig.ready``: the Celery task)."""
    global _scheduler
    _scheduler = scheduler


def placeholder_attachment(file: convert.IncomingFile) -> dict[str, object]:
    """What the chat shows until the file is here: its name."""
    return {"title": file.name, "type": "file", "federation_pending": True}  # the caption is the text


def _schedule_after_commit(key: str) -> None:
    scheduler = _scheduler
    if scheduler is None:
        return

    def go() -> None:
        try:
            scheduler(key)
        except Exception:  # the beat task re-drives
            log.warning("could not queue the fetch of %s; the beat task will", key)

    transaction.on_commit(go)


def queue_file(msg: Message, event_id: str, file: convert.IncomingFile) -> None:
    """Remember the file to fetch for ``msg`` (in the caller's transaction); start after commit.

    A remote message naming one of *our* media is never resolved: that would copy a file of
    another room (perhaps private) into this one; the placeholder stays.
    """
    if file.server_name == config.server_name():
        log.info("not fetching %s for %s: media of this server named by a remote event", file.media_id, event_id)
        return
    PendingMedia.objects.get_or_create(key=event_id, defaults={
        "message_id": msg.id, "server_name": file.server_name, "media_id": file.media_id, "name": file.name,
        "content_type": file.content_type})
    _schedule_after_commit(event_id)


def queue_avatar(user: User, avatar_url: object) -> None:
    """A puppet's avatar is ``avatar_url`` (from a member event or profile): fetch it unless it is
    the one we already have (remembered for a day)."""
    if not user.is_remote or not isinstance(avatar_url, str):
        return
    m = convert.MXC_RE.match(avatar_url)
    seen_key = f"fed:avatar:{user.username}"
    if m is None or m.group(1) == config.server_name() or cache.get(seen_key) == avatar_url:
        return
    cache.set(seen_key, avatar_url, AVATAR_SEEN_TTL)
    key = f"avatar:{user.username}"
    PendingMedia.objects.update_or_create(key=key, defaults={
        "user_id": user.id, "message_id": "", "server_name": m.group(1), "media_id": m.group(2), "name": "avatar",
        "content_type": "image/", "attempts": 0, "next_attempt_at": None, "last_error": ""})
    _schedule_after_commit(key)


def _major(content_type: str) -> str:
    return content_type.split("/", 1)[0].strip().lower()


def fetch_pending(key: str) -> bool:
    """Fetch one pending file and put it in place. Returns whether it is done (stored, or given up
    after :data:`MAX_ATTEMPTS`); a failure before that backs off and returns False."""
    now = timezone.now()
    # Claim the row (a Celery task and the beat may both try): whoever moves its next attempt wins.
    claimed = PendingMedia.objects.filter(key=key).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)).update(
        next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    row = PendingMedia.objects.filter(key=key).first()
    if row is None:
        return True
    if not claimed:
        return False
    msg = Message.objects.filter(id=row.message_id).select_related("room", "user").first() if row.message_id \
        else None
    user = User.objects.filter(id=row.user_id, is_remote=True).first() if row.user_id else None
    if (msg is None or msg.deleted_at) and user is None:
        row.delete()
        return True
    try:
        data, content_type = _download(row)
        if row.content_type and _major(row.content_type) in ("image", "audio", "video") and \
                _major(content_type) != _major(row.content_type):
            raise ValueError(f"announced {row.content_type}, got {content_type}")
        if user is not None:
            do_set_avatar(user, SimpleUploadedFile("avatar", data, content_type))
        elif msg is not None:
            do_attach_file(msg, row.name, content_type, data)
    except Exception as exc:  # anything (a bad answer, storage, a vanished row) counts as an attempt
        row.attempts += 1
        row.last_error = str(exc)[:1000]
        if row.attempts >= MAX_ATTEMPTS:
            log.warning("giving up the file %s from %s: %s", key, row.server_name, exc)
            row.delete()
            return True
        row.next_attempt_at = timezone.now() + timedelta(seconds=min(60 * 2 ** (row.attempts - 1), 86400))
        row.save(update_fields=["attempts", "last_error", "next_attempt_at"])
        log.info("fetching the file %s from %s failed (%s); retry later", key, row.server_name, exc)
        return False
    row.delete()
    return True


def _download(row: PendingMedia) -> tuple[bytes, str]:
    if not config.server_allowed(row.server_name):
        raise ValueError(f"federation with {row.server_name} is not allowed")
    body, content_type = FederationClient(timeout=30).get_bytes(
        row.server_name, encode_path("/_matrix/federation/v1/media/download/{}", row.media_id))
    part = decode_media(body, content_type)
    if part.data is None:
        raise MultipartError("the origin answered with a redirect, which is not followed")
    if len(part.data) > settings.MAX_UPLOAD_BYTES:
        raise ValueError("the file is larger than this server accepts")
    return part.data, part.content_type


def process_pending_media(limit: int = 50) -> int:
    """Fetch what is due (the beat task). Returns how many files were finished."""
    now = timezone.now()
    due = list(PendingMedia.objects.filter(attempts__lt=MAX_ATTEMPTS).exclude(next_attempt_at__gt=now)
               .order_by("created_at").values_list("key", flat=True)[:limit])
    done = 0
    for key in due:
        try:
            done += bool(fetch_pending(key))
        except Exception:  # one file must not stop the others (nor the beat task's other work)
            log.exception("fetching %s failed", key)
    return done
