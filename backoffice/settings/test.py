"""The test suite: real PostgreSQL and Redis, fast password hashing."""

import os

from .base import *  # noqa: F403
from .base import env

DEBUG = False
ENVIRONMENT_NAME = "test"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
OTP_REQUIRED = True
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("REDIS_URL", default="redis://127.0.0.1:6379/0"),
        # One prefix per pytest-xdist worker: the workers share one Redis, and a role change in
        # one worker's test must not invalidate the permission cache of the other's.
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="bo-test")
        + os.environ.get("PYTEST_XDIST_WORKER", ""),
    }
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CELERY_TASK_ALWAYS_EAGER = False
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
