//! The `letschat` binary: serves the chat (default), prints the OpenAPI or AsyncAPI document,
//! or manages administrators (`letschat admin ...`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use letschat::config::{Config, ServeArgs};
use letschat::startup::Application;

/// mimalloc instead of the system allocator: the server makes many small, short-lived
/// allocations on several threads (frames and messages built on one thread and freed on
/// another), which glibc's per-thread arenas handle with lock contention and fragmentation.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "letschat",
    version,
    about = "Let's Chat: a self-hostable 1:1 chat server"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the chat (the default).
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI document (YAML) to standard output.
    Openapi,
    /// Print the AsyncAPI document of the WebSocket protocol (JSON) to standard output.
    Asyncapi,
    /// Manage administrators, directly in the database (no server needed).
    Admin(letschat::cli::AdminArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi) => match letschat::openapi::yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("letschat: cannot render the OpenAPI document: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Asyncapi) => {
            print!("{}", letschat::asyncapi::json());
            ExitCode::SUCCESS
        }
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Admin(args)) => letschat::cli::admin(args),
        None => serve(cli.serve),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    letschat::telemetry::init();
    letschat::startup::raise_open_file_limit();
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("letschat: {e}");
            return ExitCode::from(2);
        }
    };
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(port = app.port(), "Let's Chat is listening");
        if let Some(addr) = app.metrics_addr() {
            tracing::info!(%addr, "metrics are served at /metrics");
        }
        app.run_until_stopped().await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("letschat: {e}");
            ExitCode::FAILURE
        }
    }
}
