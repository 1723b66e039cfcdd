# Monsoon's two commands: `make demo` runs the demo, `make test` runs every test.
# Both install what a fresh Debian machine lacks first (scripts/install-deps.sh).

CARGO ?= cargo
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo "nextest run" || echo test)
WEB_SOURCES := web/package.json web/package-lock.json web/build.mjs web/icons.mjs $(wildcard web/src/*)

.PHONY: demo test deps web build lint fuzz cluster

## demo: install, build, make a synthetic film, ingest it and serve it on http://127.0.0.1:8080
demo: deps web
	$(CARGO) run -p monsoon -- demo

## test: formatting, lints, and every test tier (unit, in-process HTTP, end-to-end)
test: deps web lint
	$(CARGO) $(NEXTEST) --workspace

## cluster: the production layout on 127.0.0.1 (PostgreSQL, three Garage nodes, three serve
## nodes, nginx in front) with the demo film; Ctrl-C stops it. See docs/DEPLOY.md.
cluster: deps web
	@scripts/cluster.sh

## fuzz: every fuzz target with libFuzzer, FUZZ_SECONDS each (default 300); `make test` only
## replays their corpus (crates/fuzzing). See docs/SECURITY.md.
fuzz:
	@scripts/fuzz.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

deps:
	@scripts/install-deps.sh

## web: the player assets (hls.js from npm) in web/dist
web: web/dist/.built

web/dist/.built: $(WEB_SOURCES)
	cd web && npm ci --no-audit --no-fund && npm run build
	touch $@

build: web
	$(CARGO) build --workspace
