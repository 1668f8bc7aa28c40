"""File uploads: ``rooms.media/<rid>`` + ``rooms.mediaConfirm/<rid>/<fileId>`` (two steps, as the
``rocketchat-api`` client 3.7 and Rocket.Chat 6+ do) and the older one-step ``rooms.upload/<rid>``.

The file comes as the multipart field ``file``; its size limit is the setting ``FileUpload_MaxFileSize``.
Names are cleaned and content types checked by :mod:`rooms.actions.uploads`; files are served
only to readers of the room by :mod:`rooms.views`.
"""

from __future__ import annotations

from django.core.files.uploadedfile import UploadedFile
from rest_framework.request import Request
from rest_framework.response import Response

from chat.api import ApiView, ok, str_param
from chat.api_errors import ApiError, NotFound
from chat.upload_limits import max_upload_bytes, too_large_message, upload_too_large
from rooms.access import access_room_for_read
from rooms.actions.messages import MAX_MESSAGE_LENGTH
from rooms.actions.uploads import do_confirm_upload, do_upload, do_upload_and_send
from rooms.api.chat_params import id_param
from rooms.models import Upload
from rooms.serialization import message_json, message_queryset, upload_json


def _uploaded_file(request: Request) -> UploadedFile:
    uploaded = request.FILES.get("file") if hasattr(request, "FILES") else None
    if uploaded is None and upload_too_large(request):
        raise ApiError(too_large_message(max_upload_bytes()), "error-file-too-large")
    if uploaded is None:
        raise ApiError('The "file" field (multipart/form-data) is required', "error-invalid-params")
    return uploaded


class RoomsMediaView(ApiView):
    """``rooms.media/<rid>``: store a file, not yet posted. Answers ``{file: {_id, url, ...}}``."""

    def post(self, request: Request, rid: str) -> Response:
        room = access_room_for_read(request.user, room_id=rid)
        upload = do_upload(request.user, room, _uploaded_file(request),
                           str_param(request, "description", "", max_length=5000) or "")
        return ok(file=upload_json(upload))


class RoomsMediaConfirmView(ApiView):
    """``rooms.mediaConfirm/<rid>/<fileId>``: post the message carrying a stored file.

    Optional ``msg``, ``description``, ``tmid``. Answers ``{message}``. Only the uploader may confirm.
    """

    def post(self, request: Request, rid: str, file_id: str) -> Response:
        room = access_room_for_read(request.user, room_id=rid)
        upload = Upload.objects.filter(id=file_id, room=room).first()
        if upload is None:
            raise NotFound("The file does not exist in this room", "error-file-not-found")
        msg = do_confirm_upload(request.user, upload,
                                text=str_param(request, "msg", "", max_length=MAX_MESSAGE_LENGTH) or "",
                                description=str_param(request, "description", max_length=5000),
                                thread_root_id=id_param(request, "tmid", required=False))
        return ok(message=message_json(message_queryset().get(id=msg.id)))


class RoomsUploadView(ApiView):
    """``rooms.upload/<rid>``: store and post a file in one step (``file``, ``msg``, ``description``,
    ``tmid``). Answers ``{message}``."""

    def post(self, request: Request, rid: str) -> Response:
        room = access_room_for_read(request.user, room_id=rid)
        msg = do_upload_and_send(request.user, room, _uploaded_file(request),
                                 text=str_param(request, "msg", "", max_length=MAX_MESSAGE_LENGTH) or "",
                                 description=str_param(request, "description", "", max_length=5000) or "",
                                 thread_root_id=id_param(request, "tmid", required=False))
        return ok(message=message_json(message_queryset().get(id=msg.id)))
