#!/usr/bin/env bash
# The functions on your machine: `make local` runs this inside
# scripts/with-dynamodb-local.sh, which has started DynamoDB Local and exported
# AWS_ENDPOINT_URL_DYNAMODB, dummy credentials and a region.
#
#   scripts/with-dynamodb-local.sh scripts/local-stack.sh [--no-watch]
#
# 1. creates the idempotency table (with the `idem` CLI: TTL + expiry index), the
#    orders table and the ledger table, and seeds the stock the sample events use;
# 2. prints the requests to try;
# 3. runs `cargo lambda watch` with every function's environment until Ctrl-C
#    (--no-watch: stop after step 2, e.g. to check the tables).
#
# The functions get dummy credentials (DynamoDB Local ignores them), never yours.
# Table names: IDEMPOTENCY_TABLE, ORDERS_TABLE, LEDGER_TABLE (defaults idempotency,
# orders, ledger). Watch port: LOCAL_PORT (default 9000, cargo-lambda's default).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${AWS_ENDPOINT_URL_DYNAMODB:?run this through scripts/with-dynamodb-local.sh (make local)}"
IDEMPOTENCY_TABLE="${IDEMPOTENCY_TABLE:-idempotency}"
ORDERS_TABLE="${ORDERS_TABLE:-orders}"
LEDGER_TABLE="${LEDGER_TABLE:-ledger}"
LOCAL_PORT="${LOCAL_PORT:-9000}"
WATCH=1
if [[ ${1:-} == --no-watch ]]; then WATCH=0; fi

log() { printf 'local: %s\n' "$*" >&2; }

# One DynamoDB API call with curl: DynamoDB Local parses the Authorization header but
# does not check the signature, so a fixed dummy one does (never real credentials).
ddb() { # <operation> <json body>
    curl -sS -X POST "$AWS_ENDPOINT_URL_DYNAMODB" \
        -H 'Content-Type: application/x-amz-json-1.0' \
        -H "X-Amz-Target: DynamoDB_20120810.$1" \
        -H "Authorization: AWS4-HMAC-SHA256 Credential=local/20240101/${AWS_REGION:-us-east-1}/dynamodb/aws4_request, SignedHeaders=host, Signature=0" \
        --data "$2"
}

table_exists() {
    ddb DescribeTable "{\"TableName\":\"$1\"}" | grep '"TableStatus"' >/dev/null
}

create_pk_sk_table() { # <name>: pk (S) + sk (S), on demand, like template.yaml
    local out
    out="$(ddb CreateTable "{\"TableName\":\"$1\",\"BillingMode\":\"PAY_PER_REQUEST\",
        \"AttributeDefinitions\":[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"},{\"AttributeName\":\"sk\",\"AttributeType\":\"S\"}],
        \"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"},{\"AttributeName\":\"sk\",\"KeyType\":\"RANGE\"}]}")"
    if [[ $out != *'"TableDescription"'* && $out != *ResourceInUseException* ]]; then
        log "error: creating table $1 failed: $out"
        exit 1
    fi
}

# --- the idempotency table ---------------------------------------------------
# The idem CLI creates it exactly as the library expects (key, TTL), with the
# sweeper's indexes, since the sweeper runs here too (as with Sweeper=true).
if [[ -f tools/idem/Cargo.toml ]]; then
    log "creating table $IDEMPOTENCY_TABLE with the idem CLI (compiles it the first time)"
    cargo run -q -p idem -- table create --with-sweeper-indexes --table "$IDEMPOTENCY_TABLE" ||
        log "warning: 'idem table create' failed; falling back to a direct CreateTable"
fi
if ! table_exists "$IDEMPOTENCY_TABLE"; then
    # Same shape as template.yaml with Sweeper=true, less the in-flight index (the
    # sweeper then sweeps without the gauge): pk, expiry-index (expiry_bucket,
    # expires_at) keys only, TTL on expires_at.
    log "creating table $IDEMPOTENCY_TABLE directly"
    out="$(ddb CreateTable "{\"TableName\":\"$IDEMPOTENCY_TABLE\",\"BillingMode\":\"PAY_PER_REQUEST\",
        \"AttributeDefinitions\":[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"},
            {\"AttributeName\":\"expiry_bucket\",\"AttributeType\":\"S\"},{\"AttributeName\":\"expires_at\",\"AttributeType\":\"N\"}],
        \"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}],
        \"GlobalSecondaryIndexes\":[{\"IndexName\":\"expiry-index\",
            \"KeySchema\":[{\"AttributeName\":\"expiry_bucket\",\"KeyType\":\"HASH\"},{\"AttributeName\":\"expires_at\",\"KeyType\":\"RANGE\"}],
            \"Projection\":{\"ProjectionType\":\"KEYS_ONLY\"}}]}")"
    [[ $out == *'"TableDescription"'* ]] || { log "error: creating $IDEMPOTENCY_TABLE failed: $out"; exit 1; }
    out="$(ddb UpdateTimeToLive "{\"TableName\":\"$IDEMPOTENCY_TABLE\",\"TimeToLiveSpecification\":{\"Enabled\":true,\"AttributeName\":\"expires_at\"}}")"
    [[ $out == *TimeToLiveSpecification* ]] || { log "error: enabling TTL on $IDEMPOTENCY_TABLE failed: $out"; exit 1; }
fi

# --- the orders and ledger tables, and the stock the sample events use -------
create_pk_sk_table "$ORDERS_TABLE"
create_pk_sk_table "$LEDGER_TABLE"
out="$(ddb PutItem "{\"TableName\":\"$ORDERS_TABLE\",\"Item\":{\"pk\":{\"S\":\"SKU#SKU-RED-MUG\"},\"sk\":{\"S\":\"STOCK\"},\"entity\":{\"S\":\"stock\"},\"available\":{\"N\":\"100\"}}}")"
[[ $out == '{}' ]] || { log "error: seeding stock failed: $out"; exit 1; }
log "tables ready on $AWS_ENDPOINT_URL_DYNAMODB: $IDEMPOTENCY_TABLE, $ORDERS_TABLE, $LEDGER_TABLE (stock: SKU-RED-MUG x 100)"

# --- what to try -----------------------------------------------------------------
base="http://localhost:$LOCAL_PORT/lambda-url/orders-api"
cat >&2 <<EOF

Functions are compiled on their first request. Then, in another terminal:

  # create an order; run it twice with the same key: the second answer is a replay
  KEY=\$(uuidgen 2>/dev/null || cat /proc/sys/kernel/random/uuid 2>/dev/null || python3 -c 'import uuid; print(uuid.uuid4())')
  curl -i -X POST $base/orders \\
    -H 'content-type: application/json' -H "Idempotency-Key: \$KEY" \\
    -d '{"customerId":"cust-42","currency":"EUR","items":[{"sku":"SKU-RED-MUG","quantity":2,"unitPriceCents":1250}]}'

  # the same key with another body: 409 problem+json
  curl -i -X POST $base/orders \\
    -H 'content-type: application/json' -H "Idempotency-Key: \$KEY" \\
    -d '{"customerId":"cust-42","currency":"EUR","items":[{"sku":"SKU-RED-MUG","quantity":3,"unitPriceCents":1250}]}'

  # read it back (orderId from the first answer)
  curl -i $base/orders/<orderId>

  # the SQS consumer and the sweeper take their sample events
  cargo lambda invoke payments-consumer --invoke-port $LOCAL_PORT --data-file events/sqs-payments.batch.json
  cargo lambda invoke sweeper --invoke-port $LOCAL_PORT --data-file events/scheduled-sweep.json

Locally the event is a Function URL event (routeKey \$default), so the idempotency
scope is the method and the concrete path (POST /orders), not the API Gateway route
template it has when deployed.

EOF

((WATCH)) || exit 0

env_args=()
for pair in \
    "IDEMPOTENCY_TABLE=$IDEMPOTENCY_TABLE" \
    "ORDERS_TABLE=$ORDERS_TABLE" \
    "LEDGER_TABLE=$LEDGER_TABLE" \
    "IDEMPOTENCY_EXPIRY=${IDEMPOTENCY_EXPIRY:-24h}" \
    "IDEMPOTENCY_MAX_LEASE=${IDEMPOTENCY_MAX_LEASE:-30s}" \
    "SWEEP_MAX_ITEMS=${SWEEP_MAX_ITEMS:-5000}" \
    "SWEEP_LOOKBACK_HOURS=${SWEEP_LOOKBACK_HOURS:-73}" \
    "AWS_LAMBDA_LOG_LEVEL=${AWS_LAMBDA_LOG_LEVEL:-DEBUG}" \
    "AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB" \
    "AWS_REGION=${AWS_REGION:-us-east-1}" \
    "AWS_ACCESS_KEY_ID=local" \
    "AWS_SECRET_ACCESS_KEY=local"; do
    env_args+=(--env-var "$pair")
done
log "cargo lambda watch on port $LOCAL_PORT (Ctrl-C stops it and DynamoDB Local)"
exec cargo lambda watch --invoke-port "$LOCAL_PORT" "${env_args[@]}"
