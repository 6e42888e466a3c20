"""Benchmarks: production-like (DEBUG off), on a database of its own, with the Django admin
mounted so list pages can be compared with its changelist."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
ENVIRONMENT_NAME = "bench"
DATABASES = {
    "default": env.db(
        "BENCH_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/backoffice_bench"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = 60
ENABLE_DJANGO_ADMIN = True
OTP_REQUIRED = True
AXES_ENABLED = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
