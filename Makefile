# WeaverGen Regeneration Operator. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON := $(VENV)/bin/python
BIN := $(VENV)/bin
CRD_DIRS := crds charts/weavergen-operator/crds
PYTEST_ARGS ?=

.PHONY: help venv test test-unit test-integration lint format crds verify-crds \
	cluster-build cluster-up cluster-down cluster-status clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed ## create .venv with the project and its dev tools

test: $(VENV)/.installed cluster-build ## run every test: unit, and integration on a local control plane
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

test-unit: $(VENV)/.installed ## run the unit tests only (no control plane)
	$(BIN)/pytest -n auto tests/unit $(PYTEST_ARGS)

test-integration: $(VENV)/.installed cluster-build ## run the integration tests only
	$(BIN)/pytest -n auto tests/integration $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff, mypy and the import-layer contracts
	$(BIN)/ruff check operator tests hack
	$(BIN)/ruff format --check operator tests hack
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(VENV)/.installed ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix operator tests hack
	$(BIN)/ruff format operator tests hack

crds: $(VENV)/.installed ## regenerate crds/ and the chart's copy from the pydantic models
	$(BIN)/weavergen crds generate $(addprefix --out ,$(CRD_DIRS))

verify-crds: $(VENV)/.installed ## fail when crds/ or the chart's copy is stale
	$(BIN)/weavergen crds generate --check $(addprefix --out ,$(CRD_DIRS))

cluster-build: ## build (or reuse) etcd, kube-apiserver, controller-manager, kubectl, helm
	@bash hack/build-control-plane.sh

cluster-up: $(VENV)/.installed cluster-build ## start the local control plane; prints export KUBECONFIG=...
	@$(PYTHON) -m hack.localplane up

cluster-down: $(VENV)/.installed ## stop the local control plane started by cluster-up
	@$(PYTHON) -m hack.localplane down

cluster-status: $(VENV)/.installed ## show which control-plane processes run
	@$(PYTHON) -m hack.localplane status

clean: ## remove caches and build output (not the control-plane cache)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache operator/*.egg-info
