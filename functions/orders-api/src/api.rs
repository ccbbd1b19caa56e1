//! The four write endpoints (and one read), routed by path.

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Error, Request, Response};
use lambda_idempotency::CurrentRequest;
use lambda_idempotency::clock::{Clock, SharedClock, SystemClock};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::gateway::PaymentGateway;
use crate::repo::{
    LineItem, Order, OrdersRepo, PaymentAttempt, Refund, RefundOutcome, Reservation, ReserveOutcome,
};

/// The largest quantity or amount accepted, to keep totals far from overflow.
const MAX_QUANTITY: u32 = 10_000;
const MAX_AMOUNT_CENTS: u64 = 100_000_000_000;

/// The API's routes, for the idempotency layer's
/// [`route_templates`](lambda_idempotency::http::IdempotencyLayerBuilder::route_templates):
/// behind a Function URL, an ALB or an HTTP API `$default` route the event carries
/// only the path, and these keep one record per key and bounded metric labels.
pub const ROUTE_TEMPLATES: [&str; 5] = [
    "POST /orders",
    "GET /orders/{orderId}",
    "POST /orders/{orderId}/payment-attempts",
    "POST /orders/{orderId}/refunds",
    "POST /inventory/reservations",
];

/// The orders API: a repository for side effects and a payment gateway.
#[derive(Debug, Clone)]
pub struct OrdersApi {
    repo: Arc<dyn OrdersRepo>,
    gateway: Arc<dyn PaymentGateway>,
    clock: SharedClock,
}

impl OrdersApi {
    /// An API over `repo` and `gateway`.
    pub fn new(repo: Arc<dyn OrdersRepo>, gateway: Arc<dyn PaymentGateway>) -> Self {
        Self {
            repo,
            gateway,
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The repository.
    pub fn repo(&self) -> &Arc<dyn OrdersRepo> {
        &self.repo
    }

    /// Handles one request. Failures of the repository or gateway are 503 problem
    /// responses (retryable), validation failures 4xx problems (final).
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, Error> {
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let method = request.method().clone();
        let result = match (&method, segments.as_slice()) {
            (&Method::POST, ["orders"]) => self.create_order(&request).await,
            (&Method::GET, ["orders", id]) => self.get_order(id).await,
            (&Method::POST, ["orders", id, "payment-attempts"]) => {
                self.create_payment_attempt(id, &request).await
            }
            (&Method::POST, ["orders", id, "refunds"]) => self.create_refund(id, &request).await,
            (&Method::POST, ["inventory", "reservations"]) => {
                self.create_reservation(&request).await
            }
            _ => Err(problem(
                StatusCode::NOT_FOUND,
                "Not found",
                &format!("No route for {method} {path}"),
            )),
        };
        Ok(result.unwrap_or_else(Problem::into_response))
    }

    async fn create_order(&self, request: &Request) -> Reply {
        let input: CreateOrder = parse(request)?;
        if input.customer_id.trim().is_empty() {
            return Err(invalid("customerId is required"));
        }
        check_currency(&input.currency)?;
        if input.items.is_empty() {
            return Err(invalid("items must not be empty"));
        }
        let mut total: u64 = 0;
        for (i, item) in input.items.iter().enumerate() {
            if item.sku.trim().is_empty() {
                return Err(invalid(&format!("items[{i}].sku is required")));
            }
            if item.quantity == 0 || item.quantity > MAX_QUANTITY {
                return Err(invalid(&format!(
                    "items[{i}].quantity must be 1 to {MAX_QUANTITY}"
                )));
            }
            if item.unit_price_cents > MAX_AMOUNT_CENTS {
                return Err(invalid(&format!("items[{i}].unitPriceCents is too large")));
            }
            total += u64::from(item.quantity) * item.unit_price_cents;
        }
        let order = Order {
            order_id: new_id("ord"),
            customer_id: input.customer_id,
            items: input.items,
            currency: input.currency,
            total_cents: total,
            refunded_cents: 0,
            created_at_ms: self.clock.now_millis(),
        };
        self.repo.create_order(&order).await.map_err(unavailable)?;
        let mut response = json_response(
            StatusCode::CREATED,
            &json!({
                "orderId": order.order_id,
                "status": "CREATED",
                "customerId": order.customer_id,
                "totalCents": order.total_cents,
                "currency": order.currency,
            }),
        );
        if let Ok(location) = format!("/orders/{}", order.order_id).parse() {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    }

    async fn get_order(&self, order_id: &str) -> Reply {
        match self.repo.get_order(order_id).await.map_err(unavailable)? {
            Some(order) => Ok(json_response(StatusCode::OK, &json!(order))),
            None => Err(unknown_order(order_id)),
        }
    }

    async fn create_payment_attempt(&self, order_id: &str, request: &Request) -> Reply {
        let input: CreatePaymentAttempt = parse(request)?;
        if input.amount_cents == 0 || input.amount_cents > MAX_AMOUNT_CENTS {
            return Err(invalid("amountCents must be positive"));
        }
        check_currency(&input.currency)?;
        if input.payment_method.trim().is_empty() {
            return Err(invalid("paymentMethod is required"));
        }
        let order = self
            .repo
            .get_order(order_id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| unknown_order(order_id))?;
        if order.currency != input.currency {
            return Err(invalid(&format!("the order is in {}", order.currency)));
        }
        // The gateway sees one key per request, the same on every retry: a retry after
        // a crash or a failed commit gets the first authorisation back, not a second
        // charge. Outside an idempotency layer every call is its own attempt.
        let gateway_key = CurrentRequest::get().map_or_else(
            || new_id("attempt"),
            |current| current.downstream_key("payment-gateway"),
        );
        let authorization = self
            .gateway
            .authorize(
                &gateway_key,
                input.amount_cents,
                &input.currency,
                &input.payment_method,
            )
            .await
            .map_err(|e| {
                problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Payment gateway unavailable",
                    &e.to_string(),
                )
            })?;
        let attempt = PaymentAttempt {
            payment_attempt_id: new_id("pay"),
            order_id: order.order_id,
            amount_cents: input.amount_cents,
            currency: input.currency,
            payment_method: input.payment_method,
            status: if authorization.approved {
                "AUTHORIZED"
            } else {
                "DECLINED"
            }
            .to_owned(),
            gateway_reference: authorization.reference,
        };
        self.repo
            .add_payment_attempt(&attempt)
            .await
            .map_err(unavailable)?;
        let status = if authorization.approved {
            StatusCode::CREATED
        } else {
            StatusCode::PAYMENT_REQUIRED
        };
        Ok(json_response(status, &json!(attempt)))
    }

    async fn create_refund(&self, order_id: &str, request: &Request) -> Reply {
        let input: CreateRefund = parse(request)?;
        if input.amount_cents == 0 || input.amount_cents > MAX_AMOUNT_CENTS {
            return Err(invalid("amountCents must be positive"));
        }
        let refund = Refund {
            refund_id: new_id("ref"),
            order_id: order_id.to_owned(),
            amount_cents: input.amount_cents,
            reason: input.reason.unwrap_or_default(),
        };
        match self.repo.add_refund(&refund).await.map_err(unavailable)? {
            RefundOutcome::Recorded { refunded_cents } => Ok(json_response(
                StatusCode::CREATED,
                &json!({
                    "refundId": refund.refund_id,
                    "orderId": refund.order_id,
                    "amountCents": refund.amount_cents,
                    "refundedCents": refunded_cents,
                    "status": "PENDING",
                }),
            )),
            RefundOutcome::UnknownOrder => Err(unknown_order(order_id)),
            RefundOutcome::ExceedsTotal { refundable_cents } => Err(problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Refund exceeds the order total",
                &format!("At most {refundable_cents} cents can still be refunded"),
            )),
        }
    }

    async fn create_reservation(&self, request: &Request) -> Reply {
        let input: CreateReservation = parse(request)?;
        if input.sku.trim().is_empty() {
            return Err(invalid("sku is required"));
        }
        if input.quantity == 0 || input.quantity > MAX_QUANTITY {
            return Err(invalid(&format!("quantity must be 1 to {MAX_QUANTITY}")));
        }
        let reservation = Reservation {
            reservation_id: new_id("res"),
            sku: input.sku,
            quantity: input.quantity,
        };
        match self.repo.reserve(&reservation).await.map_err(unavailable)? {
            ReserveOutcome::Reserved { remaining } => Ok(json_response(
                StatusCode::CREATED,
                &json!({
                    "reservationId": reservation.reservation_id,
                    "sku": reservation.sku,
                    "quantity": reservation.quantity,
                    "remaining": remaining,
                }),
            )),
            ReserveOutcome::UnknownSku => Err(problem(
                StatusCode::NOT_FOUND,
                "Unknown SKU",
                &format!("No stock is kept for {:?}", reservation.sku),
            )),
            ReserveOutcome::Insufficient { available } => Err(problem(
                StatusCode::CONFLICT,
                "Insufficient stock",
                &format!("{} requested, {available} available", reservation.quantity),
            )),
        }
    }
}

type Reply = Result<Response<Body>, Problem>;

/// A problem+json answer, built where a handler gives up.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    title: &'static str,
    detail: String,
}

impl Problem {
    fn into_response(self) -> Response<Body> {
        let mut response = json_response(
            self.status,
            &json!({"type": "about:blank", "title": self.title, "status": self.status.as_u16(), "detail": self.detail}),
        );
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateOrder {
    customer_id: String,
    currency: String,
    items: Vec<LineItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatePaymentAttempt {
    amount_cents: u64,
    currency: String,
    payment_method: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRefund {
    amount_cents: u64,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateReservation {
    sku: String,
    quantity: u32,
}

fn parse<T: DeserializeOwned>(request: &Request) -> Result<T, Problem> {
    let bytes: &[u8] = match request.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.is_empty() {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "Missing body",
            "Send a JSON body",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let status = if e.is_data() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        problem(status, "Invalid request body", &e.to_string())
    })
}

fn check_currency(currency: &str) -> Result<(), Problem> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(invalid("currency must be an ISO 4217 code such as EUR"))
    }
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn invalid(detail: &str) -> Problem {
    problem(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request", detail)
}

fn unknown_order(order_id: &str) -> Problem {
    problem(
        StatusCode::NOT_FOUND,
        "Unknown order",
        &format!("No order {order_id:?}"),
    )
}

fn unavailable(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "dependency unavailable");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Retry with the same Idempotency-Key",
    )
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn problem(status: StatusCode, title: &'static str, detail: &str) -> Problem {
    Problem {
        status,
        title,
        detail: detail.to_owned(),
    }
}
