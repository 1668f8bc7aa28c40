"""HTTP endpoints under ``/_matrix`` and ``/.well-known/matrix/server``.

Views are thin: :func:`matrix_endpoint` does the boundary work (federation switched on, method
check -> 405 ``M_UNRECOGNIZED``, body size -> 413 ``M_TOO_LARGE``, strict JSON -> ``M_NOT_JSON`` /
``M_BAD_JSON``, X-Matrix authentication -> 401 ``M_UNAUTHORIZED``, waking the origin's outbound queue)
and turns :class:`MatrixError` into the spec's error body; the view itself parses and calls one
function. No input may produce a 500: unexpected exceptions are logged and answered 500
``M_UNKNOWN`` only for genuine server faults.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.views.decorators.csrf import csrf_exempt

from federation.protocol.canonical_json import parse_json
from federation.protocol.errors import CanonicalJsonError, InvalidIdentifier
from federation.protocol.ids import RoomAlias, UserId
from federation.status import federation_serving

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
SERVER_VERSION = "0.1"


class MatrixError(Exception):
    """An error answer: HTTP status, Matrix errcode, message."""

    def __init__(self, status: int, errcode: str, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.errcode = errcode
        self.error = error


def error_response(status: int, errcode: str, error: str) -> JsonResponse:
    """The spec's error body."""
    return JsonResponse({"errcode": errcode, "error": error}, status=status)


View = Callable[..., Any]


def matrix_endpoint(methods: tuple[str, ...], *, auth: bool = True) -> Callable[[View], View]:
    """Wrap a view ``(request, body, origin, **kwargs) -> dict | HttpResponse`` with the boundary work."""

    def deco(fn: View) -> View:
        @csrf_exempt
        @functools.wraps(fn)
        def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if not federation_serving():
                return error_response(404, "M_UNRECOGNIZED", "Federation is disabled on this server")
            if request.method not in methods:
                return error_response(405, "M_UNRECOGNIZED", f"{request.method} is not allowed here")
            try:
                body = _read_json(request)
                origin = ""
                if auth:
                    from federation.transport.auth import AuthFailure, authenticate_request

                    try:
                        origin = authenticate_request(request, body, settings.CONCORD_SERVER_NAME)
                    except AuthFailure as exc:
                        log.info("refused federation request to %s: %s", request.path, exc)
                        raise MatrixError(exc.status, exc.errcode, str(exc))
                    from federation.bridge import server_allowed

                    if not server_allowed(origin):
                        raise MatrixError(403, "M_FORBIDDEN", "Federation with your server is not allowed")
                    _wake(origin)
                result = fn(request, body, origin, **kwargs)
            except MatrixError as exc:
                return error_response(exc.status, exc.errcode, exc.error)
            except Exception:
                log.exception("federation endpoint %s failed", request.path)
                return error_response(500, "M_UNKNOWN", "Internal server error")
            if isinstance(result, HttpResponse):
                return result
            return JsonResponse(result, safe=False, json_dumps_params={"ensure_ascii": False})

        return view

    return deco


def _read_json(request: HttpRequest) -> Any:
    if request.method in ("GET", "HEAD", "DELETE"):
        return None
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise MatrixError(400, "M_BAD_JSON", "bad Content-Length")
    if length > MAX_BODY_BYTES:
        raise MatrixError(413, "M_TOO_LARGE", "request body too large")
    try:
        raw = request.body
    except RawPostDataException:
        raw = b""
    except Exception as exc:  # RequestDataTooBig and friends
        if exc.__class__.__name__ == "RequestDataTooBig":
            raise MatrixError(413, "M_TOO_LARGE", "request body too large")
        raise
    if len(raw) > MAX_BODY_BYTES:
        raise MatrixError(413, "M_TOO_LARGE", "request body too large")
    if not raw:
        return {}
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MatrixError(400, "M_NOT_JSON", "body is not UTF-8 JSON")
    try:
        return parse_json(raw)
    except CanonicalJsonError as exc:
        code = "M_NOT_JSON" if "malformed" in str(exc) else "M_BAD_JSON"
        raise MatrixError(400, code, f"body is not valid JSON: {exc}")


def _wake(origin: str) -> None:
    """Any request from a server clears our backoff for it and re-drives its queue."""
    try:
        from federation.outbound import wake_destination

        wake_destination(origin)
    except Exception:
        log.exception("could not wake the queue of %s", origin)


# --- discovery and keys ------------------------------------------------------------------------


def well_known_server(request: HttpRequest) -> HttpResponse:
    """``/.well-known/matrix/server``: served when delegating (``CONCORD_WELL_KNOWN_SERVER``)."""
    target = getattr(settings, "CONCORD_WELL_KNOWN_SERVER", "")
    if not target or not federation_serving():
        return error_response(404, "M_NOT_FOUND", "No delegation configured")
    resp = JsonResponse({"m.server": target})
    resp["Cache-Control"] = "max-age=86400"
    return resp


@matrix_endpoint(("GET",), auth=False)
def key_server(request: HttpRequest, body: Any, origin: str, key_id: str = "") -> dict[str, Any]:
    """``GET /_matrix/key/v2/server``: our signed keys."""
    from federation.keys import server_key_response

    return server_key_response()


@matrix_endpoint(("GET", "POST"), auth=False)
def key_query(request: HttpRequest, body: Any, origin: str, server_name: str = "") -> dict[str, Any]:
    """Notary: ``GET /_matrix/key/v2/query/{serverName}``, ``POST /_matrix/key/v2/query``."""
    from federation.keys import notary_query

    if request.method == "GET":
        if not server_name:
            raise MatrixError(405, "M_UNRECOGNIZED", "GET needs a server name")
        ts = request.GET.get("minimum_valid_until_ts")
        crit: dict[str, Any] = {}
        if ts is not None:
            if not ts.isdigit():
                raise MatrixError(400, "M_INVALID_PARAM", "minimum_valid_until_ts must be an integer")
            crit = {"*": {"minimum_valid_until_ts": int(ts)}}
        criteria: dict[str, Any] = {server_name: {}}
        result = notary_query(criteria)
        if crit:
            result = [r for r in result if r.get("valid_until_ts", 0) >= crit["*"]["minimum_valid_until_ts"]]
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


# --- transactions ------------------------------------------------------------------------------


@matrix_endpoint(("PUT",))
def send_transaction(request: HttpRequest, body: Any, origin: str, txn_id: str) -> Any:
    """``PUT /_matrix/federation/v1/send/{txnId}``."""
    from federation.inbound import TransactionRefused, receive_transaction

    try:
        status, answer = receive_transaction(origin, txn_id, body)
    except TransactionRefused as exc:
        raise MatrixError(exc.status, exc.errcode, str(exc))
    return JsonResponse(answer, status=status)


# --- queries -----------------------------------------------------------------------------------


def _local_user(user_id: str) -> Any:
    from accounts.models import User

    try:
        uid = UserId.parse(user_id)
    except InvalidIdentifier:
        raise MatrixError(400, "M_INVALID_PARAM", "invalid user_id")
    if str(uid.server_name) != settings.CONCORD_SERVER_NAME:
        raise MatrixError(403, "M_FORBIDDEN", "user is not on this server")
    user = User.objects.filter(username=uid.localpart, is_remote=False, is_active=True).first()
    if user is None:
        raise MatrixError(404, "M_NOT_FOUND", "no such user")
    return user


def user_avatar_mxc(user: Any) -> str | None:
    """The ``mxc://`` URI of a local user's avatar (None without one)."""
    if not user.avatar:
        return None
    return f"mxc://{settings.CONCORD_SERVER_NAME}/avatar_{user.id}_{user.avatar_etag or 'x'}"


@matrix_endpoint(("GET",))
def query_profile(request: HttpRequest, body: Any, origin: str) -> dict[str, Any]:
    """``GET /_matrix/federation/v1/query/profile?user_id=&field=``."""
    user_id = request.GET.get("user_id")
    if not user_id:
        raise MatrixError(400, "M_MISSING_PARAM", "user_id is required")
    field = request.GET.get("field")
    if field not in (None, "displayname", "avatar_url"):
        raise MatrixError(400, "M_INVALID_PARAM", "field must be displayname or avatar_url")
    user = _local_user(user_id)
    out: dict[str, Any] = {}
    if field in (None, "displayname"):
        out["displayname"] = user.display_name
    avatar = user_avatar_mxc(user)
    if field in (None, "avatar_url") and avatar:
        out["avatar_url"] = avatar
    return out


@matrix_endpoint(("GET",))
def query_directory(request: HttpRequest, body: Any, origin: str) -> dict[str, Any]:
    """``GET /_matrix/federation/v1/query/directory?room_alias=``."""
    from federation.models import MatrixRoomAlias

    alias = request.GET.get("room_alias", "")
    try:
        RoomAlias.parse(alias)
    except InvalidIdentifier:
        raise MatrixError(400, "M_INVALID_PARAM", "invalid room_alias")
    row = MatrixRoomAlias.objects.filter(alias=alias).select_related("room").first()
    if row is None:
        raise MatrixError(404, "M_NOT_FOUND", "Room alias not found")
    servers = _servers_in_room(row.room)
    me = settings.CONCORD_SERVER_NAME
    return {"room_id": row.room.room_id, "servers": [me] + [s for s in servers if s != me]}


@matrix_endpoint(("GET", "POST"))
def public_rooms(request: HttpRequest, body: Any, origin: str) -> dict[str, Any]:
    """``GET|POST /_matrix/federation/v1/publicRooms`` (published rooms, with limit/since paging)."""
    from federation.models import MatrixRoom
    from federation.store import OrmEventStore, decode_state

    params = body if isinstance(body, dict) else {}
    limit_raw = params.get("limit", request.GET.get("limit", 100))
    since_raw = params.get("since", request.GET.get("since", "0"))
    try:
        limit = max(1, min(int(limit_raw), 500))
        offset = int(since_raw or 0)
    except (TypeError, ValueError):
        raise MatrixError(400, "M_INVALID_PARAM", "bad limit or since")
    rooms = list(MatrixRoom.objects.filter(published=True).order_by("room_id"))
    chunk = []
    for room in rooms[offset:offset + limit]:
        state = decode_state(room.current_state)
        store = OrmEventStore(room)
        evs = store.get_events(state.values())

        def content(key: tuple[str, str], evs: Any = evs, state: Any = state) -> dict[str, Any]:
            ev = evs.get(state.get(key, ""))
            return dict(ev.content) if ev is not None else {}

        members = sum(1 for (t, _), eid in state.items() if t == "m.room.member" and eid in evs
                      and evs[eid].membership == "join")
        entry: dict[str, Any] = {
            "room_id": room.room_id, "num_joined_members": members,
            "world_readable": content(("m.room.history_visibility", "")).get("history_visibility") == "world_readable",
            "guest_can_join": content(("m.room.guest_access", "")).get("guest_access") == "can_join",
            "join_rule": content(("m.room.join_rules", "")).get("join_rule", "public"),
        }
        for key, out_key, field in ((("m.room.name", ""), "name", "name"), (("m.room.topic", ""), "topic", "topic"),
                                    (("m.room.canonical_alias", ""), "canonical_alias", "alias"),
                                    (("m.room.avatar", ""), "avatar_url", "url")):
            value = content(key).get(field)
            if isinstance(value, str):
                entry[out_key] = value
        chunk.append(entry)
    out: dict[str, Any] = {"chunk": chunk, "total_room_count_estimate": len(rooms)}
    if offset + limit < len(rooms):
        out["next_batch"] = str(offset + limit)
    if offset > 0:
        out["prev_batch"] = str(max(0, offset - limit))
    return out


def _servers_in_room(room: Any) -> list[str]:
    from federation.store import OrmEventStore, decode_state

    state = decode_state(room.current_state)
    store = OrmEventStore(room)
    ids = [eid for (t, _), eid in state.items() if t == "m.room.member"]
    servers: list[str] = []
    for ev in store.get_events(ids).values():
        if ev.membership == "join" and ev.state_key and ":" in ev.state_key:
            s = ev.state_key.split(":", 1)[1]
            if s not in servers:
                servers.append(s)
    return servers


@csrf_exempt
def unknown_endpoint(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Anything else under ``/_matrix``: 404 ``M_UNRECOGNIZED`` (never 400, see Synapse's retries)."""
    return error_response(404, "M_UNRECOGNIZED", "Unrecognized request")
