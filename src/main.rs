//! The `bankguard` command line: parses arguments, loads configuration, and runs one subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bankguard::config::Config;
use bankguard::devstack::{self, bank_api::BankApi};

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
    /// Run the embedded dev stack on loopback: the reference bank API, a real SQLite ledger
    /// seeded with demo users (alice, bob) that accepts only verified, transfer-bound access tokens.
    Dev,
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
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Dev => run_dev(config).await,
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

async fn run_dev(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let bank = BankApi::open(&config).await?;
    let server = devstack::spawn_server(config.bank_api.listen, bank.router(), shutdown_signal()).await?;
    let data_dir = config.data_dir.display();
    println!("bankguard dev is running (Ctrl-C stops it)");
    println!("  bank API       http://{}/api", server.address);
    println!("  ledger         {data_dir}/{}", devstack::bank_api::ledger::DATABASE_FILE);
    println!("  token issuer   {}  (audience {})", config.bank_api.issuer, config.bank_api.audience);
    println!("  demo users     {}", devstack::seed::USERS.iter().map(|u| u.subject).collect::<Vec<_>>().join(", "));
    server.task.await??;
    tracing::info!("stopped");
    Ok(())
}

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
