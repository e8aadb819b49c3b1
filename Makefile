# Keygate: `make run` serves on 127.0.0.1:8080 (SQLite) wired to the provider sandboxes;
# `make serve` serves against the real providers; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install run serve test check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

run: install
	$(BIN)/keygate init
	$(BIN)/keygate serve --sandbox

serve: install
	$(BIN)/keygate init
	$(BIN)/keygate serve

test: install
	scripts/system-deps.sh test
	scripts/test.sh

check: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Benchmark harness (issue 4): nginx, bare, Keygate; table and targets in the output,
# JSON in bench/results/. Installs nginx, wrk and h2load if missing; about 4 minutes on 2 cores.
bench: install
	scripts/system-deps.sh bench
	$(BIN)/python -m bench.run
