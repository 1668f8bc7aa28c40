"""Django's last-resort error pages, answered in the caller's language.

``/api/`` callers get Rocket.Chat's JSON error shape, ``/_matrix/`` callers the Matrix error shape,
and browsers a plain page. These run only when a view did not produce its own answer (a body too
large for Django to read, an unknown URL, an unexpected exception).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

_MESSAGES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 500: "Internal server error"}
_RC_TYPES = {400: "error-invalid-params", 403: "error-not-allowed", 404: "error-not-found", 500: "error-server"}
_MATRIX_CODES = {400: "M_BAD_JSON", 403: "M_FORBIDDEN", 404: "M_UNRECOGNIZED", 500: "M_UNKNOWN"}


def _answer(request: HttpRequest, status: int) -> HttpResponse:
    path = request.path
    if path.startswith("/api/"):
        return JsonResponse({"success": False, "error": _MESSAGES[status], "errorType": _RC_TYPES[status]},
                            status=status)
    if path.startswith("/_matrix/"):
        return JsonResponse({"errcode": _MATRIX_CODES[status], "error": _MESSAGES[status]}, status=status)
    return HttpResponse(f"<!doctype html><title>{status}</title><h1>{_MESSAGES[status]}</h1>", status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _answer(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _answer(request, 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _answer(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    return _answer(request, 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form post without its CSRF token: JSON for API callers (who authenticate with tokens,
    never by cookie), Django's explanation for a browser form."""
    if request.path.startswith(("/api/", "/_matrix/")):
        return _answer(request, 403)
    from django.views.csrf import csrf_failure as django_csrf_failure  # only the browser case needs it

    return django_csrf_failure(request, reason)
