# Keygate: `make run` serves on 127.0.0.1:8080 (SQLite) wired to the provider sandboxes on :9010
# and :9011; `make serve` serves against the real providers; `make test` runs the whole suite.
# `make run PORT=18020 SANDBOX_PORT=19010` moves the ports (the sandboxes use SANDBOX_PORT and +1).
PYTHON ?= python3
PORT ?= $(or $(KEYGATE_PORT),8080)
SANDBOX_PORT ?= 9010
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install run serve test check bench bench-startup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# KEYGATE_PORT, not --port: the public URL, and a `keygate call` given the same variable, follow it.
run: install
	$(BIN)/keygate init
	KEYGATE_PORT=$(PORT) $(BIN)/keygate serve --sandbox --sandbox-port $(SANDBOX_PORT)

serve: install
	$(BIN)/keygate init
	KEYGATE_PORT=$(PORT) $(BIN)/keygate serve

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

# CLI start-up (issue 13): median wall time of `keygate --help`, a `keygate call` through a
# `keygate serve` on loopback, and `python -c pass`, 20 runs each; targets in the output. ~15 s.
bench-startup: install
	$(BIN)/python -m bench.startup
