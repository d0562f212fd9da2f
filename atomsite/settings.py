"""ATOM settings: one flat module, every value from the environment through one ``env``."""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# The demo's embedded state (SQLite file, filesystem broker, logs); the tests point it elsewhere.
VAR_DIR = Path(env.str("ATOM_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
# Production must give a real key; only a debug (demo/test) run may fall back to a fixed one.
SECRET_KEY = env.str(
    "SECRET_KEY", default="atom-insecure-debug-key" if DEBUG else environ.Env.NOTSET
)
# Fernet keys sealing the shops' API secrets in the database (strategies/encryption.py): the
# first encrypts, all decrypt. Empty: a key derived from SECRET_KEY.
ATOM_SECRETS_KEY = env.list("ATOM_SECRETS_KEY", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "adminsortable2",
    "simple_history",
    "django_celery_beat",
    "axes",
    "csp",
    # The project package itself: the operator-only lockout admin (admin.py), the admin's
    # static scripts (static/atom/) and its health and lockout views.
    "atomsite",
    "strategies",
    "monitoring",
    "notifications",
]

MIDDLEWARE = [
    # First: /healthz answers probes whatever their Host header and scheme.
    "atomsite.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Serves the admin's static files from gunicorn in production (no separate web server).
    "atomsite.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "atomsite.urls"
WSGI_APPLICATION = "atomsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # templates/admin/base_site.html: the admin header's language switcher and the
        # notifications inbox's "Notices (N)" link (django.contrib.admin is listed before the
        # apps, so only a DIRS template can override the admin's own base_site.html).
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# The demo runs on an embedded SQLite file; production and the tests give a PostgreSQL URL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'atom.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Several demo processes share the file: WAL, a busy timeout and IMMEDIATE transactions
    # keep concurrent writers from failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # The same backend, its health check without a round trip (atomsite/postgresql).
        DATABASES["default"]["ENGINE"] = "atomsite.postgresql"
    # psycopg 3 binds parameters on the server and prepares a statement once a connection has
    # run it 5 times: the hot path's statements are parsed and planned once per connection
    # (bench/decide). A pooler in between must keep them: PgBouncer in session mode, or in
    # transaction mode from 1.22 with max_prepared_statements > 0 (docs/production.md). False:
    # Django's default, parameters bound in the client and nothing prepared.
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": 5}
        )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# One date format in both languages (2026-11-22 10:15): atomsite/formats/<language>/formats.py.
FORMAT_MODULE_PATH = ["atomsite.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
# `collectstatic` fills STATIC_ROOT for production; without it the apps' own static folders are
# served (WhiteNoise finders), so the admin is styled either way.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "admin:login"

# --- Login lockout (django-axes; RELIABILITY.md scenario 29) ---
# Axes checks the lock first (before any password is hashed), then the model backend logs in.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# After this many wrong passwords for one username from one address, that pair is locked out
# for the cool-off; every further try during the lock restarts it. The right password does not
# get in during the lock. Operators lift a lock in the admin (Axes, Access attempts: "Unlock").
AXES_FAILURE_LIMIT = env.int("ATOM_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ATOM_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "atomsite.lockout.locked_out"
AXES_CLIENT_IP_CALLABLE = "atomsite.lockout.client_ip"
# The request header (WSGI name) in which the reverse proxy *overwrites* the client's address,
# e.g. HTTP_X_REAL_IP with deploy/nginx.conf; empty: the socket's address (no proxy).
ATOM_CLIENT_IP_HEADER = env.str("ATOM_CLIENT_IP_HEADER", default="")
# atomsite/admin.py registers the lock pages for operators only (axes' own are for any staff
# member holding the model permissions).
AXES_ENABLE_ADMIN = False
# No banner on every manage.py command; locks are still logged as warnings.
AXES_VERBOSE = False

# --- Sessions: a working day, and never past the browser's closing ---
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=10 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- Security (production values; `manage.py check --deploy` is clean when DEBUG is off) ---
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

# --- Response headers: Content-Security-Policy (django-csp) and Permissions-Policy ---
# Scripts only from our own static files: no inline script, no eval (the admin's inline
# handlers live in atomsite/static/atom/). Styles allow inline: the badges, bars and charts
# carry their data-driven colours and widths in style attributes, and Django's own change list
# has a <style> block; a style cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        # data: for the favicon drawn inline in templates/admin/base_site.html.
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# No page of ATOM uses a device or sensor: deny them all to the page and to anything it embeds.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
}

# --- Celery (see RELIABILITY.md: at-least-once delivery; exactly-once lives in PostgreSQL) ---
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
# Redis re-delivers a message not acked within this many seconds (late acks: a task still
# running, or waiting on a countdown, counts as unacked). Everything below stays well under it.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A broker that accepts connections but never answers must not hang a web request or a
    # task's on-commit publish: fail fast, the sweeper re-enqueues what was not published.
    CELERY_BROKER_TRANSPORT_OPTIONS.update({"socket_timeout": 5, "socket_connect_timeout": 2})
if CELERY_BROKER_URL.startswith("filesystem://"):
    # A broker that needs no server, for the demo: queues are folders under var/broker.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {
            "data_folder_in": str(_broker_dir / "queue"),
            "data_folder_out": str(_broker_dir / "queue"),
            "processed_folder": str(_broker_dir / "processed"),
            "control_folder": str(_broker_dir / "control"),
            "store_processed": False,
            # Folders are polled: a short interval keeps the demo's decisions quick.
            "polling_interval": 0.1,
        }
    )
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Time limits stay far below the visibility timeout, so a running task is never redelivered.
CELERY_TASK_TIME_LIMIT = env.int(
    "CELERY_TASK_TIME_LIMIT", default=min(90, CELERY_VISIBILITY_TIMEOUT // 4)
)
CELERY_TASK_SOFT_TIME_LIMIT = env.int(
    "CELERY_TASK_SOFT_TIME_LIMIT", default=max(1, CELERY_TASK_TIME_LIMIT * 2 // 3)
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup would open a new database connection for every task; with this (very
# large) reuse count it does not, and atomsite/celery.py closes connections per CONN_MAX_AGE.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1_000_000_000)  # 0: per task
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Retries (gateway 5xx/timeouts, deadlock victims): exponential back-off from the base delay,
# capped well under the visibility timeout so a waiting retry is never re-delivered as a copy.
ATOM_RETRY_BASE_DELAY_SECONDS = env.float("ATOM_RETRY_BASE_DELAY_SECONDS", default=2.0)
ATOM_RETRY_MAX_DELAY_SECONDS = env.float(
    "ATOM_RETRY_MAX_DELAY_SECONDS", default=min(300.0, CELERY_VISIBILITY_TIMEOUT / 4)
)
# After this many gateway retries the task stops; the request stays `approved` and the sweeper
# re-enqueues it later (an approval is never dropped).
ATOM_EXECUTION_MAX_RETRIES = env.int("ATOM_EXECUTION_MAX_RETRIES", default=8)
# The decision task executes an approval itself (one broker round trip per request, issue 16);
# false: it publishes strategies.execute_decision instead (e.g. for a slow gateway, so that
# deciding never waits behind gateway calls).
ATOM_EXECUTE_IN_DECISION_TASK = env.bool("ATOM_EXECUTE_IN_DECISION_TASK", default=True)
# How a new request reaches its decider: "celery" (a message per request, the default) or
# "postgres" (PostgreSQL only: intake sends NOTIFY, `manage.py run_deciders` claims the request
# row itself; Celery still carries retries, reviews, the sweeper and the platforms). See
# strategies/pipeline/dispatch.py and docs/pipeline.md.
ATOM_DISPATCH = env.str("ATOM_DISPATCH", default="celery")
if ATOM_DISPATCH not in ("celery", "postgres"):
    raise ImproperlyConfigured(f"ATOM_DISPATCH must be celery or postgres, not {ATOM_DISPATCH!r}")
if ATOM_DISPATCH == "postgres" and "postgresql" not in DATABASES["default"]["ENGINE"]:
    raise ImproperlyConfigured("ATOM_DISPATCH=postgres needs PostgreSQL (DATABASE_URL)")
if not (
    CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT < CELERY_VISIBILITY_TIMEOUT
    and ATOM_RETRY_MAX_DELAY_SECONDS < CELERY_VISIBILITY_TIMEOUT
):
    raise ImproperlyConfigured(
        "Celery time limits and retry delays must stay under CELERY_VISIBILITY_TIMEOUT"
    )

# --- Health (/healthz) ---
# Without this token /healthz says only ok or not ok; with it (Authorization: Bearer <token>)
# it also names the dependency that failed. Empty: no one gets the details.
ATOM_HEALTH_TOKEN = env.str("ATOM_HEALTH_TOKEN", default="")

# --- Outbound gateway (API.md) ---
ATOM_GATEWAY = env.str("ATOM_GATEWAY", default="simulated")
ATOM_GATEWAY_URL = env.str("ATOM_GATEWAY_URL", default="")
ATOM_GATEWAY_TOKEN = env.str("ATOM_GATEWAY_TOKEN", default="")
# Bounds the WHOLE call (connect, send, every byte of the answer), not each socket read.
ATOM_GATEWAY_TIMEOUT = env.float("ATOM_GATEWAY_TIMEOUT", default=5.0)
# The execution lease: one copy of the execution task calls the gateway at a time; a worker
# killed mid-call leaves a lease that expires after this long. One attempt makes at most two
# gateway calls (the approval, then the status check after an ambiguous earlier attempt), both
# within 2 x ATOM_GATEWAY_TIMEOUT of its claim; the margin covers the clocks of different
# workers. `check` (strategies.E002-E004) refuses a lease, task time limit or visibility
# timeout that would let an attempt outlive them.
ATOM_EXECUTION_LEASE_MARGIN_SECONDS = 2.0
ATOM_EXECUTION_LEASE_SECONDS = env.float(
    "ATOM_EXECUTION_LEASE_SECONDS",
    default=2 * ATOM_GATEWAY_TIMEOUT + ATOM_EXECUTION_LEASE_MARGIN_SECONDS,
)

# --- Connected marketplaces (PLATFORMS.md, docs/platforms/) ---
# How often each connected channel's poller lists what changed (finds what pushes lost).
KUAISHOU_POLL_SECONDS = env.int("KUAISHOU_POLL_SECONDS", default=300)
DOUYIN_POLL_SECONDS = env.int("DOUYIN_POLL_SECONDS", default=300)

# --- Pipeline housekeeping ---
# A request still `received` (or an approval not yet executed) after this many seconds is
# re-enqueued by the sweeper: a message lost between COMMIT and publish never loses a request.
ATOM_SWEEP_AFTER_SECONDS = env.int("ATOM_SWEEP_AFTER_SECONDS", default=60)
# A sweep re-enqueues nothing while the broker's queue holds this many messages or more.
ATOM_SWEEP_MAX_BACKLOG = env.int("ATOM_SWEEP_MAX_BACKLOG", default=1000)
# Intake rejects a signed request whose timestamp is further than this from the server clock.
ATOM_SIGNATURE_MAX_SKEW_SECONDS = 300
ATOM_MAX_BODY_BYTES = 64 * 1024

# --- Notifications ---
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="atom@localhost")
ATOM_EMAIL_ENABLED = env.bool("ATOM_EMAIL_ENABLED", default=True)
# The review queue's daily digest names requests whose platform deadline is this close.
ATOM_REVIEW_DIGEST_HOURS = env.int("ATOM_REVIEW_DIGEST_HOURS", default=24)
ATOM_SMS_BACKEND = env.str("ATOM_SMS_BACKEND", default="console")  # console | http
ATOM_SMS_URL = env.str("ATOM_SMS_URL", default="")
# The back office's address as merchants open it (https://atom.example.com): the cap alerts'
# SMS and e-mail link to the notice, the strategy, the dashboard, "pause" and "raise the cap".
# Empty: the messages name the admin instead of linking to it.
ATOM_ADMIN_URL = env.str("ATOM_ADMIN_URL", default="")
ATOM_SMS_TOKEN = env.str("ATOM_SMS_TOKEN", default="")
ATOM_SMS_TIMEOUT = env.float("ATOM_SMS_TIMEOUT", default=5.0)
# A claimed delivery not answered within this lease is tried again (longer than the task's hard
# time limit, so a running send is never doubled). Temporary failures back off exponentially
# from the base to the cap (both far below the broker's visibility timeout), then give up.
ATOM_NOTIFY_LEASE_SECONDS = env.int("ATOM_NOTIFY_LEASE_SECONDS", default=120)
ATOM_NOTIFY_RETRY_BASE_SECONDS = env.int("ATOM_NOTIFY_RETRY_BASE_SECONDS", default=30)
ATOM_NOTIFY_RETRY_MAX_SECONDS = env.int("ATOM_NOTIFY_RETRY_MAX_SECONDS", default=600)
ATOM_NOTIFY_MAX_ATTEMPTS = env.int("ATOM_NOTIFY_MAX_ATTEMPTS", default=10)
# Delivery attempts older than this are purged by the daily housekeeping task.
ATOM_NOTIFY_KEEP_ATTEMPTS_DAYS = env.int("ATOM_NOTIFY_KEEP_ATTEMPTS_DAYS", default=90)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
