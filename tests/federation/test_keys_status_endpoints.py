"""Our signing key (generation, rotation), federation status, ``federation_check``, and bad input at
the ``/_matrix`` boundary (never a 500)."""

from __future__ import annotations

import stat
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from federation.protocol.signing import VerifyKey, verify_json_signature
from tests.federation.conftest import ConcordTLS
from tests.federation.synapse_harness import SynapseServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fresh_data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path
    settings.CONCORD_SERVER_NAME = "concord.test"
    return tmp_path


def test_key_generated_on_first_use_and_rotated_with_a_new_id(fresh_data_dir: Path) -> None:
    key_file = fresh_data_dir / "matrix_signing.key"
    assert not key_file.exists()
    body = Client().get("/_matrix/key/v2/server").json()
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    [(old_id, old)] = body["verify_keys"].items()
    verify_json_signature(body, "concord.test", VerifyKey.decode(old_id, old["key"]))
    assert Client().get("/_matrix/key/v2/server").json()["verify_keys"] == body["verify_keys"]  # stable
    out = StringIO()
    call_command("federation_rotate_key", stdout=out)
    assert old_id in out.getvalue()
    body2 = Client().get("/_matrix/key/v2/server").json()
    [(new_id, new)] = body2["verify_keys"].items()
    assert new_id != old_id
    assert body2["old_verify_keys"][old_id]["key"] == old["key"]
    assert isinstance(body2["old_verify_keys"][old_id]["expired_ts"], int)
    verify_json_signature(body2, "concord.test", VerifyKey.decode(new_id, new["key"]))


def test_status(settings: Any, tmp_path: Path) -> None:
    from federation.status import COULD_NOT_ENABLE, DISABLED, RUNNING, federation_status

    settings.DATA_DIR = tmp_path
    settings.CONCORD_SERVER_NAME = ""
    assert federation_status().state == DISABLED
    settings.CONCORD_SERVER_NAME = "concord.test"
    settings.CONCORD_FEDERATION_ENABLED = False
    assert federation_status().state == DISABLED
    settings.CONCORD_FEDERATION_ENABLED = True
    settings.CONCORD_TLS_CERT = settings.CONCORD_TLS_KEY = ""
    st = federation_status()
    assert st.state == COULD_NOT_ENABLE and "CONCORD_TLS_CERT" in st.problems[0]
    settings.CONCORD_TLS_CERT = str(tmp_path / "missing.crt")
    settings.CONCORD_TLS_KEY = str(tmp_path / "missing.key")
    assert "cannot be read" in " ".join(federation_status().problems)
    (tmp_path / "c.pem").write_text("x")
    settings.CONCORD_TLS_CERT = settings.CONCORD_TLS_KEY = str(tmp_path / "c.pem")
    assert federation_status().state == RUNNING


def test_federation_check_on_ourselves(fed: ConcordTLS) -> None:
    out = StringIO()
    call_command("federation_check", stdout=out)
    text = out.getvalue()
    assert "Federation status: Running" in text and "All federation checks passed." in text, text


@pytest.mark.synapse
def test_federation_check_on_synapse(fed: ConcordTLS, synapse: SynapseServer) -> None:
    out = StringIO()
    call_command("federation_check", synapse.server_name, stdout=out)
    assert "All federation checks passed." in out.getvalue(), out.getvalue()


def test_boundary_errors_are_spec_errors_never_500(settings: Any, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path
    settings.CONCORD_SERVER_NAME = "concord.test"
    c = Client()

    def check(resp: Any, status: int, errcode: str) -> None:
        assert (resp.status_code, resp.json().get("errcode")) == (status, errcode), resp.content

    check(c.get("/_matrix/federation/v1/nonsense"), 404, "M_UNRECOGNIZED")
    check(c.get("/_matrix/federation/v2/send_join/x/y"), 405, "M_UNRECOGNIZED")  # known, wrong method
    check(c.get("/_matrix/federation/v2/nonsense/x/y"), 404, "M_UNRECOGNIZED")
    check(c.get("/_matrix/federation/v1/send/abc"), 405, "M_UNRECOGNIZED")
    check(c.delete("/_matrix/key/v2/server"), 405, "M_UNRECOGNIZED")
    check(c.get("/_matrix/federation/v1/query/profile?user_id=@a:concord.test"), 401, "M_UNAUTHORIZED")
    for header in ("Bearer abc", "X-Matrix", 'X-Matrix origin="a b",key="ed25519:1",sig="x"',
                   "X-Matrix origin=x.test,key=ed25519:1,sig=" + "A" * 5000, 'X-Matrix origin="x,destination=""'):
        check(c.get("/_matrix/federation/v1/query/directory?room_alias=%23a:concord.test",
                    HTTP_AUTHORIZATION=header), 401, "M_UNAUTHORIZED")
    check(c.put("/_matrix/federation/v1/send/1", b"{nope", content_type="application/json"), 400, "M_NOT_JSON")
    check(c.put("/_matrix/federation/v1/send/1", b"\xff\xfe", content_type="application/json"), 400, "M_NOT_JSON")
    check(c.put("/_matrix/federation/v1/send/1", b'{"a": 1.5}', content_type="application/json"), 400, "M_BAD_JSON")
    check(c.put("/_matrix/federation/v1/send/1", b'{"a": 9007199254740993}', content_type="application/json"),
          400, "M_BAD_JSON")
    check(c.post("/_matrix/key/v2/query", b'{"server_keys": []}', content_type="application/json"), 400,
          "M_BAD_JSON")
    check(c.get("/_matrix/key/v2/query/some.server?minimum_valid_until_ts=abc"), 400, "M_INVALID_PARAM")
    check(c.get("/.well-known/matrix/server"), 404, "M_NOT_FOUND")
    settings.CONCORD_WELL_KNOWN_SERVER = "fed.concord.test:443"
    assert c.get("/.well-known/matrix/server").json() == {"m.server": "fed.concord.test:443"}
    settings.CONCORD_SERVER_NAME = ""
    check(c.get("/_matrix/key/v2/server"), 404, "M_UNRECOGNIZED")
