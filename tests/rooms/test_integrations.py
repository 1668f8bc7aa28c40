"""Integrations (issue 13): incoming and outgoing webhooks and ``integrations.*``, end to end.

Over the live server with the unmodified ``rocketchat_API`` client (plain ``requests`` for
``/hooks/``). Outgoing deliveries run in a real Celery worker process (``celery -A chat worker``,
as in production; the test suite's Celery is not eager) on the test database, and go to a local
HTTP receiver on 127.0.0.1. Asynchronous outcomes are polled with a deadline, never timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from rooms.actions.rooms import do_create_room
from rooms.models import IntegrationHistory, Message
from rooms.payload_mapping import apply_mapping, render
from tests.rooms.room_helpers import api_error, post
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0


def _wait_for(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Receiver:
    """An HTTP server on 127.0.0.1 recording each POSTed JSON body; answers from ``answers`` in
    turn (status, JSON body), then ``default``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any] | None]] = []
        self.default: tuple[int, dict[str, Any] | None] = (200, None)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with receiver.lock:
                    receiver.received.append(body)
                    status, answer = receiver.answers.pop(0) if receiver.answers else receiver.default
                data = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture(scope="module")
def celery_worker(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory,
                  ) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process on the test database and this run's Redis prefix."""
    with django_db_blocker.unblock():
        database_url = _database_url()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update({"DJANGO_SETTINGS_MODULE": "chat.settings", "DATABASE_URL": database_url, "CONCORD_DB_POOL": "0"})
    env.pop("CONCORD_CELERY_EAGER", None)
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "chat", "worker", "--pool", "solo", "--loglevel", "INFO",
         "-n", f"integrations-{os.getpid()}@localhost", "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture
def team(live_url: str, make_user: Callable[..., Any], rc_client: Callable[..., Any]) -> dict[str, Any]:
    """admin and alice in #general; hookbot (the integrations' user) exists but is in no room."""
    admin = make_user("boss", roles=("admin", "user"))
    alice = make_user("alice")
    make_user("hookbot")
    general = do_create_room(admin, "c", "general", members=[alice])
    return {"live_url": live_url, "admin": admin, "alice": alice, "general": general,
            "rc_admin": rc_client("boss"), "rc_alice": rc_client("alice")}


def _incoming(rc: Any, **fields: Any) -> dict[str, Any]:
    options = {"alias": "CI", "emoji": ":robot:"} | fields
    result = rc.integrations_create(integrations_type="webhook-incoming", name="CI hook", enabled=True,
                                    username="hookbot", channel="#general", script_enabled=False, **options)
    assert result["success"] is True, result
    return result["integration"]  # type: ignore[no-any-return]


def _hook_url(live_url: str, integration: dict[str, Any]) -> str:
    return f"{live_url}/hooks/{integration['_id']}/{integration['token']}"


def _get(rc: Any, call: str, **params: Any) -> dict[str, Any]:
    """A GET over plain ``requests`` (the client pages ``integrations.list``/``history`` into items)."""
    r = requests.get(f"{rc.server_url}/api/v1/{call}", headers=rc.headers, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _last_messages(rc: Any, room_id: str) -> list[dict[str, Any]]:
    return _get(rc, "channels.history", roomId=room_id, count=20)["messages"]  # type: ignore[no-any-return]


# --- incoming -------------------------------------------------------------------------------


def test_incoming_webhook_posts_as_its_user_with_alias_and_attachments(team: dict[str, Any]) -> None:
    integration = _incoming(team["rc_admin"])
    assert integration["type"] == "webhook-incoming" and integration["username"] == "hookbot"
    assert integration["channel"] == ["#general"] and integration["scriptEnabled"] is False
    assert integration["overrideDestinationChannelEnabled"] is False and len(integration["token"]) >= 24

    attachment = {"title": "Build #7", "title_link": "https://ci.example/7", "text": "passed", "color": "#00ff00"}
    r = requests.post(_hook_url(team["live_url"], integration), json={"text": "build passed",
                                                                      "attachments": [attachment]}, timeout=10)
    assert r.status_code == 200 and r.json() == {"success": True}, r.text

    msg = _last_messages(team["rc_alice"], team["general"].id)[0]
    assert msg["msg"] == "build passed"
    assert msg["u"]["username"] == "hookbot"
    assert msg["alias"] == "CI" and msg["emoji"] == ":robot:"
    assert msg["attachments"][0]["title"] == "Build #7"
    assert msg["attachments"][0]["title_link"] == "https://ci.example/7"

    # The payload's own alias/avatar win over the integration's; a form with payload=<json> works too.
    r = requests.post(_hook_url(team["live_url"], integration), timeout=10, data={"payload": json.dumps(
        {"text": "deployed", "username": "Deployer", "icon_url": "https://ci.example/d.png"})})
    assert r.status_code == 200, r.text
    msg = _last_messages(team["rc_alice"], team["general"].id)[0]
    assert (msg["msg"], msg["alias"], msg["avatar"]) == ("deployed", "Deployer", "https://ci.example/d.png")


def test_incoming_webhook_refuses_wrong_tokens_disabled_hooks_and_channel_overrides(team: dict[str, Any]) -> None:
    integration = _incoming(team["rc_admin"])
    live = team["live_url"]
    before = Message.objects.filter(room=team["general"]).count()

    for url in (f"{live}/hooks/{integration['_id']}/wrong-token", f"{live}/hooks/nosuchid/{integration['token']}"):
        r = requests.post(url, json={"text": "x"}, timeout=10)
        assert r.status_code == 401, r.text
        assert r.json()["success"] is False and r.json()["message"] == "You must be logged in to do this."

    r = requests.post(_hook_url(live, integration), json={"text": "x", "channel": "#elsewhere"}, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"] == "overriding destination channel is disabled for this integration"

    updated = team["rc_admin"].integrations_update(
        integrations_type="webhook-incoming", name="CI hook", enabled=False, username="hookbot",
        channel="#general", script_enabled=False, integration_id=integration["_id"])
    assert updated["success"] is True and updated["integration"]["enabled"] is False
    r = requests.post(_hook_url(live, integration), json={"text": "x"}, timeout=10)
    assert r.status_code == 503 and r.json()["success"] is False

    assert Message.objects.filter(room=team["general"]).count() == before


def test_incoming_override_channel_when_allowed(team: dict[str, Any]) -> None:
    other = do_create_room(team["admin"], "c", "deploys")
    integration = _incoming(team["rc_admin"], overrideDestinationChannelEnabled=True)
    r = requests.post(_hook_url(team["live_url"], integration), json={"text": "to deploys", "channel": "#deploys"},
                      timeout=10)
    assert r.status_code == 200, r.text
    assert Message.objects.filter(room=other, text="to deploys", user__username="hookbot").exists()
    assert not Message.objects.filter(room=team["general"], text="to deploys").exists()


def test_payload_mapping_turns_a_push_payload_into_a_message(team: dict[str, Any]) -> None:
    mapping = {"text": "[{repository.full_name}] {pusher.name} pushed {commits.0.id}: {head_commit.message}",
               "alias": "{sender.login}"}
    integration = _incoming(team["rc_admin"], payloadMapping=mapping)
    assert integration["payloadMapping"] == mapping
    push = {"ref": "refs/heads/main", "repository": {"full_name": "acme/widgets"}, "pusher": {"name": "alice"},
            "sender": {"login": "alice-gh"}, "commits": [{"id": "abc123"}],
            "head_commit": {"message": "Fix the frobnicator"}, "channel": "#not-an-override"}
    r = requests.post(_hook_url(team["live_url"], integration), json=push, timeout=10)
    assert r.status_code == 200, r.text
    msg = _last_messages(team["rc_alice"], team["general"].id)[0]
    assert msg["msg"] == "[acme/widgets] alice pushed abc123: Fix the frobnicator"
    assert msg["alias"] == "alice-gh"

    _status, body = api_error(team["rc_admin"].integrations_create, integrations_type="webhook-incoming",
                              name="bad", enabled=True, username="hookbot", channel="#general",
                              script_enabled=False, payloadMapping={"channel": "{x}"})
    assert body["errorType"] == "error-invalid-payload-mapping"


def test_payload_templates() -> None:
    payload = {"a": {"b": [1, {"c": "deep"}]}, "flag": True, "obj": {"k": 1}}
    assert render("{a.b.1.c} {a.b.0} {flag} {missing.x} {{literal}}", payload) == "deep 1 true  {literal}"
    assert render("{obj}", payload) == '{"k":1}'
    assert apply_mapping({"text": "{a.b.-1.c}"}, payload) == {"text": "deep"}


# --- management and permissions -------------------------------------------------------------


def test_plain_user_cannot_manage_integrations(team: dict[str, Any]) -> None:
    rc = team["rc_alice"]
    status, body = api_error(rc.integrations_create, integrations_type="webhook-incoming", name="mine",
                             enabled=True, username="alice", channel="#general", script_enabled=False)
    assert status == 400 and body["errorType"] == "not_authorized"
    status, body = api_error(rc.integrations_list)
    assert status == 403 and body["error"] == "unauthorized"
    integration = _incoming(team["rc_admin"])
    status, body = api_error(rc.integrations_get, integration["_id"])
    assert status == 400 and body["error"] == "not-authorized"
    status, body = api_error(rc.integrations_remove, "webhook-incoming", integration["_id"])
    assert status == 403 and body["error"] == "unauthorized"


def test_manage_own_integrations_sees_only_its_own(team: dict[str, Any]) -> None:
    from accounts.models import Permission

    Permission.objects.get(id="manage-own-incoming-integrations").roles.add("user")
    admins = _incoming(team["rc_admin"])
    rc = team["rc_alice"]
    own = rc.integrations_create(integrations_type="webhook-incoming", name="mine", enabled=True,
                                 username="alice", channel="#general", script_enabled=False)
    assert own["success"] is True, own
    listed = _get(rc, "integrations.list")
    assert [i["_id"] for i in listed["integrations"]] == [own["integration"]["_id"]] and listed["total"] == 1
    assert [i["_id"] for i in rc.integrations_list()] == [own["integration"]["_id"]]
    assert rc.integrations_get(own["integration"]["_id"])["integration"]["name"] == "mine"
    status, body = api_error(rc.integrations_get, admins["_id"])
    assert body["error"] == "not-authorized"
    # Only rooms she is in: a channel she has not joined is refused.
    do_create_room(team["admin"], "c", "staff")
    _status, body = api_error(rc.integrations_create, integrations_type="webhook-incoming", name="x",
                              enabled=True, username="alice", channel="#staff", script_enabled=False)
    assert body["errorType"] == "error-invalid-channel"


def test_create_validation_get_list_update_remove(team: dict[str, Any]) -> None:
    rc = team["rc_admin"]
    for fields, error_type in (
        ({"channel": "general"}, "error-invalid-channel-start-with-chars"),
        ({"channel": "#nosuchroom"}, "error-invalid-room"),
        ({"username": "nobody-here"}, "error-invalid-user"),
        ({"script_enabled": True}, "error-scripts-not-supported"),
    ):
        args = {"integrations_type": "webhook-incoming", "name": "x", "enabled": True, "username": "hookbot",
                "channel": "#general", "script_enabled": False} | fields
        _status, body = api_error(rc.integrations_create, **args)
        assert body["errorType"] == error_type, (fields, body)
    _status, body = api_error(rc.integrations_create, integrations_type="webhook-outgoing", name="x",
                              enabled=True, username="hookbot", channel="#general", script_enabled=False,
                              event="sendMessage", urls=["ftp://example.org/"])
    assert body["errorType"] == "error-invalid-urls"
    _status, body = api_error(rc.integrations_get, "nope")
    assert body["error"] == "The integration does not exists."

    incoming = _incoming(rc)
    assert rc.integrations_get(incoming["_id"])["integration"]["_id"] == incoming["_id"]
    listed = _get(rc, "integrations.list", offset=0, count=10)
    assert listed["total"] == 1 and listed["integrations"][0]["_id"] == incoming["_id"]
    updated = rc.integrations_update(integrations_type="webhook-incoming", name="Renamed", enabled=True,
                                     username="hookbot", channel="#general", script_enabled=False,
                                     integration_id=incoming["_id"], alias="New alias")
    assert updated["integration"]["name"] == "Renamed" and updated["integration"]["alias"] == "New alias"
    assert updated["integration"]["token"] == incoming["token"]
    removed = rc.integrations_remove("webhook-incoming", incoming["_id"])
    assert removed["success"] is True and removed["integration"]["_id"] == incoming["_id"]
    assert _get(rc, "integrations.list")["total"] == 0
    r = requests.post(_hook_url(team["live_url"], incoming), json={"text": "gone"}, timeout=10)
    assert r.status_code == 401


# --- outgoing -------------------------------------------------------------------------------


def _outgoing(rc: Any, url: str, **fields: Any) -> dict[str, Any]:
    result = rc.integrations_create(integrations_type="webhook-outgoing", name="Bot", enabled=True,
                                    username="hookbot", channel="#general", script_enabled=False,
                                    event="sendMessage", urls=[url], **fields)
    assert result["success"] is True, result
    return result["integration"]  # type: ignore[no-any-return]


def test_outgoing_webhook_on_trigger_word_and_answer_posted(team: dict[str, Any], receiver: Receiver,
                                                            celery_worker: Any) -> None:
    integration = _outgoing(team["rc_admin"], receiver.url, triggerWords=["!deploy", "!status"], token="s3cret")
    assert integration["triggerWords"] == ["!deploy", "!status"] and integration["token"] == "s3cret"
    receiver.default = (200, {"text": "Deploying now", "attachments": [{"title": "job 42"}]})
    rc = team["rc_alice"]

    plain = rc.chat_post_message("just chatting", room_id=team["general"].id)["message"]
    triggered = rc.chat_post_message("!deploy widgets", room_id=team["general"].id)["message"]

    answer = _wait_for(lambda: Message.objects.filter(room=team["general"], text="Deploying now").first(),
                       "the receiver's answer in the channel")
    assert answer.user.username == "hookbot" and answer.attachments == [{"title": "job 42"}]
    assert len(receiver.received) == 1  # the plain message (posted first) triggered nothing
    got = receiver.received[0]
    assert got["token"] == "s3cret" and got["trigger_word"] == "!deploy"
    assert got["channel_id"] == team["general"].id and got["channel_name"] == "general"
    assert got["message_id"] == triggered["_id"] != plain["_id"]
    assert got["user_id"] == team["alice"].id and got["user_name"] == "alice"
    assert got["text"] == "!deploy widgets" and got["bot"] is False and got["timestamp"].startswith("20")

    # The answer, posted by the integration's own user, did not trigger it again (no loop), even
    # though it would match if it started with a trigger word: check with one that does.
    # The worker runs tasks in order, so a looped delivery would reach the receiver before the
    # next message's.
    receiver.default = (200, {"text": "!status is fine"})
    status = rc.chat_post_message("!status", room_id=team["general"].id)["message"]
    _wait_for(lambda: Message.objects.filter(room=team["general"], text="!status is fine").exists(), "answer 2")
    receiver.default = (200, {"text": "third"})
    again = rc.chat_post_message("!status again", room_id=team["general"].id)["message"]
    _wait_for(lambda: Message.objects.filter(room=team["general"], text="third").exists(), "answer 3")
    assert [r["message_id"] for r in receiver.received] == [triggered["_id"], status["_id"], again["_id"]]
    history = _get(team["rc_admin"], "integrations.history", id=integration["_id"])
    assert history["total"] == 3
    assert all(h["step"] == "url-response-sent-message" for h in history["history"])
    assert [h["_id"] for h in team["rc_admin"].integrations_history(integration["_id"])] == \
        [h["_id"] for h in history["history"]]


def test_outgoing_failed_call_is_retried_with_back_off(team: dict[str, Any], receiver: Receiver,
                                                       celery_worker: Any) -> None:
    integration = _outgoing(team["rc_admin"], receiver.url, retryFailedCalls=True, retryCount=3,
                            retryDelay="powers-of-ten")
    assert integration["retryCount"] == 3 and integration["retryDelay"] == "powers-of-ten"
    receiver.answers = [(500, None)]
    receiver.default = (200, {"text": "second time lucky"})

    msg = post("alice", team["general"].id, "anything at all")
    _wait_for(lambda: Message.objects.filter(room=team["general"], text="second time lucky").exists(),
              "the answer after the retry")
    assert [r["message_id"] for r in receiver.received] == [msg.id, msg.id]
    h = IntegrationHistory.objects.get(integration_id=integration["_id"])
    assert (h.attempts, h.step, h.http_status, h.finished) == (2, "url-response-sent-message", 200, True)


def test_outgoing_without_retries_gives_up_and_other_channels_do_not_trigger(
        team: dict[str, Any], receiver: Receiver, celery_worker: Any) -> None:
    integration = _outgoing(team["rc_admin"], receiver.url)
    assert integration["retryFailedCalls"] is False
    other = do_create_room(team["admin"], "c", "random", members=[team["alice"]])
    receiver.default = (500, None)
    post("alice", other.id, "in another channel")
    msg = post("alice", team["general"].id, "in general")
    h = _wait_for(lambda: IntegrationHistory.objects.filter(integration_id=integration["_id"], finished=True).first(),
                  "the failed delivery")
    assert h.step == "failed-and-not-configured-to-retry" and h.error and h.attempts == 1
    assert [r["message_id"] for r in receiver.received] == [msg.id]
