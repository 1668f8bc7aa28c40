"""Small shared pieces of the Rocket.Chat-compatible REST API.

Views are thin: read parameters with :func:`param` (query string, JSON body or form, like
Rocket.Chat accepts), call an ``access_*``/``check_*`` then a ``do_*`` action, answer :func:`ok`.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import has_permission
from chat import rate_limits
from chat.api_errors import ApiError
from chat.api_parsers import json_problem

MAX_COUNT = 500
#: The largest ``offset`` accepted: JavaScript's largest safe integer, far below the 64-bit
#: ``OFFSET`` limit of SQLite and PostgreSQL (a larger one is refused by the database).
MAX_OFFSET = 2**53 - 1


def ok(_status: int = 200, **data: Any) -> Response:
    """A successful answer: the given fields plus ``"success": true``."""
    return Response({**data, "success": True}, status=_status)


def param(request: Request, name: str, default: Any = None, *, required: bool = False) -> Any:
    """A parameter from the body (JSON or form) or else the query string."""
    value: Any = None
    data = request.data if request.method not in ("GET", "HEAD") else {}
    if hasattr(data, "get"):
        value = data.get(name)
    if value is None:
        value = request.query_params.get(name)
    if value is None:
        if required:
            raise ApiError(f'The required "{name}" param is missing.', "error-invalid-params")
        return default
    return value


def str_param(request: Request, name: str, default: str | None = None, *, required: bool = False,
              max_length: int = 10000) -> str | None:
    value = param(request, name, default, required=required)
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ApiError(f'The "{name}" param must be a string.', "error-invalid-params")
    value = str(value)
    if "\x00" in value:
        raise ApiError(f'The "{name}" param contains a NUL character.', "error-invalid-params")
    if len(value) > max_length:
        raise ApiError(f'The "{name}" param is too long.', "error-invalid-params")
    if required and not value.strip():
        raise ApiError(f'The required "{name}" param is missing.', "error-invalid-params")
    return value


def bool_param(request: Request, name: str, default: bool | None = None) -> bool | None:
    value = param(request, name, None)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no", ""):
        return False
    raise ApiError(f'The "{name}" param must be a boolean.', "error-invalid-params")


def list_param(request: Request, name: str) -> list[str]:
    """A list given as a JSON array, a comma-separated string, or ``name[]=`` repeated."""
    value: Any = None
    if request.method not in ("GET", "HEAD") and hasattr(request.data, "get"):
        value = request.data.get(name)
        if value is None and hasattr(request.data, "getlist"):
            value = request.data.getlist(f"{name}[]") or None
    if value is None:
        value = request.query_params.getlist(f"{name}[]") or request.query_params.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ApiError(f'The "{name}" param must be a list of strings.', "error-invalid-params")


def json_param(request: Request, name: str) -> Any:
    """A JSON value given in the query string (Rocket.Chat's ``query``/``sort``/``fields``)."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(f'The "{name}" param is not valid JSON.', "error-invalid-params") from exc
    problem = json_problem(value)
    if problem is not None:
        raise ApiError(f'The "{name}" param is not usable JSON: {problem}.', "error-invalid-params")
    return value


def pagination(request: Request, default_count: int = 50) -> tuple[int, int]:
    """``(offset, count)`` from the query, bounded; Rocket.Chat's ``count=0`` means the maximum.

    An offset above :data:`MAX_OFFSET` is an ``error-invalid-params`` (the database cannot take it).
    """
    try:
        offset = int(request.query_params.get("offset", 0))
        count = int(request.query_params.get("count", default_count))
    except ValueError as exc:
        raise ApiError("offset and count must be integers", "error-invalid-params") from exc
    if offset < 0 or count < 0:
        raise ApiError("offset and count must not be negative", "error-invalid-params")
    if offset > MAX_OFFSET:
        raise ApiError(f"offset must not be larger than {MAX_OFFSET}", "error-invalid-params")
    if count == 0 or count > MAX_COUNT:
        count = MAX_COUNT
    return offset, count


class ApiView(APIView):
    """Base of every REST view: authenticated by default, Rocket.Chat error shapes, and the
    per-user REST rate limit (:mod:`chat.rate_limits`; ``api-bypass-rate-limit`` holders exempt)."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        user = request.user
        if rate_limits.enabled() and user is not None and user.is_authenticated \
                and not has_permission(user, "api-bypass-rate-limit"):
            rate_limits.check("rest", str(user.pk))


class PublicApiView(ApiView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
