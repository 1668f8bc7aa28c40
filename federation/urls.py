"""Matrix federation routes (``/_matrix/...`` and ``/.well-known/matrix/...``).

Paths use ``[^/]+`` segments matched against the decoded path (IDs arrive percent-encoded);
anything else under ``/_matrix`` is 404 ``M_UNRECOGNIZED``.
"""

from django.urls import re_path

from federation.api import media, membership, server, serving

F = r"^_matrix/federation/v1/"
F2 = r"^_matrix/federation/v2/"
S = r"(?P<{}>[^/]+)"

urlpatterns: list = [
    re_path(r"^\.well-known/matrix/server$", server.well_known_server),
    re_path(r"^_matrix/key/v2/server/?$", server.key_server),
    re_path(r"^_matrix/key/v2/server/" + S.format("key_id") + "$", server.key_server),
    re_path(r"^_matrix/key/v2/query/?$", server.key_query),
    re_path(r"^_matrix/key/v2/query/" + S.format("server_name") + "/?$", server.key_query),
    re_path(F + r"version$", server.version),
    re_path(F + r"send/" + S.format("txn_id") + "/?$", server.send_transaction),
    re_path(F + r"query/profile$", server.query_profile),
    re_path(F + r"query/directory$", server.query_directory),
    re_path(F + r"publicRooms$", server.public_rooms),
    re_path(F + r"event/" + S.format("event_id") + "$", serving.get_event),
    re_path(F + r"state/" + S.format("room_id") + "$", serving.get_state),
    re_path(F + r"state_ids/" + S.format("room_id") + "$", serving.get_state_ids),
    re_path(F + r"event_auth/" + S.format("room_id") + "/" + S.format("event_id") + "$", serving.get_event_auth),
    re_path(F + r"get_missing_events/" + S.format("room_id") + "$", serving.get_missing_events),
    re_path(F + r"backfill/" + S.format("room_id") + "$", serving.backfill),
    re_path(F + r"make_join/" + S.format("room_id") + "/" + S.format("user_id") + "$", membership.make_join),
    re_path(F + r"make_leave/" + S.format("room_id") + "/" + S.format("user_id") + "$", membership.make_leave),
    re_path(F2 + r"send_join/" + S.format("room_id") + "/" + S.format("event_id") + "$", membership.send_join),
    re_path(F2 + r"send_leave/" + S.format("room_id") + "/" + S.format("event_id") + "$", membership.send_leave),
    re_path(F2 + r"invite/" + S.format("room_id") + "/" + S.format("event_id") + "$", membership.invite),
    re_path(F + r"media/download/" + S.format("media_id") + "$", media.download),
    re_path(F + r"media/thumbnail/" + S.format("media_id") + "$", media.thumbnail),
    re_path(r"^_matrix/(?P<rest>.*)$", server.unknown_endpoint),
]
