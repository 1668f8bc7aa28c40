"""Concord settings.

Everything configurable comes from the environment, so one code base serves the embedded default
(SQLite + a private redis-server started by the run command, all state under ``CONCORD_DATA_DIR``)
and a production set-up (``DATABASE_URL`` + ``REDIS_URL``).

Environment variables:
    CONCORD_DATA_DIR       where all state lives (database, uploads, signing key); default ``./data``
    DATABASE_URL           e.g. ``postgres://user@127.0.0.1:5432/concord``; default SQLite in the data dir
    REDIS_URL              e.g. ``redis://127.0.0.1:6379/0``; required unless the run command provides one
    DJANGO_SECRET_KEY      default: generated once and kept in the data dir
    DJANGO_DEBUG           ``1`` for debug
    CONCORD_ALLOWED_HOSTS  comma separated; default ``*``
    CONCORD_MAX_UPLOAD_MB  attachment size limit, default 100
    CONCORD_OPEN_REGISTRATION  ``0`` to turn off self sign-up (default on)
    CONCORD_SITE_NAME      the site's name (default Concord)
    CONCORD_RATE_LIMITS    ``off`` to turn every rate limit off (see chat/rate_limits.py for each one)
    CONCORD_DB_POOL_SIZE   PostgreSQL connections per web process (default 8)
    CONCORD_WEB_THREADS    HTTP requests served at once per web process (default 32; read in chat/asgi.py)
    CONCORD_DB_HEALTH_CHECKS  1 (default): pooled PostgreSQL connections are checked as they are lent
                           (a connection broken by a database restart is replaced, not used)
    CONCORD_DB_SYNCHRONOUS_COMMIT  PostgreSQL ``synchronous_commit`` for our connections (default: server's)

Some of these are only defaults: an admin may change them at run time as Rocket.Chat settings
(``POST /api/v1/settings/:_id``, Django admin; see accounts/server_settings.py): the upload limit
(``FileUpload_MaxFileSize``), registration (``Accounts_RegistrationForm``), the site name, deleting
one's own account and the federation switches.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CONCORD_DATA_DIR", BASE_DIR / "data")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    env = os.environ.get("DJANGO_SECRET_KEY")
    if env:
        return env
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("CONCORD_ALLOWED_HOSTS", "*").split(",") if h.strip()]
CSRF_FAILURE_VIEW = "chat.error_views.csrf_failure"
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CONCORD_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "accounts",
    "rooms",
    "federation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chat.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "chat.asgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'concord.sqlite3'}",
        conn_max_age=int(os.environ.get("CONCORD_DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and os.environ.get("CONCORD_DB_POOL", "1") == "1":
    # ASGI runs sync views on many threads: a bounded pool per process keeps PostgreSQL's
    # connection count predictable (web workers x pool size) instead of one connection per thread.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A connection broken while idle in the pool (PostgreSQL restarted, a failover, an idle
    # timeout) would otherwise be handed to the next request, which fails with a 500: with health
    # checks on, the pool tests each connection as it lends it and replaces a broken one.
    # The check asks the socket first and sends the empty query only when the server wrote to an
    # idle connection (chat/db_pool_check.py, installed at start-up): no round trip per request.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = os.environ.get("CONCORD_DB_HEALTH_CHECKS", "1") == "1"
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": int(os.environ.get("CONCORD_DB_POOL_SIZE", "8")), "timeout": 20,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and os.environ.get(
        "CONCORD_DB_SYNCHRONOUS_COMMIT"):
    # Posts to one room queue on the room's counter rows until each commit has been flushed to
    # disk, so a room's posting rate is bounded by the WAL fsync time (about 4 ms here). "off"
    # acknowledges a commit before its flush: no corruption, but a crash of the database server
    # can lose the last fraction of a second of acknowledged writes. Default: PostgreSQL's ("on").
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c synchronous_commit={os.environ['CONCORD_DB_SYNCHRONOUS_COMMIT']}"
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web server and the Celery worker share one SQLite file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests serve the app from a thread (uvicorn), so the test database must be a shared file.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-concord.sqlite3")}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 6}},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve static files straight from static/ (no collectstatic step needed to run).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

MAX_UPLOAD_BYTES = int(float(os.environ.get("CONCORD_MAX_UPLOAD_MB", "100")) * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "chat.upload_limits.SizeLimitedUploadHandler",  # the size limit, while the body streams in
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
OPEN_REGISTRATION = os.environ.get("CONCORD_OPEN_REGISTRATION", "1") == "1"
SITE_NAME = os.environ.get("CONCORD_SITE_NAME", "Concord")
# Rocket.Chat's Accounts_AllowDeleteOwnAccount (off by default there too).
CONCORD_ALLOW_DELETE_OWN_ACCOUNT = os.environ.get("CONCORD_ALLOW_DELETE_OWN_ACCOUNT", "0") == "1"

# Rate limits (chat/rate_limits.py): ``CONCORD_RATE_LIMITS=off`` turns them off;
# ``CONCORD_RATE_LIMIT_<NAME>=<count>/<seconds>`` changes one (names: login_account, login_address,
# rest, messages, invites, federation).
CONCORD_RATE_LIMITS = os.environ.get("CONCORD_RATE_LIMITS", "on").strip().lower() not in ("0", "off", "false", "no")
for _name in ("login_account", "login_address", "rest", "messages", "invites", "federation"):
    if os.environ.get(f"CONCORD_RATE_LIMIT_{_name.upper()}"):
        globals()[f"CONCORD_RATE_LIMIT_{_name.upper()}"] = os.environ[f"CONCORD_RATE_LIMIT_{_name.upper()}"]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Distinct prefixes let several Concord instances (or test runs) share one Redis.
REDIS_PREFIX = os.environ.get("CONCORD_REDIS_PREFIX", "concord")

CHANNEL_LAYERS = {
    "default": {
        # Redis pub/sub: a group_send is one PUBLISH, and each web process fans out to its own sockets.
        # Live events are at-most-once by design; clients catch up over the REST API after a reconnect.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_PREFIX}:asgi"},
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_PREFIX,
        # One pool per process: Django's default makes one per request under ASGI (chat/redis_pool.py).
        "OPTIONS": {"pool_class": "chat.redis_pool.SharedConnectionPool"},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{REDIS_PREFIX}:celery:"}
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CONCORD_CELERY_EAGER", "0") == "1"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "expire-typing": {"task": "rooms.tasks.expire_typing", "schedule": 5.0},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.RocketChatTokenAuthentication",
        "accounts.authentication.CsrfExemptSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "chat.api_parsers.RocketChatJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "chat.api_errors.rocketchat_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "chat.api_schema.RocketChatAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Concord REST API",
    "DESCRIPTION": "Rocket.Chat REST API v1 compatible endpoints of Concord.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGIN_URL = "/login"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CONCORD_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
from chat.settings_federation import *  # noqa: E402,F401,F403

CELERY_BEAT_SCHEDULE.update(FEDERATION_BEAT_SCHEDULE)  # noqa: F405 (federation beat tasks)
