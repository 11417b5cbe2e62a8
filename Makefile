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
e2e: install binaries helm ## e2e suite against KUBECONFIG or the local control plane
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
e2e-kind: install helm ## Same e2e suite on a kind cluster it creates and deletes (needs Docker; not run on this machine)
	kind create cluster --name headwater --config kind-config.yaml
	kubeconfig=$$(mktemp); \
	  trap '[[ -n "$$HEADWATER_KEEP_CLUSTER" ]] || kind delete cluster --name headwater; rm -f "$$kubeconfig"' EXIT; \
	  kind get kubeconfig --name headwater > "$$kubeconfig" && \
	  KUBECONFIG="$$kubeconfig" $(PY) -m pytest tests/e2e $(PYTEST_ARGS)

.PHONY: bench
bench: install binaries ## Scale benchmark (N = 100, 300, 1000 CRs); writes bench/results/
	$(PY) bench/run.py

# --- packaging (charts/headwater, manifests/install, Dockerfile) -----------------------------
HELM ?= $(shell hack/services.sh helm env 2>/dev/null | sed -n 's/^HELM=//p')

.PHONY: helm
helm: ## Build Helm v3 into the cache (hack/services.sh helm install)
	hack/services.sh helm install

.PHONY: chart
chart: install crds helm ## Regenerate the chart's CRDs and RBAC rules, then manifests/install/
	rm -f charts/headwater/crds/headwater.dev_*.yaml
	cp crds/*.yaml charts/headwater/crds/
	$(VENV)/bin/headwater rbac -o charts/headwater/files/rbac.yaml
	$(MAKE) install-manifests

.PHONY: install-manifests
install-manifests: helm ## Render manifests/install/ (plain YAML + kustomization) from the chart
	HELM=$(HELM) hack/render-install.sh

.PHONY: helm-lint
helm-lint: helm ## helm lint --strict, plus the chart unit tests
	$(HELM) lint --strict charts/headwater
	$(PY) -m pytest tests/unit/test_chart.py tests/unit/test_rbac.py -q

.PHONY: helm-e2e
helm-e2e: install binaries helm ## Install/upgrade/uninstall the chart and run the operator as its ServiceAccount
	$(PY) -m pytest tests/e2e/test_helm_e2e.py tests/e2e/test_rbac_e2e.py $(PYTEST_ARGS)

.PHONY: e2e-as-serviceaccount
e2e-as-serviceaccount: install binaries helm ## The e2e suite, operators authenticated as the chart's ServiceAccount (the default; this builds helm first)
	HEADWATER_E2E_AS_SERVICEACCOUNT=1 $(PY) -m pytest tests/e2e $(PYTEST_ARGS)

.PHONY: image
image: ## Build the operator image (needs Docker or Podman: DOCKER=podman)
	$(or $(DOCKER),docker) build -t headwater/operator:$$($(PY) -c 'import headwater; print(headwater.__version__)') .
