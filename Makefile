# The two commands a newcomer needs: `make demo` and `make test`. `make help` lists the rest.
#
# Every target that runs Python first runs `install`, which is quick when nothing changed.

VENV := .venv
PY := $(VENV)/bin/python
RUFF := $(VENV)/bin/ruff

# Extra arguments: `make demo DEMO_ARGS="--players 20000 --port 8001"`,
# `make test PYTEST_ARGS="tests/test_smoke.py -x"`, `make test PYTEST_WORKERS=0`.
DEMO_ARGS ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install demo demo-reset test lint format clean

help:
	@echo "make demo        install, then run the demo casino on http://127.0.0.1:8000/ (Ctrl-C stops it)"
	@echo "make test        the test suite against DATABASE_URL and REDIS_URL (see README)"
	@echo "make install     create .venv with Python >= 3.12 and install the project (idempotent)"
	@echo "make lint        ruff check, ruff format --check, makemigrations --check"
	@echo "make format      ruff format and ruff check --fix"
	@echo "make demo-reset  forget the demo's embedded database (.demo/) so the next demo starts afresh"
	@echo "make bench       benchmarks;  make bench-data SCALE=...  their data"
	@echo "make clean       remove .venv and caches"

install:
	@scripts/install.sh

demo: install
	$(PY) manage.py demo $(DEMO_ARGS)

demo-reset:
	@if [ -f .demo/pgdata/postmaster.pid ] && kill -0 "$$(head -1 .demo/pgdata/postmaster.pid)" 2>/dev/null; then \
		echo "The demo's PostgreSQL is still running: stop the demo (Ctrl-C) first."; exit 1; fi
	rm -rf .demo

test: install
	@scripts/test.sh $(PYTEST_ARGS)

lint: install
	$(RUFF) check .
	$(RUFF) format --check .
	$(PY) manage.py makemigrations --check --dry-run

format: install
	$(RUFF) format .
	$(RUFF) check --fix .

clean:
	rm -rf $(VENV) .ruff_cache .pytest_cache .hypothesis staticfiles
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Benchmarks: `make bench` and `make bench-data SCALE=...` are defined in benchmarks/bench.mk,
# which the benchmarks bring with them; it may use $(PY) and depend on `install`.
ifneq ($(wildcard benchmarks/bench.mk),)
include benchmarks/bench.mk
else
.PHONY: bench bench-data
bench bench-data:
	@echo "No benchmarks in this checkout yet: they arrive with benchmarks/bench.mk."; exit 1
endif
