//! The `bankguard` command line: parses arguments, loads configuration, and runs one subcommand.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgGroup, Args, Parser, Subcommand};

use bankguard::clock::TimeLeft;
use bankguard::config::Config;
use bankguard::devstack::authz::clients::MCP_CLIENT_FILE;
use bankguard::devstack::authz::device::PendingApproval;
use bankguard::devstack::device_client::DeviceClient;
use bankguard::devstack::{DevStack, RunningStack, seed};
use bankguard::http_server::{self, ListenSetting};
use bankguard::mcp::Backends;
use bankguard::mcp::lifecycle::{IntentStore, StoreLocation};
use bankguard::mcp::server_key::{ServerKey, TrustedKeys};
use bankguard::mcp::transport::{self, RunningHttp};

/// mimalloc, not glibc's malloc: a `serve` holding thousands of pending approvals allocates in
/// bursts on several threads and keeps a little of each burst, which glibc's per-thread arenas turn
/// into memory that is free but never returned, and slower allocation. Built without transparent
/// huge pages (the `no_thp` feature), which would double a short-lived stdio server's footprint.
/// Measured in `docs/performance.md` ("N pending approvals", "Cold start").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "bankguard",
    version,
    about = "An MCP server that moves money only after the account holder approves on their own device.",
    long_about = "bankguard lets AI assistants work with a bank account without ever being able to move money \
                  on their own: every transfer is approved by the account holder on a separate device through \
                  OpenID Connect CIBA.\n\nConfiguration comes from a TOML file (see bankguard.example.toml) and \
                  BANKGUARD_* environment variables; logs go to stderr, filtered by RUST_LOG."
)]
struct Cli {
    /// Configuration file (TOML). Without it, ./bankguard.toml is read if it exists.
    #[arg(long, global = true, env = "BANKGUARD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the MCP server for AI clients: tools list_accounts and transfer_funds, every transfer
    /// approved by the account holder on their own device (CIBA). Defaults point at `bankguard dev`.
    Serve {
        /// stdio (for desktop clients and IDEs that start the server) or http (Streamable HTTP at /mcp).
        #[arg(long, value_enum, default_value_t = Transport::Stdio)]
        transport: Transport,
        /// Address for --transport http (default: mcp.listen, 127.0.0.1:4102).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Check the configuration before serving: print every effective setting and where it came from
    /// (secrets only as set/unset), then check the provider's discovery, the client's credentials,
    /// the audience, the bank API and the data directory, each ✓ or ✗ with a fix. Exit status 0
    /// only if every check passes.
    Check,
    /// Apply the transfer intent store's migrations (`mcp.store_url`, or SQLite in the data
    /// directory) and exit. `serve` applies them too at start; run this to apply them first, e.g.
    /// as a release step before replicas of a new version start.
    Migrate,
    /// The audit trail in the transfer intent store: check it, or export it.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print this server's public signing key (a JWK set), which checks its transfer receipts and
    /// signed audit heads; the same document `serve --transport http` publishes at
    /// /.well-known/bankguard-keys.json. Generates the key on first use, as `serve` would.
    Keys,
    /// Write a completed transfer's proof of consent into a directory (`evidence INTENT_ID --out
    /// DIR`), or check such a directory offline (`evidence verify DIR`).
    Evidence(EvidenceArgs),
    /// Run everything in one process on loopback: the dev authorization server with its approval
    /// page, the bank API, and the MCP server over HTTP; prints how to connect a client.
    Demo,
    /// Run the embedded dev stack on loopback: a CIBA authorization server with an approval page that
    /// plays the account holder's phone, and the reference bank API over a seeded SQLite ledger
    /// (demo users alice and bob) that accepts only verified, transfer-bound access tokens.
    Dev,
    /// List the requests waiting for approval on a running `bankguard dev`, newest first.
    Pending {
        /// Only this account holder's requests (e.g. alice).
        #[arg(long)]
        user: Option<String>,
    },
    /// Approve a pending request from the terminal, as the account holder would on their phone.
    Approve(DecisionArgs),
    /// Deny a pending request from the terminal, as the account holder would on their phone.
    Deny(DecisionArgs),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the whole chain, recompute every hash and check every signed head against this data
    /// directory's server key (and the keys of other replicas given with --trusted-keys); exit
    /// non-zero naming the first bad entry.
    Verify {
        /// A JWK set of other servers whose signed heads count (what `bankguard keys` prints on each
        /// replica sharing the store). Repeatable.
        #[arg(long, value_name = "FILE")]
        trusted_keys: Vec<PathBuf>,
    },
    /// Write the entries as JSON Lines to stdout, in chain order.
    Export {
        /// Only entries written at or after this time (RFC 3339, UTC, e.g. 2026-12-01T00:00:00Z).
        #[arg(long, value_name = "RFC3339", value_parser = parse_since)]
        since: Option<bankguard::clock::Millis>,
        /// Only this holder's entries (their user id at the bank or their subject at the provider).
        #[arg(long, value_name = "HOLDER")]
        holder: Option<String>,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct EvidenceArgs {
    #[command(subcommand)]
    command: Option<EvidenceCommand>,
    /// The completed transfer's intent id (`int_…`, as its result and `audit export` show it).
    #[arg(required = true)]
    intent_id: Option<String>,
    /// The directory to write the pack into (created; must be empty if it exists).
    #[arg(long, value_name = "DIR", required = true)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Check a pack offline, from its own files alone; exit non-zero naming the first problem.
    Verify {
        /// The pack's directory.
        dir: PathBuf,
    },
}

fn parse_since(text: &str) -> Result<bankguard::clock::Millis, String> {
    let at = humantime::parse_rfc3339(text).map_err(|error| format!("not an RFC 3339 UTC time: {error}"))?;
    let millis = at.duration_since(std::time::UNIX_EPOCH).map_err(|_| "before 1970".to_owned())?.as_millis();
    Ok(bankguard::clock::Millis(i64::try_from(millis).map_err(|_| "too far in the future".to_owned())?))
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Transport {
    Stdio,
    Http,
}

#[derive(Args)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "latest"])))]
struct DecisionArgs {
    /// Act for this account holder only (e.g. alice).
    #[arg(long)]
    user: Option<String>,
    /// The request's id, or its first characters as `bankguard pending` shows them. Ids may begin
    /// with `-` (they are URL-safe base64).
    #[arg(allow_hyphen_values = true)]
    id: Option<String>,
    /// The newest pending request.
    #[arg(long)]
    latest: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    bankguard::telemetry::init();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let config_file = cli.config.clone();
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve { transport, listen } => serve(config, transport, listen).await,
            Command::Check => check(config_file.as_deref()).await,
            Command::Migrate => migrate(&config).await,
            Command::Audit(command) => audit(&config, command).await,
            Command::Keys => keys(&config),
            Command::Evidence(args) => evidence(&config, args).await,
            Command::Demo => run_demo(config).await,
            Command::Dev => run_dev(config).await,
            Command::Pending { user } => list_pending(&config, user.as_deref()).await,
            Command::Approve(args) => decide(&config, &args, "approve").await,
            Command::Deny(args) => decide(&config, &args, "deny").await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    config: Config,
    transport: Transport,
    listen: Option<SocketAddr>,
) -> Result<(), Box<dyn std::error::Error>> {
    let backends = Arc::new(Backends::from_config(&config, transport == Transport::Http)?);
    match transport {
        Transport::Stdio => {
            tracing::info!(issuer = %config.mcp_issuer(), bank = %config.mcp_bank_api_url(), "serving MCP over stdio");
            transport::serve_stdio(backends).await?;
        }
        Transport::Http => {
            let listener = RunningHttp::bind(listen.unwrap_or(config.mcp.listen)).await?;
            let server = RunningHttp::start(listener, backends, &config).await?;
            eprintln!("bankguard MCP server at {} (Ctrl-C stops it)", server.url());
            shutdown_signal().await;
            server.shutdown().await?;
        }
    }
    Ok(())
}

async fn check(config_file: Option<&std::path::Path>) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    let loaded = bankguard::config::LoadedConfig::load(config_file)?;
    {
        let mut out = std::io::stdout().lock();
        match &loaded.file {
            Some(file) => writeln!(out, "configuration: {} and the environment", file.display())?,
            None => writeln!(out, "configuration: no file, the defaults and the environment")?,
        }
        for setting in bankguard::check::settings::effective(&loaded) {
            writeln!(out, "  {setting}")?;
        }
        writeln!(out, "\nchecks:")?;
        out.flush()?;
    }
    let findings = bankguard::check::run(&loaded, |finding| {
        let _ = writeln!(std::io::stdout(), "  {finding}");
    })
    .await;
    let failed = findings.iter().filter(|finding| finding.failed()).count();
    if failed > 0 {
        return Err(format!("{failed} of {} checks failed", findings.len()).into());
    }
    writeln!(std::io::stdout(), "all checks passed")?;
    Ok(())
}

async fn migrate(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let location = bankguard::mcp::backends::store_location(config)?;
    let kind = match location {
        StoreLocation::Sqlite(_) => "SQLite",
        StoreLocation::Postgres(_) => "PostgreSQL",
    };
    let store = IntentStore::new(location, bankguard::clock::Clock::system());
    let applied = store.migrate().await?;
    store.close().await;
    println!("the {kind} transfer intent store is up to date (migrations applied: {applied})");
    Ok(())
}

async fn audit(config: &Config, command: AuditCommand) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    let store = IntentStore::new(bankguard::mcp::backends::store_location(config)?, bankguard::clock::Clock::system());
    let outcome = match command {
        AuditCommand::Verify { trusted_keys } => {
            let mut trusted = ServerKey::load(&config.data_dir)?.trusted();
            for file in &trusted_keys {
                let document = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
                trusted = trusted.and(TrustedKeys::from_jwks(&document, &file.display().to_string())?);
            }
            match store.verify_audit(&trusted).await? {
                Ok(report) => {
                    println!("{report}");
                    Ok(())
                }
                Err(finding) => Err(format!("the audit log does not verify: {finding}").into()),
            }
        }
        AuditCommand::Export { since, holder } => {
            let entries = store.audit_entries(since, holder.as_deref()).await?;
            let mut out = std::io::stdout().lock();
            for entry in entries {
                serde_json::to_writer(&mut out, &entry)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            Ok(())
        }
    };
    store.close().await;
    outcome
}

fn keys(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let key = ServerKey::load_or_generate(&config.data_dir)?;
    println!("{}", serde_json::to_string_pretty(&key.trusted().jwk_set())?);
    Ok(())
}

async fn evidence(config: &Config, args: EvidenceArgs) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(EvidenceCommand::Verify { dir }) = args.command {
        let report = bankguard::mcp::consent::evidence::verify(&dir)
            .map_err(|problem| format!("the evidence pack {} does not verify: {problem}", dir.display()))?;
        println!("{report}");
        return Ok(());
    }
    let (Some(intent_id), Some(out)) = (args.intent_id, args.out) else {
        return Err("evidence needs an intent id and --out DIR, or `evidence verify DIR`".into());
    };
    let store = IntentStore::new(bankguard::mcp::backends::store_location(config)?, bankguard::clock::Clock::system());
    let record = store.consent_record(&intent_id).await;
    store.close().await;
    let record = record?.ok_or_else(|| format!("no transfer intent {intent_id}"))?;
    let own_key = ServerKey::load(&config.data_dir).ok();
    bankguard::mcp::consent::evidence::write(&record, own_key.as_ref(), &out)?;
    println!("wrote the evidence for {intent_id} to {} (check it with `bankguard evidence verify`)", out.display());
    Ok(())
}

async fn run_demo(mut config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let stack = DevStack::start(&config).await?;
    // The MCP server uses the stack it runs beside, wherever it really listens.
    config.mcp.issuer = Some(stack.running.issuer.clone());
    config.mcp.bank_api_url = Some(stack.running.bank_api.clone());
    if config.mcp.client_secret.is_none() && config.mcp.client_id == stack.mcp_client.client_id {
        config.mcp.client_secret = Some(stack.mcp_client.client_secret.clone());
    }
    let backends = Arc::new(Backends::from_config(&config, true)?);
    let listener = http_server::bind(config.mcp.listen, ListenSetting::MCP).await?;
    let server = RunningHttp::start(listener, backends, &config).await?;
    let url = server.url();
    let device = format!("{}?user={}", stack.running.device, url_encoded(&config.mcp.user));
    println!("bankguard demo is running (Ctrl-C stops it)");
    println!("  MCP endpoint       {url}");
    println!("  approval device    {device}   <- open it: it plays {}'s phone", config.mcp.user);
    println!("  bank API           {}", stack.running.bank_api);
    println!("  data directory     {}", absolute(&config.data_dir).display());
    println!();
    println!(
        "  MCP Inspector      npx -y @modelcontextprotocol/inspector@{INSPECTOR_VERSION} --cli {url} --transport http \
         --method tools/list (Node.js 22.19 or newer)"
    );
    println!("  scripted agent     cargo run --example agent -- {url}");
    println!("  stdio clients      add to your client's mcp.json (see mcp.json.example):");
    println!("    {}", stdio_snippet(&config, &stack.running));
    shutdown_signal().await;
    server.shutdown().await?;
    stack.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn run_dev(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let stack = DevStack::start(&config).await?;
    let data_dir = absolute(&config.data_dir);
    let data_dir = data_dir.display();
    let running = &stack.running;
    println!("bankguard dev is running (Ctrl-C stops it)");
    println!("  authorization server  {}", running.issuer);
    println!("  approval device       {}", running.device);
    println!("  bank API              {}", running.bank_api);
    println!("  MCP client            {} (secret in {data_dir}/{MCP_CLIENT_FILE})", stack.mcp_client.client_id);
    println!("  data directory        {data_dir}");
    println!("  demo users            {}", seed::USERS.iter().map(|u| u.subject).collect::<Vec<_>>().join(", "));
    println!();
    println!("  stdio clients         add to your client's mcp.json (see mcp.json.example), for {}:", config.mcp.user);
    println!("    {}", stdio_snippet(&config, running));
    shutdown_signal().await;
    stack.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// The `mcp.json` entry that runs `bankguard serve` over stdio against the running stack: this
/// binary and the data directory by absolute path, so it works from whatever directory a client
/// starts it in.
fn stdio_snippet(config: &Config, running: &RunningStack) -> serde_json::Value {
    let binary = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "bankguard".into());
    serde_json::json!({"mcpServers": {"bankguard": {
        "command": binary, "args": ["serve"],
        "env": {"BANKGUARD_DATA_DIR": absolute(&config.data_dir).display().to_string(),
                "BANKGUARD_MCP__ISSUER": running.issuer,
                "BANKGUARD_MCP__BANK_API_URL": running.bank_api}}}})
}

/// `path` made absolute (symbolic links resolved when it exists), for messages a person may paste
/// elsewhere.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).or_else(|_| std::path::absolute(path)).unwrap_or_else(|_| path.to_owned())
}

fn url_encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn list_pending(config: &Config, user: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
    let pending = DeviceClient::for_data_dir(&config.data_dir)?.pending(user).await?;
    if pending.is_empty() {
        println!("nothing is waiting for approval");
    }
    for request in &pending {
        println!("{}", describe(request));
    }
    Ok(())
}

async fn decide(config: &Config, args: &DecisionArgs, decision: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = DeviceClient::for_data_dir(&config.data_dir)?;
    let id = if args.latest { None } else { args.id.as_deref() };
    let (request, result) = client.decide(args.user.as_deref(), id, decision).await?;
    println!("{}: {}", result.status, describe(&request));
    Ok(())
}

/// One line per request: short id, user, binding message, transfer, who asks, time left.
fn describe(request: &PendingApproval) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let left = std::time::Duration::from_secs((request.expires_at - now).max(0) as u64);
    let client = if request.client_name.is_empty() { &request.client_id } else { &request.client_name };
    format!(
        "{id}  {user}  \"{binding}\"  {what}  ({client}, {left} left)",
        id = request.auth_req_id.get(..8).unwrap_or(&request.auth_req_id),
        user = request.user,
        binding = request.binding_message,
        what = request.summary.as_deref().unwrap_or("sign-in"),
        left = TimeLeft(left),
    )
}

/// The MCP Inspector version `demo` suggests: the one the interop tests run (a test keeps them equal).
const INSPECTOR_VERSION: &str = "2.12.0";

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
