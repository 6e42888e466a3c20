# Included by the Makefile. The dataset lives in its own database (BENCH_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/backoffice_bench) and is reused until another SCALE is asked.
SCALE ?= S
BENCH_ARGS ?=
.PHONY: bench bench-data

bench-data: install
	$(PY) -m benchmarks.dataset --scale $(SCALE) $(BENCH_DATA_ARGS)

bench: install
	$(PY) -m benchmarks.run --scale $(SCALE) $(BENCH_ARGS)
