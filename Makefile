# gridassets: `make run` builds the demo warehouse, `make test` runs every test.
# Both create .venv and install the project first; they need only Python 3.11+ and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The project's Dagster instance (run history, schedules, sensors); its dagster.yaml is shipped.
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

# Window of `make run`: unset, the nine months up to yesterday (UTC), computed by the command so
# that it is the same on every machine; override with `make run START=2025-03-01 END=2025-05-31`.
START ?=
END ?=
# `make evaluate` keeps its own window (START/END override it): its reported figures are for these
# months, and the EIA-930 comparison needs days its data covers.
EVAL_START ?= 2024-10-01
EVAL_END ?= 2025-06-30
SCALE ?= demo
PYTEST_ARGS ?=
# Tests run on this many workers (pytest-xdist, a file at a time in the order conftest.py sorts
# them: xdist would otherwise start the files with the most tests first); 0: in one process.
PYTEST_WORKERS ?= 2

# pip's output (a warning per package from this machine's pip configuration, setuptools' banner)
# goes to $(INSTALL_LOG), shown only when an install fails: `make run` prints only the project's.
INSTALL_LOG = $(VENV)/install.log
logged = $(1) >>$(INSTALL_LOG) 2>&1 || { echo "install failed: $(1); the end of $(INSTALL_LOG):" >&2; \
	tail -n 60 $(INSTALL_LOG) >&2; exit 1; }

.PHONY: help install install-test run test dev bench evaluate evaluate-large clean \
	scaleout-demo scaleout-up scaleout-down bench-scaleout

help:
	@echo "make run       build the demo warehouse (the nine months up to yesterday, UTC; START=, END=)"
	@echo "               and print yesterday's prioritized circuits"
	@echo "make test      run the whole test suite"
	@echo "make dev       Dagster UI + daemon on http://127.0.0.1:3000 (sensors and schedules on)"
	@echo "make evaluate  model quality on held-out time, and load forecasts on EIA-930 vs the operator"
	@echo "make evaluate-large  the same on 200 circuits over a year (over an hour on 2 cores)"
	@echo "make bench     speed and memory of one daily partition (SCALE=demo|utility|large)"
	@echo "make scaleout-demo  a 10-day backfill on PostgreSQL, Redis and 3 Celery workers, with a"
	@echo "                    storm alert during it, checked against the embedded build"
	@echo "make scaleout-up    keep such a cluster running (UI on :3000); make scaleout-down stops it"
	@echo "make bench-scaleout a 30-day backfill in one process against 1, 2 and 3 workers"
	@echo "make clean     remove the generated warehouse, outputs and Dagster run history"

$(BIN)/python:
	@mkdir -p $(VENV) && : > $(INSTALL_LOG)
	@$(call logged,$(PYTHON) -m venv $(VENV))
	@$(call logged,$(BIN)/python -m pip install --quiet --upgrade pip)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing gridassets into $(VENV) (a few minutes the first time; log: $(INSTALL_LOG))" && : > $(INSTALL_LOG)
	@$(call logged,$(BIN)/python -m pip install --quiet -e .)
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@echo "installing gridassets and its test tools into $(VENV) (log: $(INSTALL_LOG))" && : > $(INSTALL_LOG)
	@$(call logged,$(BIN)/python -m pip install --quiet -e '.[test]')
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: $(VENV)/.installed
	@$(BIN)/python -m gridassets run $(if $(START),--start $(START)) $(if $(END),--end $(END))

test: $(VENV)/.installed-test
	@$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

dev: $(VENV)/.installed
	$(BIN)/dagster dev -m gridassets.definitions --host 127.0.0.1 --port 3000

evaluate: $(VENV)/.installed-test
	$(BIN)/python -m gridassets evaluate --start $(or $(START),$(EVAL_START)) --end $(or $(END),$(EVAL_END)) --docs docs/results.md

# The same figures on a bigger fleet and a longer window (over an hour on 2 cores): 200
# circuits make the share captured by the top 10 % far less noisy than the demo's 40.
evaluate-large: $(VENV)/.installed-test
	GRIDASSETS_DATA_DIR=data/evaluation GRIDASSETS_CIRCUITS=200 GRIDASSETS_TRANSFORMERS=4000 \
	$(BIN)/python -m gridassets evaluate --start 2024-07-01 --end 2025-06-30 \
		--docs docs/results.md --docs-section large

bench: $(VENV)/.installed
	$(BIN)/python -m gridassets bench --scale $(SCALE) --docs docs/results.md

# Scale-out mode on one machine (PostgreSQL, Redis and Celery workers as local processes; needs
# Debian's postgresql and redis-server). See docs/scaleout.md.
scaleout-demo: $(VENV)/.installed
	deploy/scaleout/install-services.sh
	$(BIN)/python -m gridassets scaleout demo

scaleout-up: $(VENV)/.installed
	deploy/scaleout/install-services.sh
	$(BIN)/python -m gridassets scaleout up

scaleout-down: $(VENV)/.installed
	$(BIN)/python -m gridassets scaleout down

bench-scaleout: $(VENV)/.installed
	deploy/scaleout/install-services.sh
	$(BIN)/python -m gridassets scaleout bench --scale $(SCALE) --write-docs

clean:
	rm -rf data/warehouse.duckdb data/warehouse.duckdb.wal data/models data/outputs data/alerts
	find .dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
