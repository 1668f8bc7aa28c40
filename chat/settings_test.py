"""Settings for the test suite: ``chat.settings`` with per-run isolation.

pytest-django imports the settings before any ``conftest.py`` runs, so the environment a test run
needs is set here: its own data directory (SQLite test database, uploads, keys) and Redis key
prefix, so that parallel runs never collide, and no PostgreSQL connection pool (test helper threads
keep their connections, which would drain a bounded pool), and no rate limits (the tests of the
limits turn them on). Values already in the environment win.
"""

import os
import tempfile
import uuid

os.environ.setdefault("CONCORD_DB_POOL", "0")
os.environ.setdefault("CONCORD_RATE_LIMITS", "off")  # tests that check the limits turn them on
os.environ.setdefault("CONCORD_REDIS_PREFIX", f"concord-test-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("CONCORD_DATA_DIR", tempfile.mkdtemp(prefix="concord-test-"))

from chat.settings import *  # noqa: E402,F403
