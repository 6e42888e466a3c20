# Provisional: being replaced by the full Makefile (install/demo/test/lint/bench).
VENV := .venv
PY := $(VENV)/bin/python
test:
	$(PY) -m pytest
lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(PY) manage.py makemigrations --check --dry-run
