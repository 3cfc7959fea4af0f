# The two commands a new user needs: `make demo` and `make test`.
# Each creates .venv and installs everything it needs (scripts/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
# One worker per test file: scenarios of a file that share a module-scoped world (the
# console's) run in one process, in order. (pytest-xdist's loadgroup does not group under
# pytest 9: it renames node ids in a way pytest 9 ignores.)
PYTEST_ARGS ?= -n auto --dist loadfile

.PHONY: bootstrap demo test test-fast lint format crds bench

bootstrap:
	VENV=$(VENV) ./scripts/bootstrap.sh

demo: bootstrap
	$(VENV)/bin/milkyway demo

test: bootstrap
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

# The fast group: everything but the tests marked slow (whole-system and long-outage runs).
test-fast: bootstrap
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# mypy checks what pyproject.toml's [tool.mypy] names (model/, flows/, operator/planner/
# strictly).
lint: bootstrap
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

# Every benchmark prints its figures; none asserts a speed.
BENCHMARKS := agent agent_paths render sim_apiserver sim_builtin_checks sim_controllers \
	sim_patching sim_validation sim_write_path sim_pod_proxy sim_processes hostile_input notify \
	approval_policies server_api console flows_engine operator_latency operator_peer_kopf \
	operator_rolling operator_shards operator_fleet operator_steady install

bench: bootstrap
	set -e; for name in $(BENCHMARKS); do echo "== bench/$$name.py"; $(PY) bench/$$name.py; done

crds: bootstrap
	$(PY) -m milkyway.model.crds --write deploy/crds

format: bootstrap
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench
