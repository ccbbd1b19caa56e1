//! Idempotency settings: how long a record lives and how long a lease may last.
//!
//! Out-of-range values are typed errors when the configuration is built, never a
//! silent clamp: a payments team must know the window they actually got.
//!
//! # Environment variables
//!
//! [`IdempotencyConfig::from_env`] reads (each optional):
//!
//! | variable | meaning | default | range |
//! |---|---|---|---|
//! | `IDEMPOTENCY_EXPIRY` | how long a key is remembered | `24h` | `5m` to `72h`, or the layer's [bounds](IdempotencyConfigBuilder::expiry_bounds) |
//! | `IDEMPOTENCY_MAX_LEASE` | how long a request holds a key when the invocation's deadline is unknown | `15m` | `1s` to `1h` |
//! | `IDEMPOTENCY_LEASE_MARGIN` | added to a known deadline, for clock skew between instances | `3s` | `0s` to `60s` |
//! | `IDEMPOTENCY_DISABLED` | the layers pass every request straight to the handler (tests, local runs); refused on Lambda unless `IDEMPOTENCY_DISABLED_ON_LAMBDA=true` ([`disabled_by_env`]) | `false` | `true`/`false` |
//!
//! Durations are a whole number followed by `s`, `m`, `h` or `d` (`90m`, `3600s`,
//! `1d`), or a bare number of seconds (`86400`).

use std::time::Duration;

use crate::clock::millis;

/// Default record expiry: 24 hours.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);
/// Shortest expiry accepted: 5 minutes.
pub const MIN_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Longest expiry accepted: 72 hours.
pub const MAX_EXPIRY: Duration = Duration::from_secs(72 * 60 * 60);
/// The shortest lower expiry bound a layer may choose: 1 minute.
pub const EXPIRY_FLOOR: Duration = Duration::from_secs(60);
/// The longest upper expiry bound a layer may choose: 366 days (an event archive
/// replayed up to a year later).
pub const EXPIRY_CEILING: Duration = Duration::from_secs(366 * 24 * 60 * 60);
/// Default maximum lease: 15 minutes, the longest a Lambda invocation can run.
pub const DEFAULT_MAX_LEASE: Duration = Duration::from_secs(15 * 60);
/// Shortest maximum lease accepted: 1 second.
pub const MIN_LEASE: Duration = Duration::from_secs(1);
/// Longest maximum lease accepted: 1 hour.
pub const MAX_LEASE: Duration = Duration::from_secs(60 * 60);
/// Default margin added to a known invocation deadline: 3 seconds.
pub const DEFAULT_LEASE_MARGIN: Duration = Duration::from_secs(3);
/// Longest lease margin accepted: 60 seconds.
pub const MAX_LEASE_MARGIN: Duration = Duration::from_secs(60);

/// Environment variable for the expiry.
pub const ENV_EXPIRY: &str = "IDEMPOTENCY_EXPIRY";
/// Environment variable for the maximum lease.
pub const ENV_MAX_LEASE: &str = "IDEMPOTENCY_MAX_LEASE";
/// Environment variable for the lease margin.
pub const ENV_LEASE_MARGIN: &str = "IDEMPOTENCY_LEASE_MARGIN";
/// Environment variable that switches idempotency off (see [`disabled_by_env`]).
pub const ENV_DISABLED: &str = "IDEMPOTENCY_DISABLED";
/// Environment variable that allows [`ENV_DISABLED`] on Lambda itself.
pub const ENV_DISABLED_ON_LAMBDA: &str = "IDEMPOTENCY_DISABLED_ON_LAMBDA";

/// Validated idempotency settings.
///
/// ```
/// use lambda_idempotency::config::{ConfigError, IdempotencyConfig};
/// use std::time::Duration;
///
/// let config = IdempotencyConfig::builder()
///     .expiry(Duration::from_secs(2 * 60 * 60))
///     .max_lease(Duration::from_secs(30))
///     .build()?;
/// assert_eq!(config.expiry(), Duration::from_secs(7200));
///
/// let too_short = IdempotencyConfig::builder().expiry(Duration::from_secs(60)).build();
/// assert!(matches!(too_short, Err(ConfigError::ExpiryOutOfRange { .. })));
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyConfig {
    expiry: Duration,
    expiry_bounds: (Duration, Duration),
    max_lease: Duration,
    lease_margin: Duration,
}

/// Builds an [`IdempotencyConfig`]; every setting starts at its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct IdempotencyConfigBuilder {
    expiry: Duration,
    expiry_bounds: (Duration, Duration),
    max_lease: Duration,
    lease_margin: Duration,
}

/// A setting that was out of range or could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The expiry is outside the layer's bounds ([`MIN_EXPIRY`]..=[`MAX_EXPIRY`]
    /// unless [`expiry_bounds`](IdempotencyConfigBuilder::expiry_bounds) set others).
    #[error("expiry of {value:?} is out of range: it must be between {min:?} and {max:?}")]
    ExpiryOutOfRange {
        /// The value given.
        value: Duration,
        /// The lower bound.
        min: Duration,
        /// The upper bound.
        max: Duration,
    },
    /// Expiry bounds that are reversed, or outside
    /// [`EXPIRY_FLOOR`]..=[`EXPIRY_CEILING`].
    #[error(
        "expiry bounds {min:?}..={max:?} are invalid: they must be in order, within {floor:?}..={ceiling:?}"
    )]
    ExpiryBoundsOutOfRange {
        /// The lower bound given.
        min: Duration,
        /// The upper bound given.
        max: Duration,
        /// [`EXPIRY_FLOOR`].
        floor: Duration,
        /// [`EXPIRY_CEILING`].
        ceiling: Duration,
    },
    /// `IDEMPOTENCY_DISABLED` is set in a function running on Lambda, without
    /// `IDEMPOTENCY_DISABLED_ON_LAMBDA=true` (see [`disabled_by_env`]).
    #[error(
        "{ENV_DISABLED} is set, and this process runs on AWS Lambda: refusing to start without idempotency (set {ENV_DISABLED_ON_LAMBDA}=true if that is really meant)"
    )]
    DisabledOnLambda,
    /// The maximum lease is outside [`MIN_LEASE`]..=[`MAX_LEASE`].
    #[error("maximum lease of {value:?} is out of range: it must be between {min:?} and {max:?}")]
    LeaseOutOfRange {
        /// The value given.
        value: Duration,
        /// [`MIN_LEASE`].
        min: Duration,
        /// [`MAX_LEASE`].
        max: Duration,
    },
    /// The lease margin is longer than [`MAX_LEASE_MARGIN`].
    #[error("lease margin of {value:?} is out of range: it must be at most {max:?}")]
    LeaseMarginOutOfRange {
        /// The value given.
        value: Duration,
        /// [`MAX_LEASE_MARGIN`].
        max: Duration,
    },
    /// A required environment variable is missing or empty.
    #[error("environment variable {name} is not set")]
    MissingEnv {
        /// The variable's name.
        name: &'static str,
    },
    /// A [`KeyLayout`](crate::store::dynamodb::KeyLayout) that cannot key records.
    #[error("invalid key layout: {reason}")]
    InvalidKeyLayout {
        /// What is wrong with it.
        reason: String,
    },
    /// An event layer was built without a way to find the key.
    #[error("no idempotency key source: set a JSON pointer or a key function")]
    MissingKeySource,
    /// A JSON pointer or [selector](crate::event::Selector) is malformed: a pointer
    /// that does not start with `/`, an unknown step, a bad `~` escape.
    #[error("invalid selector: {reason}")]
    InvalidJsonPointer {
        /// The pointer or selector given.
        pointer: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A route template is not a path template (see
    /// [`IdempotencyLayerBuilder::route_templates`](crate::http::IdempotencyLayerBuilder::route_templates)).
    #[error("route template {template:?} is invalid: {reason}")]
    InvalidRouteTemplate {
        /// The template given.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An environment variable could not be parsed.
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    InvalidEnv {
        /// The variable's name.
        name: &'static str,
        /// Its value.
        value: String,
        /// What was wrong with it.
        reason: String,
    },
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            expiry: DEFAULT_EXPIRY,
            expiry_bounds: (MIN_EXPIRY, MAX_EXPIRY),
            max_lease: DEFAULT_MAX_LEASE,
            lease_margin: DEFAULT_LEASE_MARGIN,
        }
    }
}

impl IdempotencyConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> IdempotencyConfigBuilder {
        IdempotencyConfigBuilder {
            expiry: DEFAULT_EXPIRY,
            expiry_bounds: (MIN_EXPIRY, MAX_EXPIRY),
            max_lease: DEFAULT_MAX_LEASE,
            lease_margin: DEFAULT_LEASE_MARGIN,
        }
    }

    /// Reads the settings from the process environment (see the module docs).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().with_env()?.build()
    }

    /// How long a key is remembered after its first request.
    pub fn expiry(&self) -> Duration {
        self.expiry
    }

    /// The expiries this configuration accepts (for itself, and for a route's own
    /// expiry on the HTTP layer): [`MIN_EXPIRY`]..=[`MAX_EXPIRY`] unless set with
    /// [`expiry_bounds`](IdempotencyConfigBuilder::expiry_bounds).
    pub fn expiry_bounds(&self) -> (Duration, Duration) {
        self.expiry_bounds
    }

    /// `Ok` when `expiry` is within [`expiry_bounds`](Self::expiry_bounds).
    pub fn check_expiry(&self, expiry: Duration) -> Result<(), ConfigError> {
        check_expiry(expiry, self.expiry_bounds)
    }

    /// How long a request holds a key when its invocation's deadline is unknown.
    pub fn max_lease(&self) -> Duration {
        self.max_lease
    }

    /// What is added to a known deadline, for clock skew between instances.
    pub fn lease_margin(&self) -> Duration {
        self.lease_margin
    }

    /// The lease for a request starting at `now_ms` whose invocation must end by
    /// `deadline_ms` (epoch ms; `0` means unknown).
    ///
    /// The lease must cover the whole invocation, or a retry could take the key over
    /// and run the handler a second time while the first still runs. So with a known
    /// deadline it lasts until the deadline plus [`lease_margin`](Self::lease_margin)
    /// (another instance's clock may run ahead). The [`max_lease`](Self::max_lease)
    /// applies only when the deadline is unknown: unset (`0`, as in
    /// `Context::default()`), already past (never a lease that lapses before the
    /// handler starts), or more than [`MAX_LEASE`] (an hour) away, which no Lambda
    /// invocation (15 minutes at most) has: a bogus deadline must not lock a key for
    /// days. A record never expires while its lease is live
    /// ([`crate::record::expires_at_for`]).
    ///
    /// ```
    /// use lambda_idempotency::config::IdempotencyConfig;
    /// use std::time::Duration;
    ///
    /// let config = IdempotencyConfig::default(); // max lease 15 minutes, margin 3 s
    /// let now = 1_700_000_000_000;
    /// assert_eq!(config.lease_for(now, now + 3_000), Duration::from_secs(6));
    /// assert_eq!(config.lease_for(now, now + 20 * 60_000), Duration::from_secs(20 * 60 + 3));
    /// assert_eq!(config.lease_for(now, 0), config.max_lease());
    /// ```
    pub fn lease_for(&self, now_ms: i64, deadline_ms: i64) -> Duration {
        let remaining = deadline_ms.saturating_sub(now_ms);
        if deadline_ms <= 0 || remaining <= 0 || remaining > millis(MAX_LEASE) {
            return self.max_lease;
        }
        Duration::from_millis(remaining.unsigned_abs()).saturating_add(self.lease_margin)
    }
}

impl IdempotencyConfigBuilder {
    /// How long a key is remembered (within the [expiry
    /// bounds](Self::expiry_bounds), by default [`MIN_EXPIRY`]..=[`MAX_EXPIRY`]).
    pub fn expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry;
        self
    }

    /// The expiries this configuration accepts, inclusive (default: the HTTP
    /// bounds, [`MIN_EXPIRY`]..=[`MAX_EXPIRY`], 5 minutes to 72 hours). An event
    /// source may need longer: SQS keeps a message up to 14 days, and an EventBridge
    /// archive replays events much later, each a duplicate only a record that old
    /// recognises. The bounds themselves must lie within
    /// [`EXPIRY_FLOOR`]..=[`EXPIRY_CEILING`] (1 minute to 366 days); the expiry
    /// (from code or `IDEMPOTENCY_EXPIRY`) is then checked against them.
    ///
    /// ```
    /// use lambda_idempotency::config::{ConfigError, IdempotencyConfig, MIN_EXPIRY};
    /// use std::time::Duration;
    ///
    /// const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    /// // An SQS consumer: remember a message for as long as SQS may redeliver it.
    /// let sqs = IdempotencyConfig::builder()
    ///     .expiry_bounds(MIN_EXPIRY, 15 * DAY)
    ///     .expiry(14 * DAY)
    ///     .build()?;
    /// assert_eq!(sqs.expiry(), 14 * DAY);
    ///
    /// // Without wider bounds, 14 days is refused, never clamped.
    /// let refused = IdempotencyConfig::builder().expiry(14 * DAY).build();
    /// assert!(matches!(refused, Err(ConfigError::ExpiryOutOfRange { .. })));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn expiry_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.expiry_bounds = (min, max);
        self
    }

    /// How long a request holds a key when the invocation deadline is unknown
    /// ([`MIN_LEASE`]..=[`MAX_LEASE`]). With a known deadline the lease follows it
    /// (see [`IdempotencyConfig::lease_for`]).
    pub fn max_lease(mut self, max_lease: Duration) -> Self {
        self.max_lease = max_lease;
        self
    }

    /// What is added to a known deadline for clock skew between instances (default
    /// [`DEFAULT_LEASE_MARGIN`], at most [`MAX_LEASE_MARGIN`]). A timed-out invocation
    /// frees its key this long after its deadline.
    pub fn lease_margin(mut self, margin: Duration) -> Self {
        self.lease_margin = margin;
        self
    }

    /// Overrides settings from the process environment (see the module docs).
    pub fn with_env(self) -> Result<Self, ConfigError> {
        self.with_env_from(|name| std::env::var(name).ok())
    }

    /// Overrides settings from `lookup`, which answers like `std::env::var`.
    pub fn with_env_from(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if let Some(value) = lookup(ENV_EXPIRY) {
            self.expiry = parse_env_duration(ENV_EXPIRY, &value)?;
        }
        if let Some(value) = lookup(ENV_MAX_LEASE) {
            self.max_lease = parse_env_duration(ENV_MAX_LEASE, &value)?;
        }
        if let Some(value) = lookup(ENV_LEASE_MARGIN) {
            self.lease_margin = parse_env_duration(ENV_LEASE_MARGIN, &value)?;
        }
        Ok(self)
    }

    /// Checks every bound.
    pub fn build(self) -> Result<IdempotencyConfig, ConfigError> {
        let (min, max) = self.expiry_bounds;
        if min > max || min < EXPIRY_FLOOR || max > EXPIRY_CEILING {
            return Err(ConfigError::ExpiryBoundsOutOfRange {
                min,
                max,
                floor: EXPIRY_FLOOR,
                ceiling: EXPIRY_CEILING,
            });
        }
        check_expiry(self.expiry, self.expiry_bounds)?;
        // The lease may outlast the expiry: the record then lives as long as its lease.
        if !(MIN_LEASE..=MAX_LEASE).contains(&self.max_lease) {
            return Err(ConfigError::LeaseOutOfRange {
                value: self.max_lease,
                min: MIN_LEASE,
                max: MAX_LEASE,
            });
        }
        if self.lease_margin > MAX_LEASE_MARGIN {
            return Err(ConfigError::LeaseMarginOutOfRange {
                value: self.lease_margin,
                max: MAX_LEASE_MARGIN,
            });
        }
        Ok(IdempotencyConfig {
            expiry: self.expiry,
            expiry_bounds: self.expiry_bounds,
            max_lease: self.max_lease,
            lease_margin: self.lease_margin,
        })
    }
}

fn check_expiry(expiry: Duration, (min, max): (Duration, Duration)) -> Result<(), ConfigError> {
    if (min..=max).contains(&expiry) {
        Ok(())
    } else {
        Err(ConfigError::ExpiryOutOfRange {
            value: expiry,
            min,
            max,
        })
    }
}

/// Whether the environment switches idempotency off: [`ENV_DISABLED`]
/// (`IDEMPOTENCY_DISABLED`) set to `true`, `1` or `yes`, for tests and local runs
/// that want the handler without the layer. `lookup` answers like `std::env::var`
/// (the layers pass the process environment).
///
/// It is never on by accident: any other value than those and `false`, `0`, `no`
/// or empty is an error, and on AWS Lambda itself (`AWS_LAMBDA_FUNCTION_NAME` set,
/// and not under `sam local`, which sets `AWS_SAM_LOCAL=true`) it is refused with
/// [`ConfigError::DisabledOnLambda`] unless [`ENV_DISABLED_ON_LAMBDA`] is `true` too.
/// `cargo lambda watch` also sets `AWS_LAMBDA_FUNCTION_NAME`: there, set both.
///
/// ```
/// use lambda_idempotency::config::{ConfigError, disabled_by_env};
///
/// let env = |vars: &'static [(&'static str, &'static str)]| {
///     move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
/// };
/// assert_eq!(disabled_by_env(env(&[])), Ok(false));
/// assert_eq!(disabled_by_env(env(&[("IDEMPOTENCY_DISABLED", "true")])), Ok(true));
/// let on_lambda = env(&[("IDEMPOTENCY_DISABLED", "true"), ("AWS_LAMBDA_FUNCTION_NAME", "orders")]);
/// assert_eq!(disabled_by_env(on_lambda), Err(ConfigError::DisabledOnLambda));
/// ```
pub fn disabled_by_env(lookup: impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    let flag = |name: &'static str| -> Result<bool, ConfigError> {
        let Some(value) = lookup(name) else {
            return Ok(false);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" | "" => Ok(false),
            _ => Err(ConfigError::InvalidEnv {
                name,
                value,
                reason: "expected true or false".to_owned(),
            }),
        }
    };
    if !flag(ENV_DISABLED)? {
        return Ok(false);
    }
    let on_lambda = lookup("AWS_LAMBDA_FUNCTION_NAME").is_some_and(|n| !n.is_empty())
        && lookup("AWS_SAM_LOCAL").as_deref() != Some("true");
    if on_lambda && !flag(ENV_DISABLED_ON_LAMBDA)? {
        return Err(ConfigError::DisabledOnLambda);
    }
    Ok(true)
}

/// Parses `90m`, `3600s`, `24h`, `1d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
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
        .map(Duration::from_secs)
        .ok_or_else(|| "duration overflows".to_owned())
}

fn parse_env_duration(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    parse_duration(value).map_err(|reason| ConfigError::InvalidEnv {
        name,
        value: value.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60;
    const HOUR: u64 = 3600;

    #[test]
    fn defaults() {
        let c = IdempotencyConfig::builder().build().unwrap();
        assert_eq!(c, IdempotencyConfig::default());
        assert_eq!(c.expiry(), Duration::from_secs(24 * HOUR));
        assert_eq!(c.max_lease(), Duration::from_secs(15 * MIN));
    }

    #[test]
    fn a_layer_chooses_its_expiry_bounds_within_the_floor_and_ceiling() {
        const DAY: u64 = 24 * HOUR;
        let days = |n: u64| Duration::from_secs(n * DAY);
        let config = IdempotencyConfig::builder()
            .expiry_bounds(MIN_EXPIRY, days(15))
            .expiry(days(14))
            .build()
            .unwrap();
        assert_eq!(config.expiry(), days(14));
        assert_eq!(config.expiry_bounds(), (MIN_EXPIRY, days(15)));
        assert_eq!(
            config.check_expiry(days(16)),
            Err(ConfigError::ExpiryOutOfRange {
                value: days(16),
                min: MIN_EXPIRY,
                max: days(15)
            })
        );
        // The environment's expiry is checked against the chosen bounds too.
        let from_env = |v: &'static str| {
            IdempotencyConfig::builder()
                .expiry_bounds(MIN_EXPIRY, days(15))
                .with_env_from(move |n| (n == ENV_EXPIRY).then(|| v.to_owned()))
                .unwrap()
                .build()
        };
        assert_eq!(from_env("14d").unwrap().expiry(), days(14));
        assert!(matches!(
            from_env("16d"),
            Err(ConfigError::ExpiryOutOfRange { .. })
        ));
        // Narrower bounds refuse what the defaults allow.
        assert!(matches!(
            IdempotencyConfig::builder()
                .expiry_bounds(Duration::from_secs(HOUR), Duration::from_secs(2 * HOUR))
                .build(),
            Err(ConfigError::ExpiryOutOfRange { .. })
        ));
        for (min, max) in [
            (days(2), days(1)),
            (EXPIRY_FLOOR - Duration::from_millis(1), days(1)),
            (MIN_EXPIRY, EXPIRY_CEILING + Duration::from_secs(1)),
        ] {
            assert_eq!(
                IdempotencyConfig::builder()
                    .expiry_bounds(min, max)
                    .build()
                    .unwrap_err(),
                ConfigError::ExpiryBoundsOutOfRange {
                    min,
                    max,
                    floor: EXPIRY_FLOOR,
                    ceiling: EXPIRY_CEILING
                }
            );
        }
        assert!(
            IdempotencyConfig::builder()
                .expiry_bounds(EXPIRY_FLOOR, EXPIRY_CEILING)
                .expiry(EXPIRY_CEILING)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn disabling_is_explicit_and_refused_on_lambda_unless_allowed() {
        let env = |vars: Vec<(&'static str, &'static str)>| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(disabled_by_env(env(vec![])), Ok(false));
        for on in ["true", "TRUE", "1", "yes", " true "] {
            assert_eq!(
                disabled_by_env(env(vec![(ENV_DISABLED, on)])),
                Ok(true),
                "{on}"
            );
        }
        for off in ["false", "0", "no", ""] {
            assert_eq!(
                disabled_by_env(env(vec![(ENV_DISABLED, off)])),
                Ok(false),
                "{off}"
            );
        }
        assert!(matches!(
            disabled_by_env(env(vec![(ENV_DISABLED, "on please")])),
            Err(ConfigError::InvalidEnv {
                name: ENV_DISABLED,
                ..
            })
        ));
        let lambda = ("AWS_LAMBDA_FUNCTION_NAME", "orders");
        assert_eq!(
            disabled_by_env(env(vec![(ENV_DISABLED, "true"), lambda])),
            Err(ConfigError::DisabledOnLambda)
        );
        assert_eq!(
            disabled_by_env(env(vec![
                (ENV_DISABLED, "true"),
                lambda,
                (ENV_DISABLED_ON_LAMBDA, "no")
            ])),
            Err(ConfigError::DisabledOnLambda)
        );
        assert_eq!(
            disabled_by_env(env(vec![
                (ENV_DISABLED, "true"),
                lambda,
                (ENV_DISABLED_ON_LAMBDA, "true")
            ])),
            Ok(true)
        );
        assert_eq!(
            disabled_by_env(env(vec![
                (ENV_DISABLED, "true"),
                lambda,
                ("AWS_SAM_LOCAL", "true")
            ])),
            Ok(true),
            "sam local is not Lambda"
        );
        // Off is off, on Lambda or not.
        assert_eq!(
            disabled_by_env(env(vec![(ENV_DISABLED, "false"), lambda])),
            Ok(false)
        );
    }

    #[test]
    fn expiry_bounds_are_inclusive_and_typed() {
        for ok in [5 * MIN, 24 * HOUR, 72 * HOUR] {
            let c = IdempotencyConfig::builder()
                .expiry(Duration::from_secs(ok))
                .max_lease(Duration::from_secs(60))
                .build();
            assert!(c.is_ok(), "{ok}");
        }
        for bad in [0, 5 * MIN - 1, 72 * HOUR + 1, 365 * 24 * HOUR] {
            let err = IdempotencyConfig::builder()
                .expiry(Duration::from_secs(bad))
                .max_lease(Duration::from_secs(60))
                .build()
                .unwrap_err();
            assert_eq!(
                err,
                ConfigError::ExpiryOutOfRange {
                    value: Duration::from_secs(bad),
                    min: MIN_EXPIRY,
                    max: MAX_EXPIRY
                }
            );
        }
        // Sub-second precision is not rounded into range either.
        assert!(
            IdempotencyConfig::builder()
                .expiry(MIN_EXPIRY - Duration::from_millis(1))
                .build()
                .is_err()
        );
    }

    #[test]
    fn lease_bounds() {
        let err = IdempotencyConfig::builder()
            .max_lease(Duration::from_millis(999))
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::LeaseOutOfRange { .. }));
        let err = IdempotencyConfig::builder()
            .max_lease(Duration::from_secs(HOUR + 1))
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::LeaseOutOfRange { .. }));
        // Longer than the expiry is fine: the record lives as long as its lease.
        assert!(
            IdempotencyConfig::builder()
                .expiry(Duration::from_secs(5 * MIN))
                .max_lease(Duration::from_secs(HOUR))
                .build()
                .is_ok()
        );
        for ok in [Duration::ZERO, MAX_LEASE_MARGIN] {
            let c = IdempotencyConfig::builder()
                .lease_margin(ok)
                .build()
                .unwrap();
            assert_eq!(c.lease_margin(), ok);
        }
        assert_eq!(
            IdempotencyConfig::builder()
                .lease_margin(MAX_LEASE_MARGIN + Duration::from_millis(1))
                .build()
                .unwrap_err(),
            ConfigError::LeaseMarginOutOfRange {
                value: MAX_LEASE_MARGIN + Duration::from_millis(1),
                max: MAX_LEASE_MARGIN
            }
        );
    }

    #[test]
    fn lease_follows_the_deadline() {
        let c = IdempotencyConfig::builder()
            .max_lease(Duration::from_secs(60))
            .lease_margin(Duration::from_secs(2))
            .build()
            .unwrap();
        let now = 1_700_000_000_000;
        assert_eq!(c.lease_for(now, now + 2_500), Duration::from_millis(4_500));
        assert_eq!(c.lease_for(now, now + 60_000), Duration::from_secs(62));
        // A known deadline beyond the max lease still bounds the lease, not the max.
        assert_eq!(c.lease_for(now, now + 600_000), Duration::from_secs(602));
        // Unknown or past deadlines give the maximum, never a lapsed lease.
        assert_eq!(c.lease_for(now, 0), Duration::from_secs(60));
        assert_eq!(c.lease_for(now, now), Duration::from_secs(60));
        assert_eq!(c.lease_for(now, now - 1), Duration::from_secs(60));
        assert_eq!(c.lease_for(now, -5), Duration::from_secs(60));
        // A deadline no invocation has (over an hour away) is not trusted.
        assert_eq!(
            c.lease_for(now, now + 3_600_000),
            Duration::from_secs(3_602)
        );
        assert_eq!(c.lease_for(now, now + 3_600_001), Duration::from_secs(60));
        assert_eq!(c.lease_for(now, i64::MAX), Duration::from_secs(60));
    }

    #[test]
    fn reads_the_environment() {
        let env = |name: &str| match name {
            ENV_EXPIRY => Some("2h".to_owned()),
            ENV_MAX_LEASE => Some("90".to_owned()),
            ENV_LEASE_MARGIN => Some("5s".to_owned()),
            _ => None,
        };
        let c = IdempotencyConfig::builder()
            .with_env_from(env)
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.expiry(), Duration::from_secs(2 * HOUR));
        assert_eq!(c.max_lease(), Duration::from_secs(90));
        assert_eq!(c.lease_margin(), Duration::from_secs(5));
    }

    #[test]
    fn environment_errors_name_the_variable() {
        let err = IdempotencyConfig::builder()
            .with_env_from(|name| (name == ENV_EXPIRY).then(|| "ten minutes".to_owned()))
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InvalidEnv {
                name: ENV_EXPIRY,
                ..
            }
        ));
        assert!(err.to_string().contains("IDEMPOTENCY_EXPIRY"));
        // A parsable but out-of-range value is still a range error, not a clamp.
        let err = IdempotencyConfig::builder()
            .with_env_from(|name| (name == ENV_EXPIRY).then(|| "4d".to_owned()))
            .unwrap()
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::ExpiryOutOfRange { .. }));
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("300").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration(" 24h ").unwrap(),
            Duration::from_secs(86_400)
        );
        assert_eq!(parse_duration("3d").unwrap(), Duration::from_secs(259_200));
        for bad in [
            "",
            "h",
            "-5m",
            "1.5h",
            "10w",
            "99999999999999999999",
            "1h30m",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration(&format!("{}d", u64::MAX / 2)).is_err());
    }
}
