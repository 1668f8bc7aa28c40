"""Avatar images: the uploaded one, or a generated SVG with the user's initials."""

from __future__ import annotations

import hashlib
import html

from django.http import FileResponse, HttpRequest, HttpResponse

from accounts.models import User

_COLORS = ["#1d74f5", "#f5455c", "#2de0a5", "#ffd21f", "#9ea2a8", "#7f1de8", "#f38c39", "#0a967a"]


def default_avatar_svg(name: str) -> str:
    initials = "".join(p[0] for p in name.replace(".", " ").replace("_", " ").split()[:2]).upper() or "?"
    color = _COLORS[int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(_COLORS)]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 200 200">'
        f'<rect width="200" height="200" fill="{color}"/>'
        '<text x="50%" y="50%" dy="0.36em" text-anchor="middle" fill="#fff" '
        'font-family="Helvetica, Arial, sans-serif" font-size="90">'
        f"{html.escape(initials[:2])}</text></svg>"
    )


def avatar(request: HttpRequest, username: str) -> HttpResponse:
    user = User.objects.filter(username=username).first()
    if user is not None and user.avatar:
        try:
            resp: HttpResponse = FileResponse(user.avatar.open("rb"), content_type="image/png")
            resp["Cache-Control"] = "public, max-age=300"
            return resp
        except FileNotFoundError:
            pass
    name = user.display_name if user is not None else username
    resp = HttpResponse(default_avatar_svg(name), content_type="image/svg+xml")
    resp["Cache-Control"] = "public, max-age=300"
    resp["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return resp
