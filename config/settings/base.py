"""Every Tollgate setting, read from the environment.

Defaults make `make run` work on a bare machine: SQLite in the working directory, no Redis
(counters in the database, Celery tasks in-process). No secret has a usable default.
"""

from pathlib import Path

import environ

from config.secretkey import load_or_create_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
TESTING = False  # config/settings/test.py
# Generated once per installation and kept in a file readable by its owner only, unless given.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or load_or_create_secret_key(BASE_DIR / "var" / "secret_key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "proxy",
    "tenants",
    "billing",
]

MIDDLEWARE = [
    "proxy.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = False  # SDKs POST to exact paths; a redirect would lose the body.

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


def _database() -> dict:
    db = env.db("DATABASE_URL", default=f"sqlite:///{Path.cwd() / 'tollgate.db'}")
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
        # two writers queue on the busy timeout instead of failing with "database is locked".
        db["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        db["CONN_MAX_AGE"] = None  # kept for the green thread's life: see config/database.py
    elif db["ENGINE"] == "django.db.backends.postgresql":
        # Django's native psycopg pool: a request borrows a connection and gives it back at the end,
        # so thousands of green threads share a few connections.
        db["OPTIONS"] = {"pool": {"min_size": 1, "max_size": env.int("TOLLGATE_DB_POOL_SIZE", default=20)}}
    return db


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Empty: no Redis. Counters fall back to the database and Celery runs tasks in-process.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TIMEZONE = "UTC"

# The team portal's sign-in (tenants/portal/); the staff dashboard uses the admin's.
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"
# Password-reset mail. Default: printed to the console (the log), so `make run` needs no mail
# server; production sets e.g. smtp+tls://user:password@smtp.example.com:587.
vars().update(env.email_url("TOLLGATE_EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("TOLLGATE_EMAIL_FROM", default="tollgate@localhost")
# The host (and port) that password-reset links name, e.g. tollgate.example.com. Empty: the host
# the request came to, which DJANGO_ALLOWED_HOSTS must then pin, or a forged Host header could
# put someone else's site in the link.
TOLLGATE_PUBLIC_HOST = env("TOLLGATE_PUBLIC_HOST", default="")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Only for `collectstatic` in an image (docker-compose sets it); otherwise assets come from the apps.
STATIC_ROOT = env("TOLLGATE_STATIC_ROOT", default=None)
# Serve admin assets straight from the installed apps: `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "proxy.errors.drf_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tollgate",
    "DESCRIPTION": "OpenAI- and Mistral-compatible LLM gateway.",
    "VERSION": "0.1.0",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "proxy.openapi.add_llm_api"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"redact_keys": {"()": "config.logredaction.RedactKeys"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_keys"]}},
    "root": {"handlers": ["console"], "level": env("TOLLGATE_LOG_LEVEL", default="INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

# --- Tollgate ---------------------------------------------------------------------------------
TOLLGATE_MASTER_KEY = env("TOLLGATE_MASTER_KEY", default="")  # or general_settings.master_key
# Key for provider secrets at rest. Empty: derived from SECRET_KEY (so keep that one stable).
TOLLGATE_ENCRYPTION_KEY = env("TOLLGATE_ENCRYPTION_KEY", default="")
# Request bodies larger than this are refused with 413 before they are read.
TOLLGATE_MAX_REQUEST_BYTES = env.int("TOLLGATE_MAX_REQUEST_BYTES", default=16 * 1024 * 1024)
# How long a worker trusts its in-process copy of the deployments before checking for changes.
TOLLGATE_DEPLOYMENT_CACHE_SECONDS = env.float("TOLLGATE_DEPLOYMENT_CACHE_SECONDS", default=1.0)
# How stale a worker's view of keys, users and teams may get: it polls the change counter at most
# this often, so a blocked or deleted key is refused everywhere within about this time.
TOLLGATE_AUTH_CACHE_SECONDS = env.float("TOLLGATE_AUTH_CACHE_SECONDS", default=0.5)
# Defaults for upstream calls when neither the deployment nor the config sets them (seconds).
TOLLGATE_UPSTREAM_CONNECT_TIMEOUT = env.float("TOLLGATE_UPSTREAM_CONNECT_TIMEOUT", default=10.0)
TOLLGATE_UPSTREAM_TIMEOUT = env.float("TOLLGATE_UPSTREAM_TIMEOUT", default=600.0)
# Connections kept alive per upstream host, per worker process.
TOLLGATE_UPSTREAM_POOL_SIZE = env.int("TOLLGATE_UPSTREAM_POOL_SIZE", default=200)

DATA_UPLOAD_MAX_MEMORY_SIZE = TOLLGATE_MAX_REQUEST_BYTES

# Retries of a failed upstream call when the config's router_settings/litellm_settings set no
# num_retries (LiteLLM's proxy default: 2, three attempts in all).
TOLLGATE_NUM_RETRIES = env.int("TOLLGATE_NUM_RETRIES", default=2)
# GET /health and background health checks: how long one deployment's probe may take (seconds).
TOLLGATE_HEALTH_TIMEOUT = env.float("TOLLGATE_HEALTH_TIMEOUT", default=30.0)
# /metrics is open, as LiteLLM's (keep it on the internal network); 1 requires the master key.
TOLLGATE_METRICS_REQUIRE_KEY = env.bool("TOLLGATE_METRICS_REQUIRE_KEY", default=False)

# How long a worker trusts its in-process copy of the admin-edited price book (billing/pricetable.py).
TOLLGATE_PRICE_CACHE_SECONDS = env.float("TOLLGATE_PRICE_CACHE_SECONDS", default=5.0)

# The usage ledger (billing/): how many rows one rollup transaction counts, and how long raw rows
# are kept once counted into spend and the daily table (0 keeps them for ever).
TOLLGATE_ROLLUP_BATCH = env.int("TOLLGATE_ROLLUP_BATCH", default=2000)
TOLLGATE_USAGE_RETENTION_DAYS = env.int("TOLLGATE_USAGE_RETENTION_DAYS", default=90)
# Without Redis there is no Celery worker or beat: each gunicorn worker runs the periodic jobs
# itself (config/embedded_beat.py). Set to 0 when a separate beat runs them.
TOLLGATE_EMBEDDED_BEAT = env.bool("TOLLGATE_EMBEDDED_BEAT", default=not REDIS_URL)
