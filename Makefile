# Headwater — one target per job. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HEADWATER_CACHE ?= $(HOME)/.cache/headwater
export HEADWATER_CACHE
PYTEST_ARGS ?=

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_.-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test,bench]'
	touch $@

.PHONY: install
install: $(VENV)/.installed ## Create .venv and install headwater with test extras

.PHONY: lint
lint: install ## ruff check + format check
	$(VENV)/bin/ruff check operator tests bench
	$(VENV)/bin/ruff format --check operator tests bench

.PHONY: fmt
fmt: install ## Format the code
	$(VENV)/bin/ruff format operator tests bench
	$(VENV)/bin/ruff check --fix operator tests bench

.PHONY: typecheck
typecheck: install ## mypy --strict with the pydantic plugin
	$(VENV)/bin/mypy

.PHONY: crds
crds: install ## Regenerate crds/ from the API models
	$(VENV)/bin/headwater crds -o crds

.PHONY: binaries
binaries: ## Build/cache kube-apiserver, controller-manager, scheduler, kubectl, kwok, etcd
	hack/build-k8s.sh all

.PHONY: cluster
cluster: install binaries ## Start the local control plane (etcd, apiserver, kcm, scheduler, kwok)
	$(VENV)/bin/headwater dev up

.PHONY: cluster-down
cluster-down: install ## Stop the local control plane
	$(VENV)/bin/headwater dev down

.PHONY: services
services: ## Install and start the real data services (Postgres, MariaDB, Kafka, Connect, MinIO, Prometheus, Flink)
	hack/services.sh all install
	hack/services.sh all start

.PHONY: services-down
services-down: ## Stop the data services
	hack/services.sh all stop

.PHONY: test-unit
test-unit: install ## Unit tests (models, CRDs, render golden files, helpers)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

.PHONY: e2e
e2e: install binaries ## e2e suite against KUBECONFIG or the local control plane
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

.PHONY: dataplane
dataplane: install binaries ## Data-plane suite against real Postgres/MariaDB/Kafka/Connect/MinIO/Prometheus/Flink
	hack/services.sh all install
	$(PY) -m pytest tests/dataplane $(PYTEST_ARGS)

.PHONY: test
test: install binaries ## Everything: unit + e2e + data plane (what CI runs)
	hack/services.sh all install
	$(PY) -m pytest tests $(PYTEST_ARGS)

.PHONY: golden
golden: install ## Rewrite the render golden files after an intended change
	HEADWATER_UPDATE_GOLDEN=1 $(PY) -m pytest tests/unit/test_render_golden.py -q

.PHONY: demo
demo: install binaries ## Local cluster + data services + operator + example pipeline, then show status
	hack/demo.sh

.PHONY: demo-down
demo-down: install ## Stop everything the demo started
	hack/demo.sh down

.PHONY: e2e-kind
e2e-kind: install ## Same e2e suite on kind (needs Docker; not run on this machine)
	kind create cluster --name headwater --config kind-config.yaml
	KUBECONFIG=$$(mktemp) && kind get kubeconfig --name headwater > $$KUBECONFIG && \
	  KUBECONFIG=$$KUBECONFIG $(PY) -m pytest tests/e2e $(PYTEST_ARGS)

.PHONY: bench
bench: install binaries ## Scale benchmark (N = 100, 300, 1000 CRs); writes bench/results/
	$(PY) bench/run.py
