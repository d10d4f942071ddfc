"""DoseReg settings: one module, driven by environment variables (see README, "Configuration").

Nothing configured gives the embedded mode: SQLite in the data directory and tasks run in-process.  DATABASE_URL and
CELERY_BROKER_URL switch to PostgreSQL and a Celery worker on Redis; the code is the same.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys
import tempfile
from pathlib import Path

from dosereg.env import (
    ae_title,
    database_from_url,
    env_bool,
    env_int,
    env_list,
    env_path,
    env_str,
    fail,
    local_time_zone,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- data directory: database, DICOM inbox, logs, secret key -------------------------------------------------------
if "pytest" in sys.modules and not os.environ.get("DOSEREG_DATA_DIR"):
    # a test run never touches the developer's ./var
    os.environ["DOSEREG_DATA_DIR"] = tempfile.mkdtemp(prefix="dosereg-test-")
DATA_DIR = env_path("DOSEREG_DATA_DIR", str(BASE_DIR / "var"))
INBOX_DIR = DATA_DIR / "inbox"
LOG_DIR = DATA_DIR / "logs"
try:
    for _d in (DATA_DIR, INBOX_DIR, LOG_DIR, DATA_DIR / "static"):
        _d.mkdir(parents=True, exist_ok=True)
except OSError as exc:
    fail(f"DOSEREG_DATA_DIR={DATA_DIR} cannot be created ({exc.strerror})")


def _secret_key() -> str:
    configured = env_str("DOSEREG_SECRET_KEY")
    if configured:
        return configured
    key_file = DATA_DIR / "secret_key"
    try:
        if key_file.exists():
            return key_file.read_text().strip()
        key = secrets.token_urlsafe(50)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key
    except FileExistsError:
        return key_file.read_text().strip()
    except OSError as exc:
        fail(f"cannot keep the secret key in {key_file} ({exc.strerror}); set DOSEREG_SECRET_KEY")
    return ""


SECRET_KEY = _secret_key()
DEBUG = env_bool("DOSEREG_DEBUG", False)
ALLOWED_HOSTS = env_list("DOSEREG_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
if "pytest" in sys.modules:
    ALLOWED_HOSTS = ["*"]
CSRF_TRUSTED_ORIGINS = env_list("DOSEREG_CSRF_TRUSTED_ORIGINS", "")

# --- HTTP and DICOM ------------------------------------------------------------------------------------------------
HTTP_PORT = env_int("DOSEREG_HTTP_PORT", 8000, minimum=1, maximum=65535)
DICOM_PORT = env_int("DOSEREG_DICOM_PORT", 11112, minimum=1, maximum=65535)
DICOM_BIND = env_str("DOSEREG_DICOM_BIND", "0.0.0.0")
DICOM_AE_TITLE = ae_title("DOSEREG_AE_TITLE", "DOSEREG")
# Unset or '*': accept any calling AE (a system-check warning and a log line say so).  Else 'AET' or 'AET@host'.
ALLOWED_CALLING_AETS = env_list("DOSEREG_ALLOWED_CALLING_AETS", "*")
DICOM_ACCEPT_IMAGES = env_bool("DOSEREG_DICOM_ACCEPT_IMAGES", True)
DICOM_MAX_ASSOCIATIONS = env_int("DOSEREG_DICOM_MAX_ASSOCIATIONS", 10, minimum=1, maximum=200)
# Free space kept on the inbox's file system: below it objects are answered 0xA700 (dicomrx.diskspace).  More than the
# largest object times the concurrent associations, since each object is streamed to disk before it is checked.
DICOM_MIN_FREE_MB = env_int("DOSEREG_DICOM_MIN_FREE_MB", 500, minimum=0, maximum=10_000_000)
DICOM_TLS_CERT = env_str("DOSEREG_DICOM_TLS_CERT")
DICOM_TLS_KEY = env_str("DOSEREG_DICOM_TLS_KEY")
DICOM_TLS_CA = env_str("DOSEREG_DICOM_TLS_CA")
PACS_HOST = env_str("DOSEREG_PACS_HOST")
PACS_PORT = env_int("DOSEREG_PACS_PORT", 104, minimum=1, maximum=65535)
PACS_AE_TITLE = ae_title("DOSEREG_PACS_AE_TITLE", "PACS")
PACS_RETRIEVE = env_str("DOSEREG_PACS_RETRIEVE", "move").lower()
if PACS_RETRIEVE not in {"move", "get"}:
    fail(f"DOSEREG_PACS_RETRIEVE={PACS_RETRIEVE!r} must be 'move' or 'get'")

# Query/retrieve: the C-MOVE destinations DoseReg may send to, 'AET@host:port,...' (dicomrx.qr) -> {AET: (host, port)}
QR_DESTINATIONS: dict[str, tuple[str, int]] = {}
for _entry in env_list("DOSEREG_QR_DESTINATIONS", ""):
    _aet, _, _address = _entry.partition("@")
    _host, _, _port = _address.rpartition(":")
    if not _aet.strip() or len(_aet.strip()) > 16 or not _host or not _port.isdigit() or not 0 < int(_port) < 65536:
        fail(f"DOSEREG_QR_DESTINATIONS entry {_entry!r} is not AET@host:port")
    QR_DESTINATIONS[_aet.strip()] = (_host.strip(), int(_port))

# --- FHIR and HL7 v2 (dosereg.interop; each off unless set) ---------------------------------------------------------
FHIR_BASE_URL = env_str("DOSEREG_FHIR_BASE_URL").rstrip("/")  # push new/corrected studies to this FHIR server
if FHIR_BASE_URL and not FHIR_BASE_URL.startswith(("http://", "https://")):
    fail(f"DOSEREG_FHIR_BASE_URL={FHIR_BASE_URL!r} is not an http(s) URL")
FHIR_AUTHORIZATION = env_str("DOSEREG_FHIR_AUTHORIZATION")  # the Authorization header sent with each push
HL7_RIS_HOST = env_str("DOSEREG_HL7_RIS_HOST")  # ORU^R01 with the dose text to the RIS over MLLP
HL7_RIS_PORT = env_int("DOSEREG_HL7_RIS_PORT", 2575, minimum=1, maximum=65535)
HL7_LISTEN_PORT = env_int("DOSEREG_HL7_LISTEN_PORT", 0, minimum=0, maximum=65535)  # ADT^A40/A08 in; 0 = off
HL7_LISTEN_BIND = env_str("DOSEREG_HL7_LISTEN_BIND", "0.0.0.0")
HL7_SENDING_FACILITY = env_str("DOSEREG_HL7_SENDING_FACILITY", "DOSEREG")
HL7_RIS_APPLICATION = env_str("DOSEREG_HL7_RIS_APPLICATION", "RIS")
INTEROP_MAX_ATTEMPTS = env_int("DOSEREG_INTEROP_MAX_ATTEMPTS", 8, minimum=1, maximum=100)

# --- operations (dosereg.ops): who may read /metrics without an API token --------------------------------------------
METRICS_ALLOW = env_list("DOSEREG_METRICS_ALLOW", "127.0.0.1,::1")  # addresses or networks (CIDR)
for _entry in METRICS_ALLOW:
    try:
        ipaddress.ip_network(_entry, strict=False)
    except ValueError:
        fail(f"DOSEREG_METRICS_ALLOW entry {_entry!r} is not an IP address or network")

# --- privacy -------------------------------------------------------------------------------------------------------
# With a key, patient IDs are stored as keyed HMAC-SHA-256 pseudonyms and names and birth dates are not stored.
PSEUDONYM_KEY = env_str("DOSEREG_PSEUDONYM_KEY")

# --- first administrator (make run) --------------------------------------------------------------------------------
ADMIN_USERNAME = env_str("DOSEREG_ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = env_str("DOSEREG_ADMIN_PASSWORD")

# --- applications --------------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "dosereg.registry",
    "dicomrx",
    "triggers",
    "drl",
    "dosereg.web",
    "dosereg.interop",
    "dosereg.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dosereg.web.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "dosereg.urls"
WSGI_APPLICATION = "dosereg.wsgi.application"
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
                "dosereg.web.context.navigation",
            ],
        },
    },
]

# --- database ------------------------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
DATABASES = {"default": database_from_url(DATABASE_URL, DATA_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery --------------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or (CELERY_BROKER_URL or None)
# Embedded mode: no broker, tasks run in the caller (the listener's ingest thread is separate; see dicomrx).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# Eager tasks still build a broker connection object: name the in-memory transport, or kombu warns on every task
# "No hostname was supplied. Reverting to default 'localhost'" (an AMQP default this mode never uses).
if not CELERY_BROKER_URL:
    CELERY_BROKER_READ_URL = CELERY_BROKER_WRITE_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# acks_late: a message is acknowledged after its task ran, so a killed worker's message is delivered again -- after
# the visibility timeout on Redis (kombu's default is an hour).  It must exceed the longest ingest batch, or a slow
# task is delivered twice (harmless: ingest claims each object, but wasted work); the sweeper covers the wait.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("DOSEREG_CELERY_VISIBILITY_TIMEOUT", 900,
                                                                 minimum=60, maximum=86400)}
CELERY_IMPORTS = ["dicomrx.sweeper"]  # the sweeper task (not in a tasks module, so autodiscovery misses it)
CELERY_TASK_SERIALIZER = "json"
# Ingest (dicomrx.dispatch, dicomrx.tasks): received objects are parsed and recorded in batches of up to this many
# objects, or what arrived within INGEST_BATCH_WAIT_MS while associations are open, one transaction per batch.
INGEST_BATCH_SIZE = env_int("DOSEREG_INGEST_BATCH_SIZE", 50, minimum=1, maximum=5000)
INGEST_BATCH_WAIT_MS = env_int("DOSEREG_INGEST_BATCH_WAIT_MS", 500, minimum=0, maximum=60000)
# Embedded mode: ingest in a child process of the listener (dicomrx.ingest_child), so receiving and ingesting do not
# take turns on one interpreter lock; off: the listener's own ingest thread (one process, ~100 MB less memory).
INGEST_PROCESS = env_bool("DOSEREG_INGEST_PROCESS", True)
# An object whose ingest raised (not a refusal: an unreadable file, a parser error) is tried again after
# INGEST_RETRY_DELAY_S x 2^(attempts-1) seconds, at most INGEST_MAX_ATTEMPTS times; then it waits for `reprocess`.
INGEST_MAX_ATTEMPTS = env_int("DOSEREG_INGEST_MAX_ATTEMPTS", 5, minimum=1, maximum=20)
INGEST_RETRY_DELAY_S = env_int("DOSEREG_INGEST_RETRY_DELAY_S", 60, minimum=1, maximum=86400)
# How often Celery beat sweeps for received objects still waiting after that delay (dicomrx.sweeper; production).
INGEST_SWEEP_SECONDS = env_int("DOSEREG_INGEST_SWEEP_SECONDS", 60, minimum=5, maximum=86400)
# Schedules run by Celery beat (production).  The embedded mode has no beat: run the commands from cron instead.
# A crontab schedule is written as its fields ({"crontab": {...}}); dosereg.celery makes the crontab, so that settings
# import no Celery (a command that needs no worker starts without it).
CELERY_BEAT_SCHEDULE: dict = {
    # received objects whose queued ingest was lost (broker restart, killed worker) are queued again
    "dicomrx-ingest-sweep": {"task": "dicomrx.sweep_received", "schedule": float(INGEST_SWEEP_SECONDS)},
    # the yearly DRL comparison of the previous calendar year (ESR EuroSafe Imaging: at least once a year)
    "drl-yearly-comparison": {
        "task": "drl.yearly_comparison",
        "schedule": {"crontab": dict(minute=0, hour=3,
                                     day_of_month=env_int("DOSEREG_DRL_YEARLY_DAY", 15, minimum=1, maximum=28),
                                     month_of_year=env_int("DOSEREG_DRL_YEARLY_MONTH", 1, minimum=1, maximum=12))},
    },
    # due DRL re-comparisons (after an equipment or protocol change) run on their own once the period since the
    # change holds enough patients (drl.services.drl_due_comparisons_run; the embedded mode calls it from its timer)
    "drl-due-comparisons": {
        "task": "drl.due_comparisons",
        "schedule": {"crontab": dict(minute=40, hour=2)},
    },
    # rooms that cannot push: pull their dose objects from the PACS every hour (no-op without DOSEREG_PACS_HOST)
    "dicomrx-pacs-pull": {
        "task": "dicomrx.pacs_pull_recent",
        "schedule": {"crontab": dict(minute=20)},
        "kwargs": {"days": 2},
    },
    # deliveries whose first attempt failed (mail server down) are retried until sent or given up
    "retry-pending-notifications": {
        "task": "dosereg.registry.tasks.retry_pending_notifications",
        "schedule": 300.0,
    },
    # FHIR and HL7 deliveries whose attempt failed (server down, 503, NAK): retried with backoff (dosereg.interop)
    "interop-retry-due-deliveries": {
        "task": "dosereg.interop.tasks.retry_due_deliveries",
        "schedule": 60.0,
    },
}

# --- auth ----------------------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 8 * 3600  # a working shift
SESSION_COOKIE_SECURE = env_bool("DOSEREG_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DoseReg API",
    "DESCRIPTION": "Radiation dose registry: studies, patient dose history, alerts, DRL comparisons, incidents.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # several models have a "kind" field with different choices: name each enum
    "ENUM_NAME_OVERRIDES": {
        "IncidentKindEnum": "triggers.incidents.models.KIND_CHOICES",
        "TriggerRuleKindEnum": "triggers.models.KIND_CHOICES",
        "IncidentActionKindEnum": "triggers.incidents.models.IncidentAction.KIND_CHOICES",
        "DueComparisonKindEnum": "drl.models.DueComparison.KIND_CHOICES",
    },
}

# --- incidents: days from an exposure to the competent authority's notification due date ----------------------------
# 2013/59/Euratom Art. 63(e) says "as soon as possible"; set the deadline your authority gives.
INCIDENT_NOTIFICATION_DAYS = env_int("DOSEREG_INCIDENT_NOTIFICATION_DAYS", 30, minimum=0, maximum=365)

# --- i18n and time -------------------------------------------------------------------------------------------------
LANGUAGE_CODE = env_str("DOSEREG_LANGUAGE", "en")
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français"), ("nl", "Nederlands")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# DICOM dates and times without an offset are read in this zone and stored in UTC.
TIME_ZONE = env_str("DOSEREG_TIME_ZONE") or local_time_zone()
try:
    import zoneinfo

    zoneinfo.ZoneInfo(TIME_ZONE)
except Exception:  # noqa: BLE001 - any failure means the name is unusable
    fail(f"DOSEREG_TIME_ZONE={TIME_ZONE!r} is not a known time zone")
USE_I18N = True
USE_TZ = True

# --- static files --------------------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- e-mail (alert notifications) ----------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("DOSEREG_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("DOSEREG_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DOSEREG_EMAIL_PORT", 25, minimum=1, maximum=65535)
DEFAULT_FROM_EMAIL = env_str("DOSEREG_EMAIL_FROM", "dosereg@localhost")

# --- logging: UIDs, calling AE titles and reasons; never patient names, IDs or birth dates --------------------------
LOG_LEVEL = env_str("DOSEREG_LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    fail(f"DOSEREG_LOG_LEVEL={LOG_LEVEL!r} is not a log level (use DEBUG, INFO, WARNING, ERROR or CRITICAL)")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"},
        "file": {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": str(LOG_DIR / "dosereg.log"),
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stderr", "file"], "level": LOG_LEVEL},
    "loggers": {
        "pynetdicom": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},  # one line per task in the embedded mode is noise
    },
}

# --- security ------------------------------------------------------------------------------------------------------
# Files: everything this process creates is private to the service user (database, WAL, logs, inbox objects, secret);
# the data directory, inbox and logs are 0700.  Set again at every start; the check dosereg.E010 reports drift.
os.umask(0o077)
PRIVATE_DIRS = [DATA_DIR, INBOX_DIR, LOG_DIR]
PRIVATE_FILES = [DATA_DIR / "secret_key", LOG_DIR / "dosereg.log"]
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    PRIVATE_FILES += [Path(DATABASES["default"]["NAME"] + suffix) for suffix in ("", "-wal", "-shm")]
for _p in PRIVATE_DIRS + PRIVATE_FILES:
    try:
        if _p.exists() and _p.stat().st_mode & 0o077:
            _p.chmod(0o700 if _p.is_dir() else 0o600)
    except OSError:
        pass  # not ours (a mounted volume owned by another user): the system check says so

# Access log without patient data (dosereg.web.middleware.AccessLogMiddleware replaces the web server's) and
# django.request's "Not Found: <path>" warnings with a patient ID in the path redacted (dosereg.web.privacy_log).
MIDDLEWARE.insert(0, "dosereg.web.middleware.AccessLogMiddleware")
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                  "dosereg.web.middleware.SecurityHeadersMiddleware")
LOGGING["filters"] = {"redact_paths": {"()": "dosereg.web.privacy_log.RedactRequestPaths"}}
for _handler in LOGGING["handlers"].values():
    _handler["filters"] = ["redact_paths"]
LOGGING["loggers"]["dosereg.access"] = {"level": env_str("DOSEREG_ACCESS_LOG_LEVEL", "INFO").upper()}

# Sign-in throttling (dosereg.web.signin): this many failed sign-ins for one user name from one address within
# LOGIN_LOCKOUT_MINUTES lock that pair for LOGIN_LOCKOUT_MINUTES; an administrator can unlock (admin, unlock_login).
LOGIN_FAILURE_LIMIT = env_int("DOSEREG_LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
LOGIN_LOCKOUT_MINUTES = env_int("DOSEREG_LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=7 * 24 * 60)
INSTALLED_APPS[INSTALLED_APPS.index("django.contrib.admin")] = "dosereg.web.admin_site.DoseRegAdminConfig"  # admin role
AUTHENTICATION_BACKENDS = [
    "dosereg.web.signin.LockoutBackend",  # first: refuses a locked user name/address before any password check
    "django.contrib.auth.backends.ModelBackend",
]

# API throttling per user (token or session) and per address for anonymous calls (DRF rate syntax: N/second,
# minute, hour or day).  A test run gets a high default so suites that page through many results are not throttled.
_TEST_RUN = "pytest" in sys.modules
API_THROTTLE_RATES = {
    "user": env_str("DOSEREG_API_RATE_USER", "100000/minute" if _TEST_RUN else "600/minute"),
    "anon": env_str("DOSEREG_API_RATE_ANON", "100000/minute" if _TEST_RUN else "60/minute"),
}
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["dosereg.web.throttles.UserThrottle", "dosereg.web.throttles.AnonThrottle"]

# Headers.  Scripts only from this origin, never inline (templates keep JavaScript in static/); inline style
# attributes stay allowed.  Every response but static files is "Cache-Control: no-store" (SecurityHeadersMiddleware).
CONTENT_SECURITY_POLICY = env_str("DOSEREG_CSP", "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
    "font-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'", "frame-ancestors 'none'",
]))
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
CSRF_COOKIE_HTTPONLY = True
# DOSEREG_HTTPS=1: DoseReg is reached over HTTPS only (directly or behind a TLS-terminating proxy that sets
# X-Forwarded-Proto and strips it from clients): HTTP is redirected, HSTS sent, cookies marked Secure.
HTTPS = env_bool("DOSEREG_HTTPS", False)
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env_int("DOSEREG_HSTS_SECONDS", 31536000, minimum=0, maximum=2 * 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DOSEREG_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("DOSEREG_HSTS_PRELOAD", False)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    if env_bool("DOSEREG_TRUST_X_FORWARDED_PROTO", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes and scrapers inside the cluster
    # An internal host name usually shares its domain with other hospital systems: includeSubDomains and preload
    # are the site's decision (the two env vars above), so their deploy-check warnings are not shown.
    SILENCED_SYSTEM_CHECKS = [c for c, on in (("security.W005", SECURE_HSTS_INCLUDE_SUBDOMAINS),
                                              ("security.W021", SECURE_HSTS_PRELOAD)) if not on]

# Directory sign-in (dosereg.web.directory), both optional; local accounts stay.  Roles: DOSEREG_LDAP_ROLE_<ROLE> /
# DOSEREG_OIDC_ROLE_<ROLE> = group DN / claim value(s), '|'-separated (e.g. DOSEREG_LDAP_ROLE_PHYSICIST=cn=...).
def _role_groups(prefix: str) -> dict[str, list[str]]:
    return {name[len(prefix):].lower(): [g.strip() for g in value.split("|") if g.strip()]
            for name, value in os.environ.items() if name.startswith(prefix) and value.strip()}


LDAP_ROLE_GROUPS = _role_groups("DOSEREG_LDAP_ROLE_")
OIDC_ROLE_GROUPS = _role_groups("DOSEREG_OIDC_ROLE_")
LDAP_URI = env_str("DOSEREG_LDAP_URI")  # ldap://dc1.hospital.example ldaps://...: on when set
if LDAP_URI:
    import ldap
    from django_auth_ldap.config import (
        ActiveDirectoryGroupType,
        GroupOfNamesType,
        LDAPSearch,
        NestedActiveDirectoryGroupType,
        PosixGroupType,
    )

    AUTH_LDAP_SERVER_URI = LDAP_URI
    AUTH_LDAP_START_TLS = env_bool("DOSEREG_LDAP_START_TLS", False)
    AUTH_LDAP_BIND_DN = env_str("DOSEREG_LDAP_BIND_DN")  # a service account that may search users and groups
    AUTH_LDAP_BIND_PASSWORD = env_str("DOSEREG_LDAP_BIND_PASSWORD")
    AUTH_LDAP_CONNECTION_OPTIONS = {ldap.OPT_REFERRALS: 0, ldap.OPT_NETWORK_TIMEOUT: 10}
    if env_str("DOSEREG_LDAP_USER_DN_TEMPLATE"):  # uid=%(user)s,ou=people,dc=hospital,dc=example: direct bind
        AUTH_LDAP_USER_DN_TEMPLATE = env_str("DOSEREG_LDAP_USER_DN_TEMPLATE")
    else:
        AUTH_LDAP_USER_SEARCH = LDAPSearch(env_str("DOSEREG_LDAP_USER_BASE"), ldap.SCOPE_SUBTREE,
                                           env_str("DOSEREG_LDAP_USER_FILTER", "(sAMAccountName=%(user)s)"))
    _group_types = {"groupofnames": GroupOfNamesType, "ad": ActiveDirectoryGroupType,
                    "nested-ad": NestedActiveDirectoryGroupType, "posix": PosixGroupType}
    _group_type = env_str("DOSEREG_LDAP_GROUP_TYPE", "nested-ad").lower()
    if _group_type not in _group_types:
        fail(f"DOSEREG_LDAP_GROUP_TYPE={_group_type!r} must be one of {', '.join(_group_types)}")
    AUTH_LDAP_GROUP_TYPE = _group_types[_group_type]()
    AUTH_LDAP_GROUP_SEARCH = LDAPSearch(env_str("DOSEREG_LDAP_GROUP_BASE"), ldap.SCOPE_SUBTREE, "(objectClass=*)")
    if env_str("DOSEREG_LDAP_REQUIRE_GROUP"):  # only members of this group may sign in at all
        AUTH_LDAP_REQUIRE_GROUP = env_str("DOSEREG_LDAP_REQUIRE_GROUP")
    AUTH_LDAP_USER_ATTR_MAP = {"first_name": "givenName", "last_name": "sn", "email": "mail"}
    AUTH_LDAP_ALWAYS_UPDATE_USER = True
    AUTH_LDAP_FIND_GROUP_PERMS = False  # permissions come from DoseReg's roles, given by the mapping
    AUTHENTICATION_BACKENDS.insert(1, "django_auth_ldap.backend.LDAPBackend")
OIDC_CLIENT_ID = env_str("DOSEREG_OIDC_CLIENT_ID")  # on when set, with the provider's endpoints below
OIDC_USERNAME_CLAIM = env_str("DOSEREG_OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_ROLES_CLAIM = env_str("DOSEREG_OIDC_ROLES_CLAIM", "groups")
if OIDC_CLIENT_ID:
    INSTALLED_APPS.append("mozilla_django_oidc")
    OIDC_RP_CLIENT_ID = OIDC_CLIENT_ID
    OIDC_RP_CLIENT_SECRET = env_str("DOSEREG_OIDC_CLIENT_SECRET")
    OIDC_RP_SIGN_ALGO = env_str("DOSEREG_OIDC_SIGN_ALGO", "RS256")
    OIDC_RP_SCOPES = env_str("DOSEREG_OIDC_SCOPES", "openid email profile")
    OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("DOSEREG_OIDC_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = env_str("DOSEREG_OIDC_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = env_str("DOSEREG_OIDC_USERINFO_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = env_str("DOSEREG_OIDC_JWKS_ENDPOINT")
    for _name in ("DOSEREG_OIDC_AUTHORIZATION_ENDPOINT", "DOSEREG_OIDC_TOKEN_ENDPOINT",
                  "DOSEREG_OIDC_USERINFO_ENDPOINT") + (("DOSEREG_OIDC_JWKS_ENDPOINT",) if OIDC_RP_SIGN_ALGO.startswith(
                      ("RS", "ES")) else ()):
        if not env_str(_name).startswith("https://") and not (DEBUG or _TEST_RUN):
            fail(f"{_name} must be an https:// URL of the OpenID provider")
    AUTHENTICATION_BACKENDS.insert(1, "dosereg.web.directory.OidcBackend")
