# Developer entry points. `make test` is what CI runs (see .ci/run).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

WITH_DYNAMODB := scripts/with-dynamodb-local.sh
WITH_REDIS := scripts/with-redis.sh
REQUIRE := scripts/require.sh

.PHONY: test lint demo dynamodb-local lint-template build deploy local bench verify fuzz model help

## help: the targets, each with what it does (from the `## target:` comments here)
help:
	@sed -n 's/^## \([a-z-]*\): /\1\t/p' $(MAKEFILE_LIST) | sort | awk -F '\t' '{ printf "  make %-15s %s\n", $$1, $$2 }'

# Template linters, pip-installed into a git-ignored virtualenv. Versions verified
# together with `make lint-template` (cfn-lint is also aws-sam-cli's linter).
CFN_LINT_VERSION := 1.58.0
SAM_CLI_VERSION := 1.170.0
CI_VENV := .venv-ci
CI_VENV_STAMP := $(CI_VENV)/.installed-cfn-lint-$(CFN_LINT_VERSION)-sam-$(SAM_CLI_VERSION)
# `sam validate --lint` works offline; dummy credentials and no profile keep it from
# looking for real ones, and telemetry stays off.
SAM_OFFLINE := env -u AWS_PROFILE AWS_ACCESS_KEY_ID=lint AWS_SECRET_ACCESS_KEY=lint \
	AWS_REGION=us-east-1 SAM_CLI_TELEMETRY=0
SAM_TELEMETRY_OFF := env SAM_CLI_TELEMETRY=0

# cargo-lambda is needed by build, deploy and local only (never by CI: it takes about
# 20 minutes to install).
define require_cargo_lambda
	@cargo lambda --version >/dev/null 2>&1 || { \
	  echo "cargo lambda not found: install it with 'cargo install cargo-lambda --locked'" >&2; \
	  echo "(about 20 minutes), plus zig, which it links with: 'pip install ziglang', or" >&2; \
	  echo "'.venv-ci/bin/pip install ziglang' (make build puts .venv-ci/bin first on PATH)." >&2; \
	  echo "See https://www.cargo-lambda.info/guide/installation.html for prebuilt binaries." >&2; \
	  exit 1; }
endef

## test: lint, the dev scripts without Linux-only tools (as on macOS), the spin model at its quick bounds, all tests (unit, integration, examples, doc tests) against a fresh DynamoDB Local and a fresh redis-server, then each fuzz target for 10 s
test: lint
	@$(REQUIRE) cargo spin gcc cargo-fuzz
	scripts/test-portable-scripts.sh
	scripts/verify-model.sh quick
	$(WITH_DYNAMODB) $(WITH_REDIS) scripts/cargo-test-all.sh
	scripts/fuzz.sh 10

# How long `make fuzz` and `make verify` run each fuzz target, in seconds.
FUZZ_SECONDS ?= 600

## model: the spin model of the record protocol at its full bounds, its liveness check and the planted defects (VERIFICATION.md)
model:
	scripts/verify-model.sh full

## fuzz: each fuzz target for FUZZ_SECONDS (default 600) seconds
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

## verify: the long checks, `make model` then `make fuzz` (VERIFICATION.md has their figures)
verify: model fuzz

# Each cargo feature of the library alone (and none) must build, lint-clean.
FEATURES := http event batch dynamodb redis emf zstd macros ops testing

## lint: rustfmt check, clippy with warnings as errors (also for each feature alone), the crates package and build as published, and no shell pipeline that SIGPIPE can fail
lint:
	@$(REQUIRE) cargo
	scripts/check-pipelines.sh
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -q -p lambda-idempotency -- -D warnings
	cargo clippy -q -p lambda-idempotency --no-default-features -- -D warnings
	cargo clippy -q -p orders-api --features redis --all-targets -- -D warnings
	for feature in $(FEATURES); do \
	  echo "== --no-default-features --features $$feature"; \
	  cargo clippy -q -p lambda-idempotency --no-default-features --features $$feature -- -D warnings || exit 1; \
	done
	cargo package -q -p lambda-idempotency-macros -p lambda-idempotency --allow-dirty

## demo: run the orders-api demo
demo:
	@$(REQUIRE) cargo
	cargo run --quiet -p orders-api --example demo

## dynamodb-local: keep one DynamoDB Local running until Ctrl-C
dynamodb-local:
	$(WITH_DYNAMODB) bash -c 'echo "export AWS_ENDPOINT_URL_DYNAMODB=$$AWS_ENDPOINT_URL_DYNAMODB"; echo "press Ctrl-C to stop"; sleep infinity'

## lint-template: cfn-lint and `sam validate --lint` on template.yaml (offline; installs both into .venv-ci/ once)
lint-template: $(CI_VENV_STAMP)
	$(CI_VENV)/bin/cfn-lint template.yaml
	$(SAM_OFFLINE) $(CI_VENV)/bin/sam validate --lint --template template.yaml --region us-east-1

$(CI_VENV_STAMP):
	@$(REQUIRE) python3
	@python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 9))' || { \
	  echo "python3 3.9+ with the venv module is needed for aws-sam-cli (e.g. apt-get install python3-venv)" >&2; exit 1; }
	rm -rf $(CI_VENV)
	python3 -m venv $(CI_VENV)
	$(CI_VENV)/bin/pip install --quiet --disable-pip-version-check \
	  "cfn-lint==$(CFN_LINT_VERSION)" "aws-sam-cli==$(SAM_CLI_VERSION)"
	$(CI_VENV)/bin/cfn-lint --version
	$(SAM_OFFLINE) $(CI_VENV)/bin/sam --version
	touch $@

# The functions' architecture for build and deploy: empty = samconfig.toml's
# (arm64), or `make build deploy ARCH=x86_64`.
ARCH ?=
ARCH_OVERRIDE := $(if $(ARCH),--parameter-overrides Architecture=$(ARCH))

## build: `sam build`: release binaries of the three functions (never idem) in .aws-sam/build, arm64 or ARCH=x86_64 (needs cargo-lambda; not in CI)
build: $(CI_VENV_STAMP)
	@$(REQUIRE) cargo
	$(require_cargo_lambda)
	# sam build compiles each function's binary alone with cargo lambda (the
	# rust-cargolambda build method, `--bin <name>`), so neither idem nor test-support's
	# `testing` feature of the library reaches a bootstrap.
	# .venv-ci/bin first on PATH: its python3 finds zig when ziglang is pip-installed there.
	PATH="$(CURDIR)/$(CI_VENV)/bin:$$PATH" $(SAM_TELEMETRY_OFF) $(CI_VENV)/bin/sam build \
	  --template template.yaml $(ARCH_OVERRIDE)

## deploy: `make build` (the one compilation), then `sam deploy --guided` with the same ARCH (needs AWS credentials; never run in CI)
deploy: build
	$(SAM_TELEMETRY_OFF) $(CI_VENV)/bin/sam deploy --guided $(ARCH_OVERRIDE)

## local: DynamoDB Local with the tables, then `cargo lambda watch` on every function (needs cargo-lambda; Ctrl-C stops)
local:
	@$(REQUIRE) cargo curl
	$(require_cargo_lambda)
	$(WITH_DYNAMODB) scripts/local-stack.sh

## bench: criterion micro-benchmarks, the layer at 1/13 of a core, end-to-end latency against DynamoDB Local and a redis-server, orders-api size, init time and memory over 10,000 requests (results in target/bench-results/; see BENCHMARKS.md)
bench:
	@$(REQUIRE) cargo
	cargo build --release -p orders-api
	cargo bench --bench overhead -- --warm-up-time 1 --measurement-time 3
	cargo bench --bench throttled
	$(WITH_DYNAMODB) cargo bench --bench end_to_end --bench cold_start --bench memory
	$(WITH_REDIS) cargo bench --bench end_to_end_redis

.PHONY: idem
idem:
	cargo run -q -p idem -- --help

# Scale of `make stress`: requests per trial, trials, and kill/restart runs.
STRESS_REQUESTS ?= 1000
STRESS_TRIALS ?= 20
STRESS_OUTAGES ?= 3

.PHONY: stress
## stress: the reliability tests at full scale against DynamoDB Local: STRESS_TRIALS trials of STRESS_REQUESTS identical concurrent requests, STRESS_OUTAGES kill/restart runs
stress:
	@$(REQUIRE) cargo
	IDEM_STRESS_REQUESTS=$(STRESS_REQUESTS) IDEM_STRESS_TRIALS=$(STRESS_TRIALS) \
	  $(WITH_DYNAMODB) cargo test --test it reliability_concurrency:: -- --nocapture --test-threads 1
	for run in $$(seq $(STRESS_OUTAGES)); do \
	  echo "== kill/restart run $$run of $(STRESS_OUTAGES)"; \
	  $(WITH_DYNAMODB) cargo test --test it reliability_outage:: -- --nocapture || exit 1; \
	done
