# The two commands a new user needs: `make demo` and `make test`.
# Each creates .venv and installs everything it needs (scripts/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -n auto

.PHONY: bootstrap demo test lint format crds bench

bootstrap:
	VENV=$(VENV) ./scripts/bootstrap.sh

demo: bootstrap
	$(VENV)/bin/milkyway demo

test: bootstrap
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest $(PYTEST_ARGS)

lint: bootstrap
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

crds: bootstrap
	$(PY) -m milkyway.model.crds --write deploy/crds

format: bootstrap
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench
