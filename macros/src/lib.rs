//! The `#[idempotent]` attribute of [lambda-idempotency]. Use it as
//! `lambda_idempotency::idempotent`; this crate is not meant to be a direct
//! dependency.
//!
//! [lambda-idempotency]: https://docs.rs/lambda-idempotency

mod attr;
mod expand;

use proc_macro::TokenStream;
use quote::ToTokens;
use syn::ItemFn;

/// Makes an `async fn` idempotent: a Lambda handler (a retried or duplicated event or
/// request runs the handler once, and the retry gets the stored result), or any
/// plain async function (one step inside a handler), keyed by its arguments.
///
/// The attribute goes on the handler, never on `main`; `main` runs the handler as
/// usual (`lambda_runtime::run(service_fn(handler))` or
/// `lambda_http::run(service_fn(handler))`). It expands into the library's public
/// layers, [`EventIdempotencyLayer`] or [`IdempotencyLayer`], built once per process
/// on first use: see [the expansion](#expansion) for code you could equally write
/// by hand.
///
/// # Handlers
///
/// The first argument decides what the attribute builds:
///
/// | signature | layer | the function becomes |
/// |---|---|---|
/// | `async fn f(event: LambdaEvent<T>) -> Result<O, E>` | [`EventIdempotencyLayer`] | `async fn f(event: LambdaEvent<T>) -> Result<O, IdempotencyError<E>>` |
/// | `async fn f(request: Request) -> Result<R, E>` (`lambda_http`) | [`IdempotencyLayer`] | `async fn f(request: Request) -> Result<Response<Body>, E>` |
/// | `async fn f(a: A, b: B, ...) -> Result<O, E>` (any other arguments) | [`IdempotentFunction`] | `async fn f(a: A, b: B, ...) -> Result<O, IdempotencyError<E>>` |
///
/// The first argument's type is recognised by its last path segment
/// (`LambdaEvent`, `Request`); a handler takes exactly that one argument. Any other
/// first argument makes a plain function: its arguments (each `Serialize`, each
/// with a plain name) are its input, as a JSON object by argument name
/// (`{"order": {...}, "warehouse": "north"}`), and its output (`Serialize +
/// DeserializeOwned`) is stored and replayed. Its records are scoped by its name,
/// so the same key in the handler around it is another record; called from an
/// idempotent handler it inherits the invocation's deadline. Methods, generic
/// functions and a return type other than `Result<_, _>` are compile errors.
///
/// Nothing panics at run time. If the layer cannot be set up (the store or a
/// setting from the environment), the invocation fails without running the
/// handler, and the next invocation tries again: an event handler returns
/// [`IdempotencyError::Setup`]; an HTTP handler returns the error converted with
/// `From` into `E` (which `lambda_http::Error` supports).
///
/// # Arguments
///
/// All optional except `key` on an event handler. Each may be given once; unknown
/// or repeated arguments, bad pointers and bad expiries are compile errors.
///
/// | argument | handlers | meaning | default |
/// |---|---|---|---|
/// | `key = "/orderId"`, `key = ["/a", "/b"]` | event, function (required) | JSON pointers (RFC 6901) into the payload (or the arguments' object) whose values form the key ([`key_pointers`]); each empty or starting with `/`, optionally with `\|json` / `\|base64` steps into a string ([`Selector`]), e.g. `/body\|json/orderId` | — |
/// | `payload = ["/amount", ...]` | event, function | the parts of the payload that tell a retry from a different event ([`payload_pointers`]) | the whole payload |
/// | `expiry = "24h"` | all | how long a key is remembered: a whole number with `s`, `m`, `h` or `d`, or bare seconds, between `5m` and `72h`, checked at compile time; it wins over `IDEMPOTENCY_EXPIRY` | `IDEMPOTENCY_EXPIRY`, else 24 h |
/// | `store = "env"` | all | [`DynamoDbStore::from_env`]: the table named by `IDEMPOTENCY_TABLE`, checked once per process | yes |
/// | `store = "memory"` | all | a [`MemoryStore`] made once per process for this handler: for tests and demos, never shared between Lambda instances | |
/// | `store = path::to::make_store` | all | your `async fn() -> Result<impl Store, lambda_idempotency::Error>`, called once per process | |
/// | `name = "payments"` | event, function | the scope records are kept under ([`name`]); two handlers or functions sharing a table and a key space need different names | the function's name |
///
/// HTTP handlers take their key from the `Idempotency-Key` header and compare
/// requests by method, path, query and body, so `key`, `payload` and `name` are
/// errors there. The settings not covered by arguments come from the
/// environment ([`IdempotencyConfigBuilder::with_env`], e.g.
/// `IDEMPOTENCY_MAX_LEASE`) or are the builders' defaults. The `expiry` never
/// shortens a lease: the lease covers the invocation up to its deadline, and a record
/// lives at least as long as its lease. For anything else (a clock, an actor, a response
/// policy, several routes on one layer), use the layers directly.
///
/// # Example
///
/// An SQS-style consumer, and an HTTP endpoint, each in its own function:
///
/// ```no_run
/// use lambda_idempotency::idempotent;
/// use lambda_runtime::{Error, LambdaEvent, service_fn};
/// use serde_json::{Value, json};
///
/// #[idempotent(key = "/paymentId", payload = ["/amount", "/currency"], expiry = "6h")]
/// async fn charge(event: LambdaEvent<Value>) -> Result<Value, Error> {
///     // Runs once per paymentId, however often the event is delivered.
///     Ok(json!({ "charged": event.payload["amount"] }))
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Error> {
///     lambda_runtime::run(service_fn(charge)).await
/// }
/// ```
///
/// ```no_run
/// use lambda_http::{Body, Error, Request, Response, service_fn};
/// use lambda_idempotency::idempotent;
///
/// #[idempotent(expiry = "24h")]
/// async fn create_order(request: Request) -> Result<Response<Body>, Error> {
///     Ok(Response::builder().status(201).body(Body::from("{\"orderId\":\"o-1\"}"))?)
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Error> {
///     lambda_http::run(service_fn(create_order)).await
/// }
/// ```
///
/// A plain async function, one step inside a handler, keyed by a field of its
/// argument:
///
/// ```
/// use lambda_idempotency::idempotent;
/// use serde::Serialize;
///
/// #[derive(Serialize)]
/// struct Order { id: String, quantity: u32 }
///
/// #[idempotent(key = "/order/id", store = "memory")]
/// async fn reserve_stock(order: &Order) -> Result<String, std::io::Error> {
///     // Runs once per order id; a repeat gets this result back.
///     Ok(format!("reserved {} of {}", order.quantity, order.id))
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let order = Order { id: "o-1".into(), quantity: 2 };
/// let first = reserve_stock(&order).await?;
/// assert_eq!(reserve_stock(&order).await?, first);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Handlers are plain functions, so tests call them directly. With the in-memory
/// store:
///
/// ```
/// use lambda_idempotency::event::IdempotencyError;
/// use lambda_idempotency::idempotent;
/// use lambda_runtime::{Context, Error, LambdaEvent};
/// use serde_json::{Value, json};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static RUNS: AtomicUsize = AtomicUsize::new(0);
///
/// #[idempotent(key = "/paymentId", store = "memory")]
/// async fn charge(event: LambdaEvent<Value>) -> Result<Value, Error> {
///     RUNS.fetch_add(1, Ordering::SeqCst);
///     Ok(json!({ "charged": event.payload["amount"] }))
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let event = |amount| LambdaEvent::new(json!({"paymentId": "p-1", "amount": amount}), Context::default());
/// let first = charge(event(100)).await?;
/// let again = charge(event(100)).await?; // the stored output; charge's body did not run
/// assert_eq!(first, again);
/// assert_eq!(RUNS.load(Ordering::SeqCst), 1);
///
/// let reused = charge(event(999)).await; // same key, different payload
/// assert!(matches!(reused, Err(IdempotencyError::KeyMismatch { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Expansion
///
/// ```text
/// #[idempotent(key = "/paymentId", expiry = "6h", store = "memory")]
/// async fn charge(event: LambdaEvent<Value>) -> Result<Value, Error> {
///     Ok(json!({ "charged": event.payload["amount"] }))
/// }
/// ```
///
/// becomes (paths shortened: `__private` re-exports `OnceCell`, `Layer`,
/// `ServiceExt`, `lambda_runtime` and `lambda_http`, so the function needs no
/// extra dependencies)
///
/// ```text
/// async fn charge(event: LambdaEvent<Value>) -> Result<Value, IdempotencyError<Error>> {
///     async fn __idempotent_inner(event: LambdaEvent<Value>) -> Result<Value, Error> {
///         Ok(json!({ "charged": event.payload["amount"] }))
///     }
///
///     async fn __idempotent_setup() -> Result<EventIdempotencyLayer, lambda_idempotency::Error> {
///         Ok(EventIdempotencyLayer::builder(MemoryStore::new())
///             .key_pointers(["/paymentId"])
///             .name("charge")
///             .config(
///                 IdempotencyConfig::builder()
///                     .with_env()?
///                     .expiry(Duration::from_secs(21600u64))
///                     .build()?,
///             )
///             .build()?)
///     }
///
///     static __IDEMPOTENCY_LAYER: OnceCell<EventIdempotencyLayer> = OnceCell::const_new();
///     let __idempotent_layer = __IDEMPOTENCY_LAYER
///         .get_or_try_init(__idempotent_setup)
///         .await
///         .map_err(IdempotencyError::Setup)?;
///     let __idempotent_service = Layer::layer(__idempotent_layer, service_fn(__idempotent_inner));
///     ServiceExt::oneshot(__idempotent_service, event).await
/// }
/// ```
///
/// An HTTP handler expands the same way around
/// `IdempotencyLayer::builder(store).config(config).build()?`, returns
/// `Result<Response<Body>, E>`, and converts a setup error into `E` with `?`.
/// `store = "env"` (the default) is `DynamoDbStore::from_env().await?` followed by
/// `store.check_table().await?` (the table exists, and a global table keeps the
/// protocol's guarantees; it needs `dynamodb:DescribeTable`), and `store = path` is
/// `path().await?`.
///
/// [`EventIdempotencyLayer`]: https://docs.rs/lambda-idempotency/latest/lambda_idempotency/event/struct.EventIdempotencyLayer.html
/// [`IdempotencyLayer`]: https://docs.rs/lambda-idempotency/latest/lambda_idempotency/http/struct.IdempotencyLayer.html
/// [`IdempotentFunction`]: https://docs.rs/lambda-idempotency/latest/lambda_idempotency/function/struct.IdempotentFunction.html
/// [`Selector`]: https://docs.rs/lambda-idempotency/latest/lambda_idempotency/event/struct.Selector.html
/// [`IdempotencyError::Setup`]: https://docs.rs/lambda-idempotency/latest/lambda_idempotency/event/enum.IdempotencyError.html#variant.Setup
/// [`key_pointers`]: https://docs.rs/lambda-idempotency/latest/lambda_idempotency/event/struct.EventIdempotencyLayerBuilder.html#method.key_pointers
/// [`payload_pointers`]: https://docs.rs/lambda-idempotency/latest/lambda_idempotency/event/struct.EventIdempotencyLayerBuilder.html#method.payload_pointers
/// [`name`]: https://docs.rs/lambda-idempotency/latest/lambda_idempotency/event/struct.EventIdempotencyLayerBuilder.html#method.name
/// [`DynamoDbStore::from_env`]: https://docs.rs/lambda-idempotency/latest/lambda_idempotency/store/dynamodb/struct.DynamoDbStore.html#method.from_env
/// [`MemoryStore`]: https://docs.rs/lambda-idempotency/latest/lambda_idempotency/store/struct.MemoryStore.html
/// [`IdempotencyConfigBuilder::with_env`]: https://docs.rs/lambda-idempotency/latest/lambda_idempotency/config/struct.IdempotencyConfigBuilder.html#method.with_env
#[proc_macro_attribute]
pub fn idempotent(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed_item = match syn::parse::<ItemFn>(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            let e = syn::Error::new(
                proc_macro2::Span::call_site(),
                "`#[idempotent]` goes on an `async fn` handler",
            );
            let mut out = e.to_compile_error();
            out.extend(proc_macro2::TokenStream::from(item));
            return out.into();
        }
    };
    let expanded =
        syn::parse::<attr::Args>(args).and_then(|args| expand::expand(args, parsed_item.clone()));
    match expanded {
        Ok(tokens) => tokens.into(),
        // Keep the function as written, so the only errors are the attribute's.
        Err(e) => {
            let mut out = e.to_compile_error();
            parsed_item.to_tokens(&mut out);
            out.into()
        }
    }
}
