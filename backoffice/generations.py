"""Generation tokens in the shared cache: how per-process and per-session caches learn that
what they hold is stale.

A cache stores the token it was filled under; any process that changes the underlying rows
calls `bump(key)`, and every holder compares on its next read. When the cache (Redis) cannot be
reached, `read` answers None and callers read from the database instead.
"""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache

logger = logging.getLogger(__name__)


def read(key: str, *, what: str) -> str | None:
    """The current token under `key` (created on first use); None when the cache is down."""
    try:
        token = cache.get(key)
        if token is None:
            cache.add(key, uuid.uuid4().hex, timeout=None)
            token = cache.get(key)
        return token
    except Exception:  # noqa: BLE001 - no cache, no caching: read from the database
        logger.warning("%s unavailable; reading from the database", what)
        return None


def bump(key: str, *, what: str) -> None:
    """Make every holder of the token under `key` refill on its next read."""
    try:
        cache.set(key, uuid.uuid4().hex, timeout=None)
    except Exception:  # noqa: BLE001 - holders then fall back to their own expiry
        logger.exception("Could not invalidate the %s", what)
