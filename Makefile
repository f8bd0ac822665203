# Let's Chat — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

CARGO ?= cargo
PYTHON ?= python3
NPM ?= npm
VENV := .venv
WEB := frontend

.PHONY: run build web web-deps test test-rust test-postgres conformance test-web e2e screenshots openapi fmt lint clean fuzz package package-test cargo-deb

## Build everything and serve on http://127.0.0.1:8080 with the embedded SQLite database.
run: web
	$(CARGO) build --release -p letschat
	./target/release/letschat

## Release build of the server and the web client.
build: web
	$(CARGO) build --release -p letschat

## The Debian package target/debian/letschat_<version>_<arch>.deb: the release build (stripped),
## the web client, the systemd unit and its settings file (docs/deploy.md, "Install"); and its
## debug symbols (file and line tables) in letschat-dbgsym_<version>_<arch>.ddeb.
CARGO_DEB_VERSION := 3.8.0
package: web cargo-deb
	mkdir -p target/debian
	$(CARGO) deb -p letschat --locked --dbgsym -o target/debian/

## Builds the package, then checks it: contents, conffile, unit (systemd-analyze verify), the
## secret generation, and the packaged server serving the packaged web client.
package-test: package
	./packaging/test-package.sh "$$(ls -t target/debian/letschat_*.deb | head -n 1)"

## cargo-deb, pinned, installed only when missing or another version.
cargo-deb:
	@if ! $(CARGO) deb --version 2>/dev/null | grep -q ' $(CARGO_DEB_VERSION)$$'; then \
		$(CARGO) install cargo-deb --locked --version $(CARGO_DEB_VERSION); \
	fi

$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json $(WEB)/package.json
	cd $(WEB) && $(NPM) ci --no-audit --no-fund
web-deps: $(WEB)/node_modules/.package-lock.json

## Build the web client into frontend/dist (the server's default LETSCHAT_STATIC_DIR).
web: web-deps
	cd $(WEB) && $(NPM) run build

## Every test suite: Rust (SQLite, then PostgreSQL when configured), API conformance, the web
## client's unit tests and the end-to-end browser tests.
test: test-rust test-postgres conformance test-web e2e

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
# The server binary is built as the test suites build it (same features, so nothing recompiles).
conformance: $(VENV)/.schemathesis
	$(CARGO) test --workspace --no-run
	SCHEMATHESIS=$(VENV)/bin/schemathesis ./scripts/conformance.sh

$(VENV)/.schemathesis: scripts/requirements-conformance.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-conformance.txt
	touch $@

## Web client: the generated API client is current, and the unit tests pass.
test-web: web-deps
	cd $(WEB) && $(NPM) run check:api
	cd $(WEB) && $(NPM) test

## End-to-end tests in headless Chromium against the real server.
e2e: web
	$(CARGO) test --workspace --no-run
	cd $(WEB) && LETSCHAT_BIN=../target/debug/letschat E2E_SCREENSHOTS=0 $(NPM) run e2e

## The same run, refreshing docs/screenshots/.
screenshots: web
	$(CARGO) test --workspace --no-run
	cd $(WEB) && LETSCHAT_BIN=../target/debug/letschat E2E_SCREENSHOTS=1 $(NPM) run e2e

## Regenerate openapi.yaml and asyncapi.json (the WebSocket protocol) from the code, and the web
## client's typed API from openapi.yaml.
openapi: web-deps
	$(CARGO) run -q -p letschat -- openapi > openapi.yaml
	$(CARGO) run -q -p letschat -- asyncapi > asyncapi.json
	cd $(WEB) && $(NPM) run gen:api

## Property tests of the WebSocket frame parser and the request validators with many more cases
## than `make test` runs (256 each): FUZZ_CASES (default 100000) per property.
FUZZ_CASES ?= 100000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --release -p letschat --lib properties

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(WEB)/dist $(WEB)/node_modules

## Load benchmark (not a test): release builds, then the idle, throughput, latency and abuse
## scenarios with their default parameters against a server the tool spawns on a temporary SQLite
## database (abuse: the server's default limits; it fails when the server's peak RSS passes its
## bound), then the cluster scenario on the PostgreSQL and Redis named below (skipped when they do
## not answer). Figures and method: docs/performance.md. Every scenario runs; the target fails if
## any did.
BENCH_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres
BENCH_REDIS_URL ?= redis://127.0.0.1:6379
.PHONY: bench
bench:
	$(CARGO) build --release -p letschat -p letschat-bench
	@ulimit -n 1048576 2>/dev/null || ulimit -n "$$(ulimit -Hn)"; \
	status=0; \
	for scenario in idle throughput latency abuse; do \
		echo "== make bench: $$scenario"; \
		./target/release/letschat-bench --server ./target/release/letschat $$scenario || status=1; \
	done; \
	echo "== make bench: abuse, login flood and list burst at the latency scenario's load"; \
	./target/release/letschat-bench --server ./target/release/letschat abuse --phases 4,6 -p 2000 -r 4000 || status=1; \
	echo "== make bench: a login flood of 2,000 wrong passwords a second from 200 addresses, at the latency scenario's load"; \
	./target/release/letschat-bench --server ./target/release/letschat abuse --phases 4 --flood-rate-per-source 10 -p 2000 -r 4000 || status=1; \
	echo "== make bench: latency under a storm of 2,000 reactions a second (message changes through the same writer), then under the same REST load without changes (2,000 GET a second)"; \
	./target/release/letschat-bench --server ./target/release/letschat latency --reaction-rate 2000 || status=1; \
	./target/release/letschat-bench --server ./target/release/letschat latency --read-rate 2000 || status=1; \
	echo "== make bench: latency without uploads, then under 50 concurrent uploaders of 2 MiB JPEGs (issue: p99 within 1.5x of the first run's; MB/s and server peak RSS)"; \
	./target/release/letschat-bench --server ./target/release/letschat latency || status=1; \
	./target/release/letschat-bench --server ./target/release/letschat latency --uploads 50 || status=1; \
	echo "== make bench: cluster (SQLite, PostgreSQL, PostgreSQL + Redis with 1, 2 and 3 instances)"; \
	if psql "$(BENCH_POSTGRES_URL)" -XtAqc 'SELECT 1' >/dev/null 2>&1 && redis-cli -u "$(BENCH_REDIS_URL)" ping >/dev/null 2>&1; then \
		./target/release/letschat-bench --server ./target/release/letschat cluster \
			--postgres "$(BENCH_POSTGRES_URL)" --redis "$(BENCH_REDIS_URL)" || status=1; \
		echo "== make bench: 100,000 idle connections across six instances on PostgreSQL + Redis"; \
		db=letschat_bench_idle_$$$$; \
		psql "$(BENCH_POSTGRES_URL)" -XqAtc "CREATE DATABASE $$db" && \
		{ ./target/release/letschat-bench --server ./target/release/letschat --instances 6 \
			--server-env "DATABASE_URL=$$(echo '$(BENCH_POSTGRES_URL)' | sed -E "s#/[^/?]*([?]|\$$)#/$$db\1#")" \
			--server-env "REDIS_URL=$(BENCH_REDIS_URL)" --server-env "LETSCHAT_REDIS_PREFIX=$$db:" \
			idle -n 100000 || status=1; \
		  psql "$(BENCH_POSTGRES_URL)" -XqAtc "DROP DATABASE IF EXISTS $$db WITH (FORCE)"; }; \
	else \
		echo "cluster skipped: no PostgreSQL at BENCH_POSTGRES_URL=$(BENCH_POSTGRES_URL) or no Redis at BENCH_REDIS_URL=$(BENCH_REDIS_URL)"; \
	fi; \
	exit $$status
