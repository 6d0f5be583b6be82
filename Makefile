# The two commands that matter: `make run` (serve the default local fleet) and
# `make test` (set up and run the whole suite; .ci/run calls it).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLEET ?= deploy/fleet.local.yaml
INSTALLED := $(VENV)/.petit-installed
PYTEST_ARGS ?=

.PHONY: setup lock run models test test-unit test-stack tools lint lint-imports bench clean

setup: $(INSTALLED)

# Re-runs only when pyproject.toml or requirements.lock changes; a second `make run` skips it.
# Installs exactly requirements.lock (hashes checked, nothing resolved; `deploy/lock.sh` writes
# it), then Petit itself without dependencies. torch's CPU build is not on PyPI: where pip does
# not find it, `PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make setup`.
$(INSTALLED): pyproject.toml requirements.lock
	@echo "==> [setup] creating $(VENV) and installing Petit with vLLM's CPU build from requirements.lock (first time: ~3 minutes, ~4 GB)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --upgrade --progress-bar on 'pip>=24' >/dev/null
	$(PY) -m pip install --progress-bar on --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install --progress-bar on --no-deps --no-build-isolation -e .
	@touch $@
	@echo "==> [setup] done"

# Re-resolve requirements.lock after editing pyproject.toml (keeps existing pins; see deploy/lock.sh).
lock:
	@bash deploy/lock.sh

tools: setup
	@bash deploy/get_helm.sh
	@bash deploy/get_chromium.sh
	@bash deploy/get_redis.sh

models: setup
	$(VENV)/bin/petit models prepare --fleet $(FLEET)

run: setup
	$(VENV)/bin/petit run --fleet $(FLEET)

test: setup tools
	@bash tests/run_all.sh $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

lint-imports: setup
	$(VENV)/bin/lint-imports

# ruff lint + format check on the whole tree, mypy strict on the pure packages ([tool.mypy] files).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Petit against bare vLLM on the real CPU engine with vLLM's own benchmark client: 3 interleaved
# pairs at concurrency 1, 8, 32 (~15 min on 2 cores; writes benchmarks/results/real_engine.json).
# Options through BENCH_ARGS, e.g. `make bench BENCH_ARGS='--pairs 5'`.
bench: setup
	$(PY) benchmarks/real_engine.py $(BENCH_ARGS)

# The gateway's capacity and cost on a FAKE engine at GPU-like speed (deploy/fleet.fast.yaml):
# bare fake server vs Petit (and LiteLLM / vllm-router when `.[bench]` is installed).
.PHONY: bench-gateway
bench-gateway: setup
	$(PY) benchmarks/gateway.py

clean:
	rm -rf $(VENV) .tools .pytest_cache
