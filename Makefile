# Let's Chat — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv

.PHONY: run build test test-rust test-postgres conformance openapi fmt lint clean

## Build everything and serve on http://127.0.0.1:8080 with the embedded SQLite database.
run:
	$(CARGO) build --release -p letschat
	./target/release/letschat

## Release build of the server.
build:
	$(CARGO) build --release -p letschat

## Every test suite: Rust (SQLite, then PostgreSQL when configured), then API conformance.
test: test-rust test-postgres conformance

test-rust:
	$(CARGO) test --workspace

test-postgres:
	@if [ -n "$${LETSCHAT_TEST_POSTGRES_URL:-}" ]; then \
		echo "== API suite again on PostgreSQL ($${LETSCHAT_TEST_POSTGRES_URL})"; \
		LETSCHAT_TEST_BACKEND=postgres $(CARGO) test -p letschat --test api; \
	else \
		echo "PostgreSQL run skipped: set LETSCHAT_TEST_POSTGRES_URL to run the API suite on PostgreSQL too."; \
	fi

## schemathesis against the served spec, authenticated as a registered user.
conformance: $(VENV)/.schemathesis
	$(CARGO) build -p letschat
	SCHEMATHESIS=$(VENV)/bin/schemathesis ./scripts/conformance.sh

$(VENV)/.schemathesis: scripts/requirements-conformance.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-conformance.txt
	touch $@

## Regenerate openapi.yaml from the code.
openapi:
	$(CARGO) run -q -p letschat -- openapi > openapi.yaml

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(VENV)
