"""Settings of the gunicorn that `bench_webhooks` starts: the bench settings (DEBUG off, the
product's middleware), the throwaway database named by BENCH_DATABASE_URL, deliveries signed up
front accepted for an hour, and, with BENCH_ROOT_URLCONF=benchmarks.bare_urls, the bare insert
view that is the ceiling. Never used outside the benchmark."""

import os

from backoffice.settings.bench import *  # noqa: F403

ROOT_URLCONF = os.environ.get("BENCH_ROOT_URLCONF", "backoffice.urls")
PAYMENTS_WEBHOOK_TOLERANCE_SECONDS = 3600
