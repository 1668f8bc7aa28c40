"""Server-level Matrix endpoints: discovery, keys, version, transactions, queries, the directory."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from federation import config
from federation.api.endpoint import error_response, matrix_endpoint
from federation.bridge import directory as bridge_directory
from federation.bridge.users import profile_of
from federation.handlers.keys import notary_query
from federation.handlers.receive import TransactionRefused, receive_transaction
from federation.signing_key import server_key_response
from federation.transport.errors import MatrixError

SERVER_VERSION = "0.1"


def well_known_server(request: HttpRequest) -> HttpResponse:
    """``/.well-known/matrix/server``: served when delegating (``CONCORD_WELL_KNOWN_SERVER``)."""
    target = config.well_known_server()
    if not target or not config.enabled():
        return error_response(404, "M_NOT_FOUND", "No delegation configured")
    resp = JsonResponse({"m.server": target})
    resp["Cache-Control"] = "max-age=86400"
    return resp


@matrix_endpoint(("GET",), auth=False)
def key_server(request: HttpRequest, body: Any, origin: str, key_id: str = "") -> dict[str, Any]:
    """``GET /_matrix/key/v2/server``: our signed keys."""
    return server_key_response()


@matrix_endpoint(("GET", "POST"), auth=False)
def key_query(request: HttpRequest, body: Any, origin: str, server_name: str = "") -> dict[str, Any]:
    """Notary: ``GET /_matrix/key/v2/query/{serverName}``, ``POST /_matrix/key/v2/query``."""
    if request.method == "GET":
        if not server_name:
            raise MatrixError(405, "M_UNRECOGNIZED", "GET needs a server name")
        ts = request.GET.get("minimum_valid_until_ts")
        if ts is not None and not ts.isdigit():
            raise MatrixError(400, "M_INVALID_PARAM", "minimum_valid_until_ts must be an integer")
        result = notary_query({server_name: {}})
        if ts is not None:
            result = [r for r in result if r.get("valid_until_ts", 0) >= int(ts)]
        return {"server_keys": result}
    if server_name:
        raise MatrixError(405, "M_UNRECOGNIZED", "POST goes to /_matrix/key/v2/query")
    wanted = body.get("server_keys") if isinstance(body, dict) else None
    if not isinstance(wanted, dict) or len(wanted) > 100:
        raise MatrixError(400, "M_BAD_JSON", "server_keys must be an object of at most 100 servers")
    return {"server_keys": notary_query(wanted)}


@matrix_endpoint(("GET",), auth=False)
def version(request: HttpRequest, body: Any, origin: str) -> dict[str, Any]:
    """``GET /_matrix/federation/v1/version``."""
    return {"server": {"name": "Concord", "version": SERVER_VERSION}}


@matrix_endpoint(("PUT",))
def send_transaction(request: HttpRequest, body: Any, origin: str, txn_id: str) -> Any:
    """``PUT /_matrix/federation/v1/send/{txnId}``."""
    try:
        status, answer = receive_transaction(origin, txn_id, body)
    except TransactionRefused as exc:
        raise MatrixError(exc.status, exc.errcode, str(exc))
    return JsonResponse(answer, status=status)


@matrix_endpoint(("GET",))
def query_profile(request: HttpRequest, body: Any, origin: str) -> dict[str, Any]:
    """``GET /_matrix/federation/v1/query/profile?user_id=&field=``."""
    user_id = request.GET.get("user_id")
    if not user_id:
        raise MatrixError(400, "M_MISSING_PARAM", "user_id is required")
    return profile_of(user_id, request.GET.get("field"))


@matrix_endpoint(("GET",))
def query_directory(request: HttpRequest, body: Any, origin: str) -> dict[str, Any]:
    """``GET /_matrix/federation/v1/query/directory?room_alias=``."""
    return bridge_directory.query_directory(request.GET.get("room_alias", ""))


@matrix_endpoint(("GET", "POST"))
def public_rooms(request: HttpRequest, body: Any, origin: str) -> dict[str, Any]:
    """``GET|POST /_matrix/federation/v1/publicRooms``: our public channels, limit/since paging, and
    the POST's ``filter.generic_search_term``."""
    params = body if isinstance(body, dict) else {}
    search = params.get("filter")
    term = search.get("generic_search_term") if isinstance(search, dict) else None
    return bridge_directory.public_rooms(params.get("limit", request.GET.get("limit", 100)),
                                         params.get("since", request.GET.get("since", "0")),
                                         term if isinstance(term, str) else "")


@csrf_exempt
def unknown_endpoint(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Anything else under ``/_matrix``: 404 ``M_UNRECOGNIZED`` (never 400, see Synapse's retries)."""
    return error_response(404, "M_UNRECOGNIZED", "Unrecognized request")
