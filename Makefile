# Developer entry points. `make test` is what CI runs (see .ci/run).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

WITH_DYNAMODB := scripts/with-dynamodb-local.sh
REQUIRE := scripts/require.sh

.PHONY: test lint demo dynamodb-local

## test: lint, then all tests (unit, integration, examples, doc tests) against a fresh DynamoDB Local
test: lint
	@$(REQUIRE) cargo
	$(WITH_DYNAMODB) scripts/cargo-test-all.sh

## lint: rustfmt check and clippy with warnings as errors
lint:
	@$(REQUIRE) cargo
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## demo: run the orders-api demo
demo:
	@$(REQUIRE) cargo
	cargo run --quiet -p orders-api --example demo

## dynamodb-local: keep one DynamoDB Local running until Ctrl-C
dynamodb-local:
	$(WITH_DYNAMODB) bash -c 'echo "export AWS_ENDPOINT_URL_DYNAMODB=$$AWS_ENDPOINT_URL_DYNAMODB"; echo "press Ctrl-C to stop"; sleep infinity'
