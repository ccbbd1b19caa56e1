//! Code generation: the handler's signature decides the kind of layer, and the
//! expansion builds that layer through the library's public builders.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Error, FnArg, GenericArgument, Ident, ItemFn, LitStr, Pat, PathArguments, ReturnType, Type,
};

use crate::attr::{Args, StoreArg};

/// The signatures the attribute accepts, for error messages.
const EXPECTED: &str = "expected `async fn handler(event: LambdaEvent<T>) -> Result<O, E>`, \
                        `async fn handler(request: Request) -> Result<R, E>` \
                        or `async fn step(arg: A, ...) -> Result<O, E>`";

/// Which layer the handler gets, from its argument's type.
enum Kind {
    /// `LambdaEvent<T>`: `EventIdempotencyLayer`.
    Event,
    /// `lambda_http::Request`: `IdempotencyLayer`.
    Http,
    /// Anything else: a plain async function, `IdempotentFunction` over its
    /// arguments.
    Function,
}

/// What the expansion needs from the signature.
struct Handler<'a> {
    kind: Kind,
    arg_pat: &'a Pat,
    arg_ty: &'a Type,
    ok_ty: &'a Type,
    err_ty: &'a Type,
    /// A plain function's arguments, by name.
    args: Vec<(&'a Ident, &'a Type)>,
}

/// Expands `#[idempotent(args)] item`, or returns every error found.
pub(crate) fn expand(args: Args, item: ItemFn) -> Result<TokenStream, Error> {
    let handler = check_signature(&item)?;
    check_args(&args, &handler)?;
    if let Kind::Function = handler.kind {
        return Ok(expand_function(&args, &item, &handler));
    }

    let attrs = &item.attrs;
    let vis = &item.vis;
    let ident = &item.sig.ident;
    let fn_token = &item.sig.fn_token;
    let span = item.sig.span();

    // The outer function passes its argument on by name: the user's identifier when
    // the pattern is a plain one, else a fresh one (a destructuring pattern stays on
    // the inner function, where the body needs it).
    let arg = match handler.arg_pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
        _ => Ident::new("__idempotent_arg", Span::call_site()),
    };
    let arg_ty = handler.arg_ty;
    let ok_ty = handler.ok_ty;
    let err_ty = handler.err_ty;

    let mut inner = item.clone();
    inner.attrs.clear();
    inner.vis = syn::Visibility::Inherited;
    inner.sig.ident = format_ident!("__idempotent_inner", span = ident.span());

    let store = store_expr(&args);
    let config = config_expr(&args);
    let p = quote!(::lambda_idempotency::__private);

    let (outer_ret, setup, layer_ty, map_setup, service_fn) = match handler.kind {
        Kind::Event => {
            let (keys, payload, name) = payload_settings(&args, ident);
            (
                quote_spanned!(err_ty.span()=>
                    ::core::result::Result<#ok_ty, ::lambda_idempotency::event::IdempotencyError<#err_ty>>
                ),
                quote_spanned!(span=>
                    ::lambda_idempotency::event::EventIdempotencyLayer::builder(#store)
                        .key_pointers([#(#keys),*])
                        #payload
                        .name(#name)
                        .config(#config)
                        .build()?
                ),
                quote!(::lambda_idempotency::event::EventIdempotencyLayer),
                quote_spanned!(span=> .map_err(::lambda_idempotency::event::IdempotencyError::Setup)?),
                quote!(#p::lambda_runtime::service_fn),
            )
        }
        Kind::Function => unreachable!("expanded by expand_function"),
        Kind::Http => (
            quote_spanned!(err_ty.span()=>
                ::core::result::Result<#p::lambda_http::Response<#p::lambda_http::Body>, #err_ty>
            ),
            quote_spanned!(span=>
                ::lambda_idempotency::http::IdempotencyLayer::builder(#store)
                    .config(#config)
                    .build()?
            ),
            quote!(::lambda_idempotency::http::IdempotencyLayer),
            // `?` converts with `From`; spanned on `E`, so a missing
            // `From<lambda_idempotency::Error>` points at the error type.
            quote_spanned!(err_ty.span()=> ?),
            quote!(#p::lambda_http::service_fn),
        ),
    };

    Ok(quote_spanned! {span=>
        #(#attrs)*
        #vis async #fn_token #ident(#arg: #arg_ty) -> #outer_ret {
            #inner

            async #fn_token __idempotent_setup()
                -> ::core::result::Result<#layer_ty, ::lambda_idempotency::Error>
            {
                ::core::result::Result::Ok(#setup)
            }

            static __IDEMPOTENCY_LAYER: #p::OnceCell<#layer_ty> = #p::OnceCell::const_new();
            let __idempotent_layer = __IDEMPOTENCY_LAYER
                .get_or_try_init(__idempotent_setup)
                .await
                #map_setup;
            let __idempotent_service =
                #p::Layer::layer(__idempotent_layer, #service_fn(__idempotent_inner));
            #p::ServiceExt::oneshot(__idempotent_service, #arg).await
        }
    })
}

/// `#[idempotent]` on a plain async function: its arguments, as a JSON object by
/// name, are the input of an `IdempotentFunction` named after it (or `name`).
fn expand_function(args: &Args, item: &ItemFn, handler: &Handler<'_>) -> TokenStream {
    let attrs = &item.attrs;
    let vis = &item.vis;
    let ident = &item.sig.ident;
    let fn_token = &item.sig.fn_token;
    let span = item.sig.span();
    let (ok_ty, err_ty) = (handler.ok_ty, handler.err_ty);
    let names: Vec<&Ident> = handler.args.iter().map(|(name, _)| *name).collect();
    let types = handler.args.iter().map(|(_, ty)| *ty);
    let keys: Vec<String> = names.iter().map(|n| n.to_string()).collect();

    let mut inner = item.clone();
    inner.attrs.clear();
    inner.vis = syn::Visibility::Inherited;
    inner.sig.ident = format_ident!("__idempotent_inner", span = ident.span());

    let store = store_expr(args);
    let config = config_expr(args);
    let p = quote!(::lambda_idempotency::__private);
    let (pointers, payload, name) = payload_settings(args, ident);
    let error = quote!(::lambda_idempotency::event::IdempotencyError);
    quote_spanned! {span=>
        #(#attrs)*
        #vis async #fn_token #ident(#(#names: #types),*)
            -> ::core::result::Result<#ok_ty, #error<#err_ty>>
        {
            #inner

            async #fn_token __idempotent_setup() -> ::core::result::Result<
                ::lambda_idempotency::function::IdempotentFunction,
                ::lambda_idempotency::Error,
            > {
                ::core::result::Result::Ok(
                    ::lambda_idempotency::function::IdempotentFunction::builder(#name, #store)
                        .key_pointers([#(#pointers),*])
                        #payload
                        .config(#config)
                        .build()?,
                )
            }

            static __IDEMPOTENT_FUNCTION: #p::OnceCell<::lambda_idempotency::function::IdempotentFunction> =
                #p::OnceCell::const_new();
            let __idempotent_function = __IDEMPOTENT_FUNCTION
                .get_or_try_init(__idempotent_setup)
                .await
                .map_err(#error::Setup)?;
            let mut __idempotent_input = #p::serde_json::Map::new();
            #(
                __idempotent_input.insert(
                    ::std::string::String::from(#keys),
                    #p::serde_json::to_value(&#names)
                        .map_err(|e| #error::InvalidPayload(e.to_string()))?,
                );
            )*
            let __idempotent_input = #p::serde_json::Value::Object(__idempotent_input);
            __idempotent_function
                .call(&__idempotent_input, || __idempotent_inner(#(#names),*))
                .await
        }
    }
}

/// The key selectors, the `.payload_pointers(..)` call (if any) and the scope name,
/// for an event handler or a plain function.
fn payload_settings<'a>(
    args: &'a Args,
    ident: &Ident,
) -> (Vec<&'a LitStr>, Option<TokenStream>, LitStr) {
    let keys = args.key.iter().flat_map(|k| &k.value).collect();
    let payload = args.payload.as_ref().map(|p| {
        let pointers = &p.value;
        quote_spanned!(p.name.span()=> .payload_pointers([#(#pointers),*]))
    });
    let name = match &args.name {
        Some(n) => n.value.clone(),
        None => LitStr::new(&ident.to_string(), ident.span()),
    };
    (keys, payload, name)
}

/// The store, built once in the setup function. The DynamoDB store from the
/// environment is checked there too (the table exists; a global table keeps the
/// protocol's guarantees), so a misconfiguration fails the first invocation clearly.
fn store_expr(args: &Args) -> TokenStream {
    // Defined by the library, so it can say when its `dynamodb` feature is off.
    let from_env = |span: proc_macro2::Span| quote_spanned!(span=> ::lambda_idempotency::__idempotent_env_store!());
    match &args.store {
        None => from_env(proc_macro2::Span::call_site()),
        Some(StoreArg::Env(span)) => from_env(*span),
        Some(StoreArg::Memory(span)) => quote_spanned!(*span=>
            ::lambda_idempotency::store::MemoryStore::new()
        ),
        Some(StoreArg::Path(path)) => quote_spanned!(path.span()=> #path().await?),
    }
}

/// The configuration: the environment (`IDEMPOTENCY_EXPIRY`,
/// `IDEMPOTENCY_MAX_LEASE`, `IDEMPOTENCY_LEASE_MARGIN`), then the attribute's
/// `expiry`, which wins. The expiry never shortens the lease: the lease follows the
/// invocation's deadline and the record lives at least as long as its lease.
fn config_expr(args: &Args) -> TokenStream {
    let builder = quote!(::lambda_idempotency::config::IdempotencyConfig::builder());
    match &args.expiry {
        None => quote!(#builder.with_env()?.build()?),
        Some(expiry) => {
            let secs = expiry.secs;
            let duration =
                quote_spanned!(expiry.lit.span()=> ::core::time::Duration::from_secs(#secs));
            quote_spanned!(expiry.lit.span()=>
                #builder.with_env()?.expiry(#duration).build()?
            )
        }
    }
}

/// Checks the signature and finds the handler's kind; every problem is reported.
fn check_signature(item: &ItemFn) -> Result<Handler<'_>, Error> {
    let sig = &item.sig;
    let mut errors = Errors::default();

    if sig.ident == "main" {
        errors.push(Error::new(
            sig.ident.span(),
            "`#[idempotent]` does not go on `main`: put it on the handler and pass the handler \
             to `lambda_runtime::run(service_fn(handler))` or `lambda_http::run(service_fn(handler))`",
        ));
    }
    if sig.asyncness.is_none() {
        errors.push(Error::new(
            sig.fn_token.span,
            format!("`#[idempotent]` needs an `async fn`; {EXPECTED}"),
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(Error::new(
            constness.span,
            "`#[idempotent]` handlers cannot be `const`",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(Error::new(
            unsafety.span,
            "`#[idempotent]` handlers cannot be `unsafe`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(Error::new(
            abi.span(),
            "`#[idempotent]` handlers cannot be `extern`",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(Error::new(
            variadic.span(),
            "`#[idempotent]` handlers cannot be variadic",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(Error::new(
            sig.generics.span(),
            "`#[idempotent]` handlers cannot be generic: the layer is built once per function",
        ));
    }

    let mut arg_ty = None;
    let mut inputs = sig.inputs.iter();
    let first = inputs.next();
    match first {
        None => errors.push(Error::new(
            sig.paren_token.span.join(),
            format!("the handler takes no argument; {EXPECTED}"),
        )),
        Some(FnArg::Receiver(receiver)) => errors.push(Error::new(
            receiver.span(),
            format!("`#[idempotent]` goes on a free function, not a method; {EXPECTED}"),
        )),
        Some(FnArg::Typed(arg)) => {
            let kind = kind_of(&arg.ty).unwrap_or(Kind::Function);
            arg_ty = Some((kind, &*arg.pat, &*arg.ty));
        }
    }
    let mut named = Vec::new();
    match arg_ty {
        // A plain function's arguments are its input, each by name.
        Some((Kind::Function, _, _)) => {
            for arg in &sig.inputs {
                match arg {
                    FnArg::Typed(typed) => match &*typed.pat {
                        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                            named.push((&p.ident, &*typed.ty));
                        }
                        other => errors.push(Error::new(
                            other.span(),
                            "the arguments of an idempotent function need plain names: they \
                             are its input, as a JSON object by name",
                        )),
                    },
                    FnArg::Receiver(receiver) => errors.push(Error::new(
                        receiver.span(),
                        format!(
                            "`#[idempotent]` goes on a free function, not a method; {EXPECTED}"
                        ),
                    )),
                }
            }
        }
        // A method's `self` is reported above; its other arguments are not the problem.
        _ if matches!(first, Some(FnArg::Receiver(_))) => {}
        _ => {
            for extra in inputs {
                errors.push(Error::new(
                    extra.span(),
                    "a Lambda handler takes exactly one argument, its `LambdaEvent<T>` or \
                     `Request`",
                ));
            }
        }
    }

    let result = match &sig.output {
        ReturnType::Type(_, ty) => result_args(ty),
        ReturnType::Default => None,
    };
    if result.is_none() {
        let span = match &sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => sig.paren_token.span.close(),
        };
        errors.push(Error::new(
            span,
            format!("the handler must return `Result<_, _>`; {EXPECTED}"),
        ));
    }

    errors.finish()?;
    match (arg_ty, result) {
        (Some((kind, arg_pat, arg_ty)), Some((ok_ty, err_ty))) => Ok(Handler {
            kind,
            arg_pat,
            arg_ty,
            ok_ty,
            err_ty,
            args: named,
        }),
        // Every `None` above pushed an error.
        _ => Err(Error::new(sig.span(), EXPECTED)),
    }
}

/// Arguments that only fit one kind of handler.
fn check_args(args: &Args, handler: &Handler<'_>) -> Result<(), Error> {
    let mut errors = Errors::default();
    match handler.kind {
        Kind::Function => {
            if args.key.is_none() {
                errors.push(Error::new(
                    Span::call_site(),
                    "idempotent functions need `key`: the JSON pointer(s) of the idempotency key \
                     in the arguments, an object by argument name, e.g. \
                     `#[idempotent(key = \"/order/id\")]` for an argument `order`",
                ));
            }
            // The input is an object by argument name: a selector that does not start
            // with one can never match (a handler whose argument type was not
            // recognised, with a key meant for its payload, ends here).
            let names: Vec<String> = handler.args.iter().map(|(n, _)| n.to_string()).collect();
            let selectors = args.key.iter().chain(&args.payload).flat_map(|p| &p.value);
            for selector in selectors {
                let text = selector.value();
                let first = text.split('|').next().unwrap_or_default();
                let Some(token) = first
                    .strip_prefix('/')
                    .map(|rest| rest.split('/').next().unwrap_or_default())
                else {
                    continue; // the whole input
                };
                let token = token
                    .replace("~2", "|")
                    .replace("~1", "/")
                    .replace("~0", "~");
                if !names.contains(&token) {
                    errors.push(Error::new(
                        selector.span(),
                        format!(
                            "{text:?} does not start with an argument: this is a plain function, \
                             whose input is its arguments by name ({}), e.g. \"/{}/...\"; \
                             a Lambda handler takes a `LambdaEvent<T>` or a `Request`",
                            names
                                .iter()
                                .map(|n| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            names.first().map_or("arg", String::as_str),
                        ),
                    ));
                }
            }
        }
        Kind::Event => {
            if args.key.is_none() {
                errors.push(Error::new(
                    Span::call_site(),
                    "event handlers need `key`: the JSON pointer(s) of the idempotency key in the \
                     payload, e.g. `#[idempotent(key = \"/orderId\")]`",
                ));
            }
        }
        Kind::Http => {
            if let Some(key) = &args.key {
                errors.push(Error::new(
                    key.name.span(),
                    "`key` is for event handlers: HTTP keys come from the Idempotency-Key header",
                ));
            }
            if let Some(payload) = &args.payload {
                errors.push(Error::new(
                    payload.name.span(),
                    "`payload` is for event handlers: an HTTP request is compared by method, \
                     path, query and body",
                ));
            }
            if let Some(name) = &args.name {
                errors.push(Error::new(
                    name.name.span(),
                    "`name` is for event handlers: HTTP records are scoped by route",
                ));
            }
        }
    }
    errors.finish()
}

/// `LambdaEvent<..>` or `Request`, by the type path's last segment.
fn kind_of(ty: &Type) -> Option<Kind> {
    match ty {
        Type::Group(group) => kind_of(&group.elem),
        Type::Paren(paren) => kind_of(&paren.elem),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            if last.ident == "LambdaEvent" {
                Some(Kind::Event)
            } else if last.ident == "Request" {
                Some(Kind::Http)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// `O` and `E` of `Result<O, E>`.
fn result_args(ty: &Type) -> Option<(&Type, &Type)> {
    match ty {
        Type::Group(group) => result_args(&group.elem),
        Type::Paren(paren) => result_args(&paren.elem),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            if last.ident != "Result" {
                return None;
            }
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            let mut types = args.args.iter().filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            });
            match (types.next(), types.next(), types.next()) {
                (Some(ok), Some(err), None) if args.args.len() == 2 => Some((ok, err)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Several errors reported together.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> Result<(), Error> {
        self.0.map_or(Ok(()), Err)
    }
}
