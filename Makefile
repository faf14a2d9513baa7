# WeaverGen Regeneration Operator. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON := $(VENV)/bin/python
BIN := $(VENV)/bin
CRD_DIRS := crds charts/weavergen-operator/crds
PYTEST_ARGS ?=
# pytest-xdist workers. The integration tests mostly wait on the control plane (user+sys is a
# third of the wall time), so 4 workers on 2 cores finish in 9 minutes where 2 take 14.
TEST_WORKERS ?= 4

.PHONY: help venv test test-unit test-integration lint format crds verify-crds \
	cluster-build collector-build rollouts-build cluster-up cluster-down cluster-status demo chart images image kind-up kind-load deploy \
	e2e-kind kind-down clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed ## create .venv with the project and its dev tools

test: $(VENV)/.installed cluster-build rollouts-build images ## run every test: unit, and integration on local control planes
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --durations=15 $(PYTEST_ARGS)

test-unit: $(VENV)/.installed ## run the unit tests only (no control plane)
	$(BIN)/pytest -n auto tests/unit $(PYTEST_ARGS)

test-integration: $(VENV)/.installed cluster-build rollouts-build images ## run the integration tests only
	$(BIN)/pytest -n $(TEST_WORKERS) tests/integration $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff, mypy and the import-layer contracts
	$(BIN)/ruff check operator tests hack benchmarks
	$(BIN)/ruff format --check operator tests hack benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(VENV)/.installed ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix operator tests hack benchmarks
	$(BIN)/ruff format operator tests hack benchmarks

crds: $(VENV)/.installed ## regenerate crds/ and the chart's copy from the pydantic models
	$(BIN)/weavergen crds generate $(addprefix --out ,$(CRD_DIRS))

verify-crds: $(VENV)/.installed ## fail when crds/ or the chart's copy is stale
	$(BIN)/weavergen crds generate --check $(addprefix --out ,$(CRD_DIRS))

cluster-build: ## build (or reuse) etcd, the Kubernetes components, CoreDNS, kubectl, helm
	@bash hack/build-control-plane.sh

collector-build: ## build (or reuse) the OpenTelemetry Collector distribution the tests and chart run
	@bash hack/build-collector.sh

rollouts-build: ## build (or reuse) the Argo Rollouts controller and its CRD the Rollout tests run
	@bash hack/build-argo-rollouts.sh

cluster-up: $(VENV)/.installed cluster-build images ## start the local plane and its real node; prints export KUBECONFIG=...
	@$(PYTHON) -m hack.localplane up

cluster-down: $(VENV)/.installed ## stop the local control plane started by cluster-up
	@$(PYTHON) -m hack.localplane down

cluster-status: $(VENV)/.installed ## show which control-plane processes run
	@$(PYTHON) -m hack.localplane status

SCENARIO ?= config-corruption

demo: $(VENV)/.installed cluster-build images ## the self-healing demo on a local control plane (SCENARIO=bad-deploy too)
	$(PYTHON) -m hack.demo --scenario $(SCENARIO)

# -- delivery: the chart here; the image and kind need Docker and kind (not on CI machines) ----

VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= weavergen-operator:$(VERSION)
KIND_CLUSTER ?= weavergen
RELEASE_NAMESPACE ?= weavergen-system
CHARTER_NAMESPACE ?= shop
HELM_BIN = $(shell $(PYTHON) -c 'from hack.localplane.plane import Binaries; print(Binaries.from_cache().helm)' 2>/dev/null)
HELM ?= $(if $(wildcard $(HELM_BIN)),$(HELM_BIN),helm)

chart: $(VENV)/.installed cluster-build ## lint the Helm chart and package it into dist/
	$(HELM) lint --strict charts/weavergen-operator
	$(HELM) package charts/weavergen-operator --destination dist

images: collector-build ## build the pause, base and operator images locally with buildah, cached by content
	@bash hack/build-images.sh

image: ## build the operator image (Docker): one image for the operator and its phase Jobs
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

kind-up: ## create the kind cluster of kind-config.yaml (Docker and kind needed)
	kind get clusters | grep -qx $(KIND_CLUSTER) || kind create cluster --config kind-config.yaml --name $(KIND_CLUSTER)

kind-load: ## load the image into the kind cluster's nodes
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)

deploy: ## helm upgrade --install the operator (CRDs applied first: Helm never upgrades them)
	kubectl apply --server-side -f charts/weavergen-operator/crds/
	kubectl create namespace $(CHARTER_NAMESPACE) --dry-run=client -o yaml | kubectl apply -f -
	$(HELM) upgrade --install weavergen-operator charts/weavergen-operator \
		--namespace $(RELEASE_NAMESPACE) --create-namespace \
		--set image.repository=$(firstword $(subst :, ,$(IMAGE))) --set image.tag=$(VERSION) \
		--set image.pullPolicy=IfNotPresent --set service.type=NodePort --set service.nodePort=30418 \
		--set "phase.namespaces={$(CHARTER_NAMESPACE)}" --wait --timeout 180s

e2e-kind: kind-up image kind-load deploy ## on kind: install, then check the operator answers through the NodePort
	kubectl -n $(RELEASE_NAMESPACE) rollout status deploy/weavergen-operator --timeout=120s
	kubectl apply -f config/samples/web-service_checkout.yaml
	curl -fsS http://127.0.0.1:4318/metrics | grep -q '^weavergen_gate_decisions_total'
	.venv/bin/weavergen gate --charter shop/checkout --url http://127.0.0.1:4318 --output json

kind-down: ## delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

clean: ## remove caches and build output (not the control-plane cache)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache operator/*.egg-info
