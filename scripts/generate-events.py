#!/usr/bin/env python3
"""Writes the sample events in events/: API Gateway (HTTP API, payload 2.0), SQS
(standard and FIFO), Kinesis, DynamoDB Streams and direct invocations.

The events are committed; run this again after changing it:
    python3 scripts/generate-events.py
Every scenario the tests and the demo play is one file, named
<operation>.<scenario>.json.

Not written here: refund.via-*.json, one refund as each HTTP source delivers it
(HTTP API, REST API, ALB, Function URL), written by hand from AWS's sample events;
the library's HTTP tests load and edit them.
"""
import base64
import json
import pathlib

EVENTS = pathlib.Path(__file__).resolve().parent.parent / "events"

# Fixtures the demo and tests seed before playing the events.
SEED_ORDER_ID = "ord_4c1d2f6e9a7b4e0f8d3c2b1a0f9e8d7c"
SEED_SKU = "SKU-RED-MUG"

ALICE = "user-alice"
BOB = "user-bob"


def event(route_key, path, body, key=None, sub=ALICE, request_id="req", path_parameters=None,
          extra_headers=None):
    method, _ = route_key.split(" ", 1)
    headers = {"content-type": "application/json", "user-agent": "curl/8.5.0"}
    if key is not None:
        headers["idempotency-key"] = key
    headers.update(extra_headers or {})
    e = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "orders",
            "authorizer": {"jwt": {"claims": {"sub": sub}, "scopes": None}},
            "domainName": "orders.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "orders",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "curl/8.5.0",
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": "28/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1795852800000,
        },
        "body": body if isinstance(body, str) else json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }
    if path_parameters:
        e["pathParameters"] = path_parameters
    return e


def sqs_message(message_id, body, receive_count=1, fifo_group=None, sequence=None):
    body = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    message = {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}-{receive_count}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1795852800000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795852800100",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:payments",
        "awsRegion": "eu-west-1",
    }
    if fifo_group is not None:
        message["attributes"].update({
            "MessageGroupId": fifo_group,
            "MessageDeduplicationId": f"dedup-{sequence:04d}",
            "SequenceNumber": f"1888888888888888880{sequence:02d}",
        })
        message["eventSourceARN"] += ".fifo"
    return message


def fifo_message(n, group, body):
    return sqs_message(f"5f1e2d3c-{n:04d}-4b6a-8c7d-{n:012d}", body, fifo_group=group, sequence=n)


def kinesis_record(n, data):
    sequence = f"49590330960548238170897448583127506000000000000000000{n:04d}"
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": data["orderId"],
            "sequenceNumber": sequence,
            "data": base64.b64encode(json.dumps(data, separators=(",", ":")).encode()).decode(),
            "approximateArrivalTimestamp": 1795852800.1,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/orders-consumer",
        "awsRegion": "eu-west-1",
        "eventSourceARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/orders",
    }


def stream_record(n, name, order_id, new=None, old=None):
    change = {
        "ApproximateCreationDateTime": 1795852800,
        "Keys": {"pk": {"S": order_id}},
        "SequenceNumber": f"1110000000000000000{n:04d}",
        "SizeBytes": 120,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        change["NewImage"] = new
    if old is not None:
        change["OldImage"] = old
    return {
        "eventID": f"c4ca4238a0b923820dcc509a6f75849{n}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": change,
        "eventSourceARN":
            "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-11-30T00:00:00.000",
    }


def order_image(order_id, status, amount_cents):
    return {"pk": {"S": order_id}, "status": {"S": status},
            "amountCents": {"N": str(amount_cents)}}


def payment_body(payment_id, order_id, amount_cents, currency="EUR"):
    return {"paymentId": payment_id, "orderId": order_id, "amountCents": amount_cents,
            "currency": currency}


def scenarios(name, route_key, path, body, conflicting_body, key, path_parameters=None):
    common = dict(path_parameters=path_parameters)
    return {
        f"{name}.new": event(route_key, path, body, key=key, request_id=f"{name}-1", **common),
        f"{name}.duplicate": event(route_key, path, body, key=key, request_id=f"{name}-2", **common),
        f"{name}.conflict": event(route_key, path, conflicting_body, key=key, request_id=f"{name}-3", **common),
        f"{name}.missing-key": event(route_key, path, body, key=None, request_id=f"{name}-4", **common),
        f"{name}.malformed-key": event(route_key, path, body, key="not a valid key!", request_id=f"{name}-5", **common),
    }


def main():
    order = {"customerId": "cust-42", "currency": "EUR",
             "items": [{"sku": SEED_SKU, "quantity": 2, "unitPriceCents": 1250}]}
    out = {}
    out.update(scenarios(
        "create-order", "POST /orders", "/orders", order,
        {**order, "items": [{"sku": SEED_SKU, "quantity": 20, "unitPriceCents": 1250}]},
        key="6f1c2b7e-3d4a-4e5f-9a8b-7c6d5e4f3a2b"))
    pay_path = f"/orders/{SEED_ORDER_ID}/payment-attempts"
    payment = {"amountCents": 2500, "currency": "EUR", "paymentMethod": "pm_card_visa"}
    out.update(scenarios(
        "payment-attempt", "POST /orders/{orderId}/payment-attempts", pay_path, payment,
        {**payment, "amountCents": 25000}, key="pay-2026-11-28-0001",
        path_parameters={"orderId": SEED_ORDER_ID}))
    refund_path = f"/orders/{SEED_ORDER_ID}/refunds"
    refund = {"amountCents": 500, "reason": "damaged in transit"}
    out.update(scenarios(
        "refund", "POST /orders/{orderId}/refunds", refund_path, refund,
        {**refund, "amountCents": 1500}, key="refund_0001",
        path_parameters={"orderId": SEED_ORDER_ID}))
    reservation = {"sku": SEED_SKU, "quantity": 3}
    out.update(scenarios(
        "reserve-inventory", "POST /inventory/reservations", "/inventory/reservations", reservation,
        {**reservation, "quantity": 30}, key="8a0e4f4c-0b39-4d0b-a1a4-3f1f0c1e2d3c"))

    # The same order with its JSON keys reordered and spaced out: the same request.
    out["create-order.reordered"] = event(
        "POST /orders", "/orders",
        '{ "items": [ {"unitPriceCents": 1250, "quantity": 2, "sku": "SKU-RED-MUG"} ],\n  "currency": "EUR", "customerId": "cust-42" }',
        key="6f1c2b7e-3d4a-4e5f-9a8b-7c6d5e4f3a2b", request_id="create-order-6")
    # Another customer who happens to use the same key: never sees Alice's order.
    out["create-order.other-actor"] = event(
        "POST /orders", "/orders", {**order, "customerId": "cust-77"},
        key="6f1c2b7e-3d4a-4e5f-9a8b-7c6d5e4f3a2b", sub=BOB, request_id="create-order-7")
    # A fresh key for the concurrency scenario (a client retrying aggressively).
    out["create-order.concurrent"] = event(
        "POST /orders", "/orders", order, key="0b8f5d8e-6c3a-4f7e-9d21-5a4b3c2d1e0f",
        request_id="create-order-8")
    # A read, which is not protected: no key needed.
    out["get-order"] = event(
        "GET /orders/{orderId}", f"/orders/{SEED_ORDER_ID}", "", key=None, request_id="get-order-1",
        path_parameters={"orderId": SEED_ORDER_ID})
    out["get-order"]["body"] = None

    # SQS payments: a batch where the producer sent pay-001 twice (two message ids),
    # the same batch redelivered whole (the function timed out after processing it),
    # and a batch with failures: a poison body, a negative amount, pay-001 reused
    # with another amount, next to a good message.
    first = [
        sqs_message("3b9c1f3e-0001-4a51-9d0e-000000000001", payment_body("pay-001", "ord-A", 1000)),
        sqs_message("3b9c1f3e-0002-4a51-9d0e-000000000002", payment_body("pay-002", "ord-A", 250)),
        sqs_message("3b9c1f3e-0003-4a51-9d0e-000000000003", payment_body("pay-001", "ord-A", 1000)),
    ]
    out["sqs-payments.batch"] = {"Records": first}
    out["sqs-payments.redelivered"] = {
        "Records": [sqs_message(m["messageId"], m["body"], receive_count=2) for m in first]}
    out["sqs-payments.with-failures"] = {"Records": [
        sqs_message("3b9c1f3e-0004-4a51-9d0e-000000000004", payment_body("pay-003", "ord-B", 700)),
        sqs_message("3b9c1f3e-0005-4a51-9d0e-000000000005", "{not json"),
        sqs_message("3b9c1f3e-0006-4a51-9d0e-000000000006", payment_body("pay-004", "ord-B", -5)),
        sqs_message("3b9c1f3e-0007-4a51-9d0e-000000000007", payment_body("pay-001", "ord-A", 9999)),
    ]}

    # A FIFO queue: two message groups interleaved; pay-011 fails, so pay-012 (same
    # group, after it) must not run, while group ord-B goes on.
    out["sqs-payments.fifo"] = {"Records": [
        fifo_message(10, "ord-A", payment_body("pay-010", "ord-A", 100)),
        fifo_message(20, "ord-B", payment_body("pay-020", "ord-B", 200)),
        fifo_message(11, "ord-A", payment_body("pay-011", "ord-A", -1)),
        fifo_message(21, "ord-B", payment_body("pay-021", "ord-B", 210)),
        fifo_message(12, "ord-A", payment_body("pay-012", "ord-A", 120)),
    ]}

    # Kinesis: base64 JSON orders; the third (negative amount) fails in the middle.
    out["kinesis-orders.batch"] = {"Records": [
        kinesis_record(1, {"orderId": "ord-101", "amountCents": 1500}),
        kinesis_record(2, {"orderId": "ord-102", "amountCents": 700}),
        kinesis_record(3, {"orderId": "ord-103", "amountCents": -20}),
        kinesis_record(4, {"orderId": "ord-104", "amountCents": 900}),
    ]}

    # DynamoDB Streams: an order's INSERT and MODIFY, a bad INSERT, a REMOVE.
    out["dynamodb-streams-orders.batch"] = {"Records": [
        stream_record(1, "INSERT", "ord-201", new=order_image("ord-201", "PLACED", 1000)),
        stream_record(2, "MODIFY", "ord-201", new=order_image("ord-201", "PAID", 1000),
                      old=order_image("ord-201", "PLACED", 1000)),
        stream_record(3, "INSERT", "ord-202", new=order_image("ord-202", "PLACED", -5)),
        stream_record(4, "REMOVE", "ord-200", old=order_image("ord-200", "CANCELLED", 300)),
    ]}

    # A direct invocation (Lambda invoke, Step Functions): the payload is the event.
    out["charge.direct"] = {"paymentId": "pay-100", "amountCents": 2500, "currency": "EUR"}

    EVENTS.mkdir(exist_ok=True)
    for name, e in sorted(out.items()):
        (EVENTS / f"{name}.json").write_text(json.dumps(e, indent=2) + "\n")
    print(f"wrote {len(out)} events to {EVENTS}")


if __name__ == "__main__":
    main()
