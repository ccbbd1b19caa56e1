//! Parsing `#[idempotent(...)]`'s arguments.
//!
//! Every argument is `name = value`, each at most once. Values are checked here, at
//! compile time, as far as they can be: JSON pointers must be empty or start with
//! `/`, and the expiry must parse and be within the library's bounds.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Ident, LitStr, Path, Result, Token, bracketed};

/// The argument names, in the order the docs list them.
const NAMES: &str = "`key`, `payload`, `expiry`, `store`, `name`";

/// Shortest expiry accepted, in seconds: `lambda_idempotency::config::MIN_EXPIRY`.
const MIN_EXPIRY_SECS: u64 = 5 * 60;
/// Longest expiry accepted, in seconds: `lambda_idempotency::config::MAX_EXPIRY`.
const MAX_EXPIRY_SECS: u64 = 72 * 60 * 60;

/// The parsed arguments.
#[derive(Default)]
pub(crate) struct Args {
    /// `key = "/ptr"` or `key = ["/a", "/b"]`.
    pub(crate) key: Option<Pointers>,
    /// `payload = ["/ptr", ...]`.
    pub(crate) payload: Option<Pointers>,
    /// `expiry = "1h"`.
    pub(crate) expiry: Option<Expiry>,
    /// `store = "env" | "memory" | path`.
    pub(crate) store: Option<StoreArg>,
    /// `name = "..."`.
    pub(crate) name: Option<Named<LitStr>>,
}

/// A value together with the argument name it was given under, for errors that
/// point at the argument as a whole.
pub(crate) struct Named<T> {
    pub(crate) name: Ident,
    pub(crate) value: T,
}

/// One or more JSON pointers, each checked.
pub(crate) type Pointers = Named<Vec<LitStr>>;

/// An expiry, parsed and within bounds.
pub(crate) struct Expiry {
    pub(crate) secs: u64,
    pub(crate) lit: LitStr,
}

/// Where records are kept.
pub(crate) enum StoreArg {
    /// `store = "env"`: `DynamoDbStore::from_env()` (also the default).
    Env(Span),
    /// `store = "memory"`: a `MemoryStore` kept for the life of the process.
    Memory(Span),
    /// `store = path`: a user `async fn() -> Result<impl Store, lambda_idempotency::Error>`.
    Path(Path),
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            // Any identifier, keywords included, so `type = ..` is "unknown argument".
            let name = input.call(Ident::parse_any)?;
            let known = ["key", "payload", "expiry", "store", "name"];
            if !known.contains(&name.to_string().as_str()) {
                return Err(Error::new(
                    name.span(),
                    format!("unknown argument `{name}`; expected one of {NAMES}"),
                ));
            }
            if !input.peek(Token![=]) {
                return Err(Error::new(name.span(), format!("expected `{name} = ...`")));
            }
            input.parse::<Token![=]>()?;
            match name.to_string().as_str() {
                "key" => {
                    let value = parse_pointers(input, &name)?;
                    set(&mut args.key, name, value)?;
                }
                "payload" => {
                    let value = parse_pointers(input, &name)?;
                    set(&mut args.payload, name, value)?;
                }
                "expiry" => {
                    let value = parse_expiry(input)?;
                    set_plain(&mut args.expiry, &name, value)?;
                }
                "store" => {
                    let value = parse_store(input)?;
                    set_plain(&mut args.store, &name, value)?;
                }
                _ => {
                    let value = parse_name(input)?;
                    set(&mut args.name, name, value)?;
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

fn duplicate(name: &Ident) -> Error {
    Error::new(
        name.span(),
        format!("duplicate argument `{name}`: give each argument once"),
    )
}

fn set<T>(slot: &mut Option<Named<T>>, name: Ident, value: T) -> Result<()> {
    if slot.is_some() {
        return Err(duplicate(&name));
    }
    *slot = Some(Named { name, value });
    Ok(())
}

fn set_plain<T>(slot: &mut Option<T>, name: &Ident, value: T) -> Result<()> {
    if slot.is_some() {
        return Err(duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

/// `"/ptr"` or `["/a", "/b"]`, at least one, each empty or starting with `/`.
fn parse_pointers(input: ParseStream<'_>, name: &Ident) -> Result<Vec<LitStr>> {
    let pointers = if input.peek(LitStr) {
        vec![input.parse::<LitStr>()?]
    } else if input.peek(syn::token::Bracket) {
        let content;
        let brackets = bracketed!(content in input);
        let list = content.parse_terminated(|p| p.parse::<LitStr>(), Token![,])?;
        if list.is_empty() {
            return Err(Error::new(
                brackets.span.join(),
                format!("`{name}` needs at least one JSON pointer, e.g. `{name} = [\"/orderId\"]`"),
            ));
        }
        list.into_iter().collect()
    } else {
        return Err(input.error(format!(
            "expected a JSON pointer or a list of them: `{name} = \"/orderId\"` or `{name} = [\"/a\", \"/b\"]`"
        )));
    };
    for pointer in &pointers {
        check_pointer(pointer)?;
    }
    Ok(pointers)
}

/// A JSON pointer, or a selector with `|json` / `|base64` steps (the library's
/// `event::Selector`; its `~` escapes are checked when the layer is built).
fn check_pointer(pointer: &LitStr) -> Result<()> {
    let text = pointer.value();
    let mut parts = text.split('|');
    let first = parts.next().unwrap_or_default();
    if !(first.is_empty() || first.starts_with('/')) {
        return Err(Error::new(
            pointer.span(),
            format!(
                "{text:?} is not a JSON pointer (RFC 6901): it must be empty or start with '/', e.g. \"/{text}\""
            ),
        ));
    }
    for part in parts {
        let (step, rest) = part.split_at(part.find('/').unwrap_or(part.len()));
        if step != "json" && step != "base64" {
            return Err(Error::new(
                pointer.span(),
                format!(
                    "{text:?}: unknown step {step:?} after '|': the steps are `json` and `base64`, e.g. \"/body|json/orderId\""
                ),
            ));
        }
        debug_assert!(rest.is_empty() || rest.starts_with('/'));
    }
    Ok(())
}

fn parse_expiry(input: ParseStream<'_>) -> Result<Expiry> {
    if !input.peek(LitStr) {
        return Err(input.error("expected a duration string, e.g. `expiry = \"24h\"`"));
    }
    let lit = input.parse::<LitStr>()?;
    let text = lit.value();
    let secs = parse_duration(&text).map_err(|reason| {
        Error::new(
            lit.span(),
            format!("invalid expiry {text:?}: {reason} (e.g. \"90m\", \"24h\", \"3600\")"),
        )
    })?;
    if !(MIN_EXPIRY_SECS..=MAX_EXPIRY_SECS).contains(&secs) {
        return Err(Error::new(
            lit.span(),
            format!(
                "expiry {text:?} ({secs} s) is out of range: it must be between 5m and 72h ({MIN_EXPIRY_SECS} to {MAX_EXPIRY_SECS} s)"
            ),
        ));
    }
    Ok(Expiry { secs, lit })
}

/// `lambda_idempotency::config::parse_duration`, in seconds: `90m`, `3600s`, `24h`,
/// `1d` or a bare number of seconds. Kept in step with the library by hand (a
/// proc-macro crate cannot depend on it); the tests below are the library's.
pub(crate) fn parse_duration(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    if digits.is_empty() {
        return Err("expected a whole number followed by s, m, h or d".to_owned());
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{digits:?} is not a whole number in range"))?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("unknown unit {other:?}; use s, m, h or d")),
    };
    n.checked_mul(seconds_per_unit)
        .ok_or_else(|| "duration overflows".to_owned())
}

fn parse_store(input: ParseStream<'_>) -> Result<StoreArg> {
    if input.peek(LitStr) {
        let lit = input.parse::<LitStr>()?;
        return match lit.value().as_str() {
            "env" => Ok(StoreArg::Env(lit.span())),
            "memory" => Ok(StoreArg::Memory(lit.span())),
            other => Err(Error::new(
                lit.span(),
                format!(
                    "unknown store {other:?}: expected \"env\" (DynamoDB, from the environment), \"memory\", \
                     or a path to an `async fn() -> Result<impl Store, lambda_idempotency::Error>`"
                ),
            )),
        };
    }
    input.parse::<Path>().map(StoreArg::Path).map_err(|e| {
        Error::new(
            e.span(),
            "expected `store = \"env\"`, `store = \"memory\"` or `store = path::to::async_fn`",
        )
    })
}

fn parse_name(input: ParseStream<'_>) -> Result<LitStr> {
    if !input.peek(LitStr) {
        return Err(input.error("expected a string, e.g. `name = \"payments\"`"));
    }
    let lit = input.parse::<LitStr>()?;
    if lit.value().trim().is_empty() {
        return Err(Error::new(lit.span(), "`name` must not be empty"));
    }
    Ok(lit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tokens: proc_macro2::TokenStream) -> Result<Args> {
        syn::parse2(tokens)
    }

    fn message(tokens: proc_macro2::TokenStream) -> String {
        match parse(tokens) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_durations_like_the_library() {
        assert_eq!(parse_duration("300"), Ok(300));
        assert_eq!(parse_duration("300s"), Ok(300));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration(" 24h "), Ok(86_400));
        assert_eq!(parse_duration("3d"), Ok(259_200));
        for bad in [
            "",
            "h",
            "-5m",
            "1.5h",
            "10w",
            "99999999999999999999",
            "1h30m",
            "ten minutes",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration(&format!("{}d", u64::MAX / 2)).is_err());
    }

    #[test]
    fn expiry_bounds_are_inclusive() {
        for ok in ["5m", "300", "72h", "3d", "259200s"] {
            assert!(parse(quote::quote!(expiry = #ok)).is_ok(), "{ok}");
        }
        for bad in ["299", "4m", "259201", "4d"] {
            assert!(
                message(quote::quote!(expiry = #bad)).contains("out of range"),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_every_argument() {
        let args = parse(quote::quote!(
            key = ["/a", "/b"],
            payload = "/c",
            expiry = "1h",
            store = crate::stores::make,
            name = "payments",
        ))
        .unwrap();
        assert_eq!(args.key.unwrap().value.len(), 2);
        assert_eq!(args.payload.unwrap().value.len(), 1);
        assert_eq!(args.expiry.unwrap().secs, 3600);
        assert!(matches!(args.store, Some(StoreArg::Path(_))));
        assert_eq!(args.name.unwrap().value.value(), "payments");
        assert!(matches!(
            parse(quote::quote!(store = "memory")).unwrap().store,
            Some(StoreArg::Memory(_))
        ));
        assert!(parse(quote::quote!()).unwrap().key.is_none());
    }

    #[test]
    fn refuses_bad_arguments() {
        assert!(message(quote::quote!(keys = "/a")).contains("unknown argument `keys`"));
        assert!(message(quote::quote!(type = "/a")).contains("unknown argument `type`"));
        assert!(
            message(quote::quote!(key = "/a", key = "/b")).contains("duplicate argument `key`")
        );
        assert!(message(quote::quote!(store = "memory", store = "env")).contains("duplicate"));
        assert!(message(quote::quote!(key = "a")).contains("not a JSON pointer"));
        assert!(message(quote::quote!(payload = ["/a", "b"])).contains("not a JSON pointer"));
        assert!(message(quote::quote!(key = [])).contains("at least one"));
        assert!(message(quote::quote!(key("/a"))).contains("expected `key = ...`"));
        assert!(message(quote::quote!(store = "redis")).contains("unknown store"));
        assert!(message(quote::quote!(name = "")).contains("must not be empty"));
        assert!(message(quote::quote!(expiry = 3600)).contains("duration string"));
        assert!(message(quote::quote!(expiry = "ten minutes")).contains("invalid expiry"));
        assert!(message(quote::quote!(key = "/body|yaml/a")).contains("unknown step \"yaml\""));
        assert!(
            parse(quote::quote!(
                key = "/body|json/a",
                payload = ["|base64|json"]
            ))
            .is_ok()
        );
        // The empty pointer (the whole payload) is a valid pointer.
        assert!(parse(quote::quote!(key = "")).is_ok());
    }
}
