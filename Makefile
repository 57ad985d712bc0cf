# segmint: `make help` lists the targets. Only python3.11 and make are needed; uv is
# bootstrapped into .tools/ from PyPI when it is not on the PATH.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
# Some shells set this; without cached bytecode every process recompiles airflow, GX, scipy
# and matplotlib (seconds per stage).
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
STAMP := $(VENV)/.segmint-installed
RUN := $(VENV)/bin

# Demo data for `make run`: about 1M events; 90 days so the propensity models have two
# labelled 30-day windows (train, holdout) after enough history.
DEMO_CUSTOMERS ?= 20000
DEMO_DAYS ?= 90
DEMO_END ?= 2026-06-30
DEMO_DIR := data/demo
# Absolute paths: Airflow workers and the scheduler do not run in this folder.
export SEGMINT_LANDING ?= $(CURDIR)/$(DEMO_DIR)/landing
export SEGMINT_WAREHOUSE ?= $(CURDIR)/warehouse/segmint.duckdb
export SEGMINT_OUTPUT ?= $(CURDIR)/output
export SEGMINT_AUDIENCES ?= $(CURDIR)/audiences
# Those of the four the caller did not set (the demo's): `make airflow` and `make backfill`
# let a settings file's own paths win over them (segmint.airflow_env, demo_paths_yield).
export SEGMINT_DEMO_DEFAULTS := $(strip $(foreach key,LANDING WAREHOUSE OUTPUT AUDIENCES,\
	$(if $(filter file,$(origin SEGMINT_$(key))),SEGMINT_$(key))))
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
SCALE ?=
PARTS ?=

.PHONY: help install run test lint format bench backfill airflow clean

help: ## List the targets, one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

install: $(STAMP) ## Create .venv and install the locked dependencies (no-op when up to date)

# Written beside its place and moved there when complete: a generation cut short (Ctrl-C)
# leaves no half landing zone, which the generator would refuse to write into next time.
# The stamp holds the generator's arguments: other DEMO_* values generate the data again,
# but not into a demo warehouse that holds nights of the old data (they would mix).
DEMO_SPEC := --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) --end-date $(DEMO_END)
ifneq ($(shell cat $(DEMO_DIR)/.generated 2>/dev/null),$(DEMO_SPEC))
.PHONY: $(DEMO_DIR)/.generated
endif
$(DEMO_DIR)/.generated: | $(STAMP)
	@if [ -e $(DEMO_DIR)/.generated ] && [ -e "$$SEGMINT_WAREHOUSE" ]; then \
		echo "make run: the demo data was generated with '$$(cat $(DEMO_DIR)/.generated)'," \
			"not '$(DEMO_SPEC)', and the warehouse $$SEGMINT_WAREHOUSE holds nights of it." \
			"Run 'make clean' first (it removes the demo data, warehouse, outputs and Airflow" \
			"state), then make run with the new values." >&2; \
		exit 2; \
	fi
	rm -rf $(DEMO_DIR).partial
	$(RUN)/segmint generate --landing $(DEMO_DIR).partial/landing $(DEMO_SPEC)
	rm -rf $(DEMO_DIR) && mv $(DEMO_DIR).partial $(DEMO_DIR)
	@echo "demo data moved into place (the lines above name $(DEMO_DIR).partial):" \
		"landing zone $(DEMO_DIR)/landing, ground truth $(DEMO_DIR)/ground_truth"
	@echo '$(DEMO_SPEC)' > $@

run: install $(DEMO_DIR)/.generated ## Generate demo data and run the whole nightly pipeline through Airflow
	$(RUN)/python -m segmint.demo --as-of $(DEMO_END)

test: install ## Run every test (unit, dbt, GX, Airflow end-to-end)
	$(RUN)/pytest

lint: install ## ruff on Python, sqlfluff on the dbt models
	$(RUN)/ruff check .
	$(RUN)/ruff format --check .
	cd dbt_project && ../$(RUN)/sqlfluff lint models macros tests

format: install ## Apply ruff and sqlfluff formatting
	$(RUN)/ruff check --fix .
	$(RUN)/ruff format .
	cd dbt_project && ../$(RUN)/sqlfluff fix models macros tests

bench: install ## Benchmarks: whole night by stage, Airflow overhead, micro-benchmarks (SCALE=1M,10M|50M PARTS=ladder,airflow,micro)
	$(RUN)/python bench/run.py $(if $(SCALE),--scale $(SCALE)) $(if $(PARTS),--parts $(PARTS))

backfill: install ## Backfill the nights FROM..TO (YYYY-MM-DD) through the scheduler of `make airflow` (REPROCESS=failed|completed: also nights that already ran)
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=2026-06-01 TO=2026-06-30 [REPROCESS=failed|completed]"; exit 2; }
	$(RUN)/python -m segmint.airflow_env backfill $(FROM) $(TO) --reprocess $(or $(REPROCESS),none)

airflow: install ## Start the Airflow UI (airflow standalone) on localhost:8080 with the DAG
	$(RUN)/python -m segmint.airflow_env standalone

clean: ## Remove generated data, warehouse, outputs and Airflow state (keeps .venv)
	rm -rf data warehouse output .airflow dbt_project/target dbt_project/logs \
		dbt_project/dbt_packages .pytest_cache bench/data
