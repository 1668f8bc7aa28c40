"""Rocket.Chat-style JSON errors for the REST API.

Every failure of an ``/api/v1/`` call answers ``{"success": false, "error": "...", "errorType": "..."}``
with a 4xx status, the way Rocket.Chat does, so that clients written for it read our errors.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.db import DataError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response


class ApiError(Exception):
    """An error a REST call reports to its caller; raised by checks and actions."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, error_type: str = "error-invalid-params", status_code: int | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        if status_code is not None:
            self.status_code = status_code
        self.extra = extra


FORBIDDEN_TYPES = frozenset({"error-unauthorized", "unauthorized"})
PERMISSION_REQUIRED = "User does not have the permissions required for this action [error-unauthorized]"
"""Rocket.Chat's 403 for a route whose ``permissionsRequired`` the caller lacks."""


class NotAllowed(ApiError):
    """A refusal, with Rocket.Chat's status: 403 where Rocket.Chat's route answers ``forbidden``
    or ``unauthorized`` (a missing permission: ``error-unauthorized``, ``unauthorized``), 400 for
    every other ``error-*`` a Rocket.Chat method throws (``error-not-allowed``,
    ``error-action-not-allowed``, ``error-room-read-only``, ``error-user-muted``...)."""

    def __init__(self, message: str = "Not allowed", error_type: str = "error-not-allowed", **extra: Any) -> None:
        super().__init__(message, error_type, **extra)
        self.status_code = status.HTTP_403_FORBIDDEN if error_type in FORBIDDEN_TYPES else status.HTTP_400_BAD_REQUEST


class NotFound(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str = "Not found", error_type: str = "error-not-found", **extra: Any) -> None:
        super().__init__(message, error_type, **extra)


def error_body(message: str, error_type: str, **extra: Any) -> dict[str, Any]:
    return {"success": False, "error": message, "errorType": error_type, **extra}


def rocketchat_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler turning every error into Rocket.Chat's error shape."""
    if isinstance(exc, ApiError):
        response = Response(error_body(exc.message, exc.error_type, **exc.extra), status=exc.status_code)
        retry_after = getattr(exc, "retry_after", None)  # chat.rate_limits.RateLimited
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        return response
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return Response(
            {"status": "error", "success": False, "message": "You must be logged in to do this.",
             "error": "You must be logged in to do this.", "errorType": "error-unauthorized"},
            status=status.HTTP_401_UNAUTHORIZED,
        )
    if isinstance(exc, (PermissionDenied, exceptions.PermissionDenied)):
        return Response(error_body("Not allowed", "error-not-allowed"), status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, (Http404, exceptions.NotFound)):
        return Response(error_body("Not found", "error-not-found"), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, DataError):
        # The database refused a value (e.g. a NUL character in JSON on PostgreSQL); nothing was stored.
        return Response(error_body("The request holds a value that cannot be stored", "error-invalid-params"),
                        status=400)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("The request body is too large", "error-request-too-large"), status=413)
    if isinstance(exc, ValidationError):
        return Response(error_body("; ".join(exc.messages), "error-invalid-params"), status=400)
    if isinstance(exc, exceptions.ParseError):
        return Response(error_body(f"Malformed request: {exc.detail}", "error-invalid-params"), status=400)
    if isinstance(exc, exceptions.ValidationError):
        return Response(error_body(_flatten(exc.detail), "error-invalid-params"), status=400)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return Response(error_body(str(exc.detail), "error-method-not-allowed"), status=405)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Response(error_body(str(exc.detail), "error-invalid-params"), status=415)
    if isinstance(exc, exceptions.Throttled):
        return Response(error_body(str(exc.detail), "error-too-many-requests"), status=429)
    if isinstance(exc, exceptions.APIException):
        return Response(error_body(str(exc.detail), "error-invalid-params"), status=exc.status_code)
    return None


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(v) for v in detail)
    return str(detail)
