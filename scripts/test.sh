#!/bin/sh
# Run the test suite against a real PostgreSQL and Redis (what `make test` and CI call).
#
#   DATABASE_URL   default postgres://postgres@127.0.0.1:5432/backoffice (tests use test_<name>)
#   REDIS_URL      default redis://127.0.0.1:6379/0
#   PYTEST_WORKERS pytest-xdist processes, default 2; 0 runs in this process
#
# Extra arguments go to pytest: `scripts/test.sh tests/test_smoke.py -k health`.
set -u
cd "$(dirname "$0")/.."

: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/backoffice}"
: "${REDIS_URL:=redis://127.0.0.1:6379/0}"
export DATABASE_URL REDIS_URL
# pyproject.toml names the test settings; an exported DJANGO_SETTINGS_MODULE would win over it.
unset DJANGO_SETTINGS_MODULE

PY=.venv/bin/python

# Say plainly what is missing, rather than let every test fail on a connection error.
if ! "$PY" - <<'PY'
import os, sys
import environ, psycopg, redis

db = environ.Env.db_url_config(os.environ["DATABASE_URL"])
params = {"dbname": "postgres", "user": db["USER"] or None, "password": db["PASSWORD"] or None,
          "host": db["HOST"] or db.get("OPTIONS", {}).get("host"), "port": db["PORT"] or None,
          "connect_timeout": 3}
try:
    psycopg.connect(**{k: v for k, v in params.items() if v is not None}).close()
except psycopg.Error as exc:
    sys.exit(f"make test needs PostgreSQL at DATABASE_URL={os.environ['DATABASE_URL']}: {exc}")
try:
    redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=3).ping()
except redis.RedisError as exc:
    sys.exit(f"make test needs Redis at REDIS_URL={os.environ['REDIS_URL']}: {exc}")
PY
then
    echo "Start them (or point DATABASE_URL / REDIS_URL elsewhere) and run make test again." >&2
    exit 2
fi

workers=${PYTEST_WORKERS:-2}
if [ "$workers" = 0 ]; then
    "$PY" -m pytest "$@"
else
    "$PY" -m pytest -n "$workers" "$@"
fi
status=$?

if [ "$status" -eq 5 ]; then
    cat <<'MSG'

######################################################################
#  pytest collected NO TESTS (exit code 5).                          #
#  Counted as a pass so an empty selection does not break the build, #
#  but nothing was tested: check the paths and -k/-m you gave.       #
######################################################################
MSG
    exit 0
fi
exit "$status"
