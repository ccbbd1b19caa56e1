//! `idem`: the operator CLI for a lambda-idempotency table.
//!
//! ```text
//! idem table create [--with-sweeper-indexes]         create the table (DynamoDB Local, tests)
//! idem inspect --route R --actor A --key K           show one record
//! idem purge --route R --actor A --key K [--yes]     delete one record, after confirmation
//! idem stats [--days 7]                              per-day statistics, today first
//! ```
//!
//! The table comes from `--table` or `IDEMPOTENCY_TABLE`; the endpoint, region and
//! credentials from the AWS SDK's usual settings (`AWS_ENDPOINT_URL_DYNAMODB` for
//! DynamoDB Local). Every failure is one line on standard error and exit code 1
//! (2 for a usage error).

mod commands;
mod format;

use std::process::ExitCode;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use clap::{Args, Parser, Subcommand};
use lambda_idempotency::Error;
use lambda_idempotency::key::IdempotencyKey;
use lambda_idempotency::scope::Scope;
use lambda_idempotency::store::dynamodb::{DynamoDbStore, ENV_TABLE, KeyLayout};

/// Operate a lambda-idempotency table: create it locally, inspect or purge one record,
/// read the per-day statistics the sweeper keeps.
///
/// The table comes from --table or IDEMPOTENCY_TABLE; the endpoint, region and
/// credentials from the AWS SDK's usual settings (AWS_ENDPOINT_URL_DYNAMODB for
/// DynamoDB Local).
#[derive(Debug, Parser)]
#[command(name = "idem", version)]
struct Cli {
    /// The idempotency table [default: $IDEMPOTENCY_TABLE]
    #[arg(long, global = true, value_name = "TABLE", display_order = 90)]
    table: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage the table itself
    Table {
        #[command(subcommand)]
        action: TableAction,
    },
    /// Show one record: status, times, lease, fingerprint, response size
    Inspect(RecordArgs),
    /// Delete one record (asks for confirmation unless --yes)
    Purge {
        #[command(flatten)]
        record: RecordArgs,
        /// Delete without asking
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Requests in flight now (records PENDING with a live lease) and abandoned ones
    /// (PENDING, lease lapsed), counted through the in-flight index
    Inflight,
    /// Per-day statistics kept by the sweeper, today (UTC) first
    Stats {
        /// How many days to show
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=100))]
        days: u32,
    },
}

#[derive(Debug, Subcommand)]
enum TableAction {
    /// Create the table with TTL (for DynamoDB Local and tests; deploy with the SAM
    /// template); an existing table is kept
    Create {
        /// Add the sweeper's expiry and in-flight indexes (3 more index write units
        /// per new key); a table without them needs no sweeper, TTL expires records
        #[arg(long)]
        with_sweeper_indexes: bool,
    },
}

/// Which record: the route, actor and key the layer scoped it to.
#[derive(Debug, Args)]
struct RecordArgs {
    /// The route, as the layer names it (for example "POST /orders")
    #[arg(long)]
    route: String,
    /// The actor (the caller's principal; "anonymous" when unauthenticated)
    #[arg(long)]
    actor: String,
    /// The Idempotency-Key value
    #[arg(long)]
    key: String,
}

impl RecordArgs {
    fn scope(&self) -> Result<Scope, Failure> {
        let key = IdempotencyKey::parse(&self.key)
            .map_err(|e| Failure::Message(format!("--key {:?}: {e}", self.key)))?;
        Ok(Scope::new(self.route.clone(), self.actor.clone(), key))
    }
}

/// Why a command failed: printed as one line, exit code 1.
#[derive(Debug)]
enum Failure {
    /// A store error, explained with the table and endpoint.
    Store(Error),
    /// Anything else, already worded.
    Message(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::Store(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::Message(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("idem: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let endpoint = endpoint();
        match run(cli).await {
            Ok(code) => code,
            Err(failure) => {
                eprintln!("idem: {}", explain(failure, &endpoint));
                ExitCode::FAILURE
            }
        }
    })
}

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let table = cli
        .table
        .or_else(|| std::env::var(ENV_TABLE).ok())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Failure::Message(format!("no table given: pass --table or set {ENV_TABLE}"))
        })?;
    let layout = KeyLayout::from_env().map_err(lambda_idempotency::Error::from)?;
    let store = DynamoDbStore::new(client().await, table).with_key_layout(layout);
    let mut out = std::io::stdout().lock();
    // Before reading records: a table keyed for another layout is one clear line, not
    // DynamoDB's "number of conditions on the keys is invalid". Arguments are checked
    // first, without a call.
    let checked = || store.check_key_layout();
    match cli.command {
        Command::Table {
            action: TableAction::Create {
                with_sweeper_indexes,
            },
        } => commands::table_create(&store, with_sweeper_indexes, &mut out).await,
        Command::Inspect(record) => {
            let scope = record.scope()?;
            checked().await?;
            commands::inspect(&store, &scope, &mut out).await
        }
        Command::Purge { record, yes } => {
            let scope = record.scope()?;
            checked().await?;
            let stdin = std::io::stdin();
            commands::purge(&store, &scope, yes, &mut stdin.lock(), &mut out).await
        }
        Command::Stats { days } => {
            checked().await?;
            commands::stats(&store, days, &mut out).await
        }
        Command::Inflight => {
            checked().await?;
            commands::inflight(&store, &mut out).await
        }
    }
}

/// A client that fails fast: an operator waiting on an unreachable endpoint should
/// know within about a second, not after the SDK's retries.
async fn client() -> aws_sdk_dynamodb::Client {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(10))
                .build(),
        )
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&sdk)
}

/// The endpoint the SDK will use, for error messages (the SDK's configuration does
/// not expose the one it resolved).
fn endpoint() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(url) = var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| var("AWS_ENDPOINT_URL")) {
        return url;
    }
    match var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
        Some(region) => format!("https://dynamodb.{region}.amazonaws.com"),
        None => "the default DynamoDB endpoint of your AWS profile's region".to_owned(),
    }
}

fn explain(failure: Failure, endpoint: &str) -> String {
    match failure {
        Failure::Message(message) => message,
        Failure::Store(Error::TableNotFound { table }) => format!(
            "table {table:?} does not exist (create it with: idem table create --table {table})"
        ),
        Failure::Store(Error::StoreUnavailable { message, .. }) => {
            format!("cannot reach DynamoDB at {endpoint}: {message}")
        }
        Failure::Store(e) => format!("DynamoDB at {endpoint}: {e}"),
    }
}
