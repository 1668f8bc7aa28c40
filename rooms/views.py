"""Serving uploaded files to room members (session, token headers, or ``rc_uid``/``rc_token`` cookies)."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse

from accounts.authentication import user_for_token
from rooms.access import can_read
from rooms.models import Upload

# Served inline only when the browser cannot run them as script; everything else downloads.
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "audio/", "video/", "application/pdf",
                "text/plain")


def _request_user(request: HttpRequest):  # type: ignore[no-untyped-def]
    if request.user.is_authenticated:
        return request.user
    token = request.headers.get("X-Auth-Token") or request.COOKIES.get("rc_token") or request.GET.get("rc_token")
    uid = request.headers.get("X-User-Id") or request.COOKIES.get("rc_uid") or request.GET.get("rc_uid")
    return user_for_token(uid, token) if token else None


def file_upload(request: HttpRequest, upload_id: str, name: str, thumb: bool = False) -> HttpResponse:
    user = _request_user(request)
    if user is None:
        return JsonResponse({"success": False, "error": "You must be logged in to do this.",
                             "errorType": "error-unauthorized"}, status=401)
    upload = Upload.objects.select_related("room").filter(id=upload_id).first()
    if upload is None or not can_read(user, upload.room):
        raise Http404("No such file")
    field = upload.thumbnail if thumb and upload.thumbnail else upload.file
    try:
        handle = field.open("rb")
    except FileNotFoundError as exc:
        raise Http404("No such file") from exc
    content_type = upload.content_type
    if thumb and upload.thumbnail:
        content_type = "image/png" if upload.thumbnail.name.endswith(".png") else "image/jpeg"
    inline = content_type.startswith(INLINE_TYPES)
    resp = FileResponse(handle, content_type=content_type if inline else "application/octet-stream",
                        as_attachment=not inline, filename=upload.name)
    resp["X-Content-Type-Options"] = "nosniff"
    resp["Content-Security-Policy"] = "default-src 'none'; sandbox"
    resp["Cache-Control"] = "private, max-age=3600"
    return resp
