# The two commands a newcomer needs: `make run` and `make test`. Both create the venv if missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test e2e lint unit bench reliability lock clean k8s-binaries generate test-packages

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# pip 23 backtracks for minutes over boto3 + moto + kopf: upgrade first, install pinned.
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[service,local,operator]' \
		--group test --group lint --group bench
	touch $(STAMP)

## Run the service on an embedded S3 + DynamoDB (moto server on 127.0.0.1), port 8080.
run: $(STAMP)
	$(BIN)/tempaudio-service

## Lint, type-check and run every test (the real control plane is built once, then cached).
test: $(STAMP) lint k8s-binaries test-packages
	$(BIN)/pytest

## The real-node tier (root, about 1 GB of RAM): a single-node cluster on this machine, the
## image built from the Dockerfile, the chart installed, tests/cluster, then a full teardown.
e2e: $(STAMP) k8s-binaries
	bash scripts/e2e.sh

## Chromium, chromium-driver and Prometheus from Debian (the console and alert tests' clients).
test-packages:
	bash scripts/test-packages.sh

## etcd, kube-apiserver, kube-controller-manager and helm from Go modules (~20 min the first time).
k8s-binaries:
	bash scripts/k8s-binaries.sh

## Write every generated file: the copies of the policy schema (both CRDs, the chart's values
## schema) and the reference pages (docs/reference/: the policy and lexicon fields from
## api/tempaudio_api/*.yaml, the configuration from the settings table; the chart README's
## values table from values.yaml). `make lint` (and so CI) fails when one is stale.
generate: $(STAMP)
	$(BIN)/python -m tempaudio_api.generate
	$(BIN)/python -m tempaudio_api.chart_docs
	$(BIN)/python -m tempaudio_service.core.reference

lint: $(STAMP)
	$(BIN)/python -m tempaudio_api.generate --check
	$(BIN)/python -m tempaudio_api.chart_docs --check
	$(BIN)/python -m tempaudio_service.core.reference --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

## Fast feedback: the pure unit tests only.
unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

## Benchmarks (BENCHMARKS.md + bench/synthesis.png) and reliability runs (RELIABILITY.md).
bench: $(STAMP) k8s-binaries
	$(BIN)/python -m bench.synthesis
	$(BIN)/python -m bench.cleanup
	$(BIN)/python -m bench.operator
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.memory --only frontier
	$(BIN)/python -m bench.policies
	$(BIN)/python -m bench.formats
	$(BIN)/python -m bench.streaming
	$(BIN)/python -m bench.capacity
	$(BIN)/python -m bench.auth
	$(BIN)/python -m bench.connections
	$(BIN)/python -m bench.shared_state
	$(BIN)/python -m bench.storage_capacity
	$(BIN)/python -m bench.stalls
	$(BIN)/python -m bench.graph_rewrites

reliability: $(STAMP)
	$(BIN)/python -m bench.reliability

## Re-pin every dependency after changing pyproject.toml.
lock:
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet --upgrade pip
	$(VENV)-lock/bin/python -m pip install --quiet -e '.[service,local,operator]' \
		--group test --group lint --group bench
	$(VENV)-lock/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
	rm -rf $(VENV)-lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
