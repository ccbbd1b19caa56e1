//! Plays the seed scenarios from `events/` through the orders API and prints what
//! happened: status, whether the answer was a replay, and side effects counted.
//!
//! Runs in-process on the in-memory store (no Java, no AWS account). With
//! `AWS_ENDPOINT_URL_DYNAMODB` set it uses DynamoDB there instead, in fresh tables;
//! with `IDEMPOTENCY_REDIS_URL` set (and the `redis` feature) the records go to Redis,
//! under a key prefix of this run's own.
//!
//!     make demo

use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Error, Request, Response, Service};
use lambda_idempotency::clock::Clock;
use lambda_idempotency::clock::ManualClock;
use lambda_idempotency::config::IdempotencyConfig;
use lambda_idempotency::http::{IDEMPOTENT_REPLAYED, IdempotencyLayer};
use lambda_idempotency::ops::create_table;
use lambda_idempotency::store::dynamodb::{AttributeNames, DynamoDbStore};
use lambda_idempotency::store::{MemoryStore, Store};
use orders_api::fixtures::{self, seed};
use orders_api::gateway::SimulatedGateway;
use orders_api::repo::dynamodb::{DynamoDbRepo, create_orders_table};
use orders_api::repo::{MemoryRepo, OrdersRepo};
use orders_api::{OrdersApi, ROUTE_TEMPLATES, service};
use tower::ServiceExt;

/// API Gateway's integration timeout: the deadline each simulated invocation gets.
const INVOCATION_TIMEOUT_MS: i64 = 29_000;

/// The payment gateway takes this long, so a duplicate can arrive mid-flight.
const GATEWAY_LATENCY: Duration = Duration::from_millis(300);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let clock = ManualClock::starting_now();
    // The orders: DynamoDB when an endpoint is set, else in memory.
    let (repo, dynamodb): (Arc<dyn OrdersRepo>, _) =
        match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            Ok(endpoint) if !endpoint.is_empty() => {
                let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let client = aws_sdk_dynamodb::Client::new(&sdk);
                let orders = format!("demo-orders-{}", uuid::Uuid::new_v4().simple());
                create_orders_table(&client, &orders).await?;
                let repo = Arc::new(DynamoDbRepo::new(client.clone(), &orders));
                (repo, Some((client, endpoint, orders)))
            }
            _ => (Arc::new(MemoryRepo::new()), None),
        };
    // The records: Redis when IDEMPOTENCY_REDIS_URL is set (the `redis` feature), else
    // DynamoDB when an endpoint is set, else the embedded in-memory store.
    let (store, backend): (Arc<dyn Store>, String) =
        match (orders_api::store::redis_url(), &dynamodb) {
            (Some(url), _) => (
                demo_redis(&url, &clock).await?,
                format!(
                    "Redis at {} for the records, {}",
                    url.rsplit_once('@').map_or(url.as_str(), |(_, host)| host),
                    match &dynamodb {
                        Some((_, endpoint, orders)) =>
                            format!("DynamoDB at {endpoint} for the orders ({orders})"),
                        None => "memory for the orders".to_owned(),
                    }
                ),
            ),
            (None, Some((client, endpoint, orders))) => {
                let records = format!("demo-idempotency-{}", uuid::Uuid::new_v4().simple());
                create_table(client, &records, &AttributeNames::default()).await?;
                let store = DynamoDbStore::new(client.clone(), &records).with_clock(clock.clone());
                (
                    Arc::new(store),
                    format!("DynamoDB at {endpoint} (tables {records}, {orders})"),
                )
            }
            (None, None) => (
                Arc::new(MemoryStore::with_clock(clock.clone())),
                "the embedded in-memory store".to_owned(),
            ),
        };
    let layer = IdempotencyLayer::builder(store)
        .clock(clock.clone())
        .config(IdempotencyConfig::from_env()?)
        .route_templates(ROUTE_TEMPLATES)
        .build()?;
    seed(&*repo).await?;
    let gateway = Arc::new(SimulatedGateway::new().with_latency(GATEWAY_LATENCY));
    let api = OrdersApi::new(Arc::clone(&repo), gateway).with_clock(clock.clone());
    let svc = service(api, &layer);

    println!("lambda-idempotency demo: the orders API on {backend}\n");
    let mut table = Table::new();
    let mut effects = repo.side_effects().await?.total();

    let plays: &[(&str, &str)] = &[
        ("POST /orders, new key", "create-order.new"),
        (
            "same request again (client retry)",
            "create-order.duplicate",
        ),
        ("same key, JSON keys reordered", "create-order.reordered"),
        ("same key, different body", "create-order.conflict"),
        ("same key, another customer", "create-order.other-actor"),
        ("no Idempotency-Key", "create-order.missing-key"),
        ("malformed Idempotency-Key", "create-order.malformed-key"),
    ];
    for (scenario, name) in plays {
        let response = call(svc.clone(), event_at(&clock, name)?).await?;
        table
            .row(scenario, &[&response], &mut effects, &*repo)
            .await?;
    }

    // Ten identical requests at once, as an impatient client or a retrying proxy sends them.
    let concurrent: Vec<_> = (0..10)
        .map(|_| {
            event_at(&clock, "create-order.concurrent")
                .map(|request| tokio::spawn(call(svc.clone(), request)))
        })
        .collect::<Result<_, _>>()?;
    let mut responses = Vec::new();
    for task in concurrent {
        responses.push(task.await??);
    }
    table
        .row(
            "10 concurrent identical POSTs",
            &responses.iter().collect::<Vec<_>>(),
            &mut effects,
            &*repo,
        )
        .await?;

    // A duplicate that arrives while the first is still authorising the payment.
    let first = tokio::spawn(call(svc.clone(), event_at(&clock, "payment-attempt.new")?));
    tokio::time::sleep(GATEWAY_LATENCY / 3).await;
    let duplicate = call(svc.clone(), event_at(&clock, "payment-attempt.duplicate")?).await?;
    table
        .row(
            "payment duplicate while in flight",
            &[&duplicate],
            &mut effects,
            &*repo,
        )
        .await?;
    let first = first.await??;
    table
        .row(
            "  ... the first payment completes",
            &[&first],
            &mut effects,
            &*repo,
        )
        .await?;
    let retry = call(svc.clone(), event_at(&clock, "payment-attempt.duplicate")?).await?;
    table
        .row(
            "  ... the duplicate retried later",
            &[&retry],
            &mut effects,
            &*repo,
        )
        .await?;

    for (scenario, name) in [
        ("POST refund, new key", "refund.new"),
        ("refund retried", "refund.duplicate"),
        ("refund key reused, larger amount", "refund.conflict"),
        ("POST reservation, new key", "reserve-inventory.new"),
        ("reservation retried", "reserve-inventory.duplicate"),
    ] {
        let response = call(svc.clone(), event_at(&clock, name)?).await?;
        table
            .row(scenario, &[&response], &mut effects, &*repo)
            .await?;
    }

    clock.advance(Duration::from_secs(24 * 60 * 60 + 1));
    let response = call(svc.clone(), event_at(&clock, "create-order.duplicate")?).await?;
    table
        .row(
            "same request after 24 h (key expired)",
            &[&response],
            &mut effects,
            &*repo,
        )
        .await?;

    table.print();
    let counts = repo.side_effects().await?;
    println!(
        "\nside effects stored: {} orders (1 seeded), {} payment attempts, {} refunds, {} reservations",
        counts.orders, counts.payment_attempts, counts.refunds, counts.reservations
    );
    Ok(())
}

/// Loads `events/<name>.json` as Lambda would deliver it: with a context whose
/// deadline is the invocation timeout from now.
fn event_at(clock: &ManualClock, name: &str) -> Result<Request, Error> {
    let mut request = fixtures::event(name)?;
    let mut context = lambda_http::Context::default();
    context.deadline = u64::try_from(clock.now_millis() + INVOCATION_TIMEOUT_MS).unwrap_or(0);
    context.request_id = format!("demo-{name}");
    request.extensions_mut().insert(context);
    Ok(request)
}

async fn call<S>(service: S, request: Request) -> Result<Response<Body>, Error>
where
    S: Service<Request, Response = Response<Body>, Error = Error>,
{
    service.oneshot(request).await
}

struct Table {
    rows: Vec<[String; 4]>,
}

impl Table {
    fn new() -> Self {
        Self { rows: Vec::new() }
    }

    async fn row(
        &mut self,
        scenario: &str,
        responses: &[&Response<Body>],
        effects: &mut usize,
        repo: &dyn OrdersRepo,
    ) -> Result<(), Error> {
        let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
        statuses.sort_unstable();
        let mut status = String::new();
        let mut i = 0;
        while i < statuses.len() {
            let n = statuses[i..]
                .iter()
                .take_while(|s| **s == statuses[i])
                .count();
            if !status.is_empty() {
                status.push_str(", ");
            }
            if responses.len() == 1 {
                status.push_str(&statuses[i].to_string());
            } else {
                status.push_str(&format!("{} x{n}", statuses[i]));
            }
            i += n;
        }
        let replayed = responses
            .iter()
            .filter(|r| r.headers().get(IDEMPOTENT_REPLAYED).is_some())
            .count();
        let replayed = match (responses.len(), replayed) {
            (1, 1) => "yes".to_owned(),
            (1, _) => "no".to_owned(),
            (n, r) => format!("{r} of {n}"),
        };
        let now = repo.side_effects().await?.total();
        let added = now - *effects;
        *effects = now;
        let detail = responses.first().map(|r| describe(r)).unwrap_or_default();
        self.rows.push([
            scenario.to_owned(),
            status,
            replayed,
            format!(
                "+{added}{}",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!("  {detail}")
                }
            ),
        ]);
        Ok(())
    }

    fn print(&self) {
        let header = ["scenario", "HTTP", "replayed", "side effects"];
        let widths: Vec<usize> = (0..3)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([header[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: [&str; 4]| {
            println!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {}",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
        };
        line(header);
        line([
            "-".repeat(widths[0]).as_str(),
            &"-".repeat(widths[1]),
            &"-".repeat(widths[2]),
            "------------",
        ]);
        for r in &self.rows {
            line([&r[0], &r[1], &r[2], &r[3]]);
        }
    }
}

/// A short note from the response: the problem title, or the id created.
fn describe(response: &Response<Body>) -> String {
    let Body::Text(text) = response.body() else {
        return String::new();
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return String::new();
    };
    if let Some(title) = value.get("title").and_then(|t| t.as_str()) {
        let retry = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(|s| format!(" (Retry-After: {s}s)"))
            .unwrap_or_default();
        return format!("({title}{retry})");
    }
    ["orderId", "paymentAttemptId", "refundId", "reservationId"]
        .iter()
        .rev()
        .find_map(|k| {
            value
                .get(*k)
                .and_then(|v| v.as_str())
                .map(|v| format!("({k} {v})"))
        })
        .unwrap_or_default()
}

/// The Redis store for this run: its own key prefix, the demo's clock.
#[cfg(feature = "redis")]
async fn demo_redis(url: &str, clock: &ManualClock) -> Result<Arc<dyn Store>, Error> {
    let store = lambda_idempotency::store::redis::RedisStore::connect(url)
        .await?
        .with_prefix(format!("demo-{}:", uuid::Uuid::new_v4().simple()))
        .with_clock(clock.clone());
    store.check().await?;
    Ok(Arc::new(store))
}

/// Without the `redis` feature: the same clear error as the function's.
#[cfg(not(feature = "redis"))]
async fn demo_redis(url: &str, _clock: &ManualClock) -> Result<Arc<dyn Store>, Error> {
    let (store, _check) = orders_api::store::redis(url).await?;
    Ok(store)
}
